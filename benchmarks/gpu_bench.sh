#!/usr/bin/env bash
# Every GPU measurement in one script, for a lent H100/H200 (see the device tool's README).
#
# Here, once: fetch wheels for the packages the bare device image lacks (it has torch, torchvision,
# timm, huggingface_hub, safetensors, numpy, pillow, click, tqdm, requests, pytest; not open_clip,
# pytorch-pretrained-biggan, av, ftfy, boto3):
#   bash benchmarks/gpu_bench.sh fetch                  (writes .whl/, ignored by git, ~55 MB)
# On the device, carrying .whl, each stage under the 10-minute limit of one call:
#   bash benchmarks/gpu_bench.sh run tests eager        (GPU tests, eager bench)
#   bash benchmarks/gpu_bench.sh run compile render     (torch.compile bench, render frames/s)
# Results land in $OUT (bench-*.md is ready to paste into benchmarks/RESULTS.md with the date,
# device and command). DRY=1 runs every stage on the CPU with tiny models: a check of this script.
set -euo pipefail
cd "$(dirname "$0")/.."
PYVER=${PYVER:-3.12}  # the device image's python3
MISSING="open_clip_torch==3.3.0 ftfy==6.3.1 wcwidth av==18.1.0 boto3 botocore s3transfer jmespath"
OUT=${OUT:-/tmp/musivid-gpu-out}
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
  # an sdist on PyPI: build the (pure-python) wheel here, so the device installs wheels only
  python3 -m pip wheel -q --no-deps -w .whl pytorch-pretrained-biggan==0.1.1
  ls -la .whl
  ;;
run)
  stages=${*:-tests eager compile render}
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/musivid-site .whl/*.whl
  export PYTHONPATH=/tmp/musivid-site:$PWD PYTHONUNBUFFERED=1
  mkdir -p "$OUT"
  if [ "${DRY:-0}" = 1 ]; then
    dev=cpu; models=--untrained; batches=1,4; cbatches=4; steps=2; render="--minutes 0.05 --size 64"
  else
    dev=cuda; models=--full-size; batches=1,4,8,16,32,64,128; cbatches=8,16,32,64,128; steps=20
    render="--device cuda --full-size --size 256 --batch 32 --minutes 1"
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/device.txt"
  fi
  python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available())' | tee -a "$OUT/device.txt"
  for s in $stages; do
    echo "== $s ($(date -u +%FT%TZ))"
    case "$s" in
    tests)  # the @pytest.mark.gpu tests (skipped without CUDA)
      python3 -m pytest -q tests/test_gpu.py -p no:cacheprovider 2>&1 | tee "$OUT/gpu-tests.log" || true ;;
    eager)  # BigGAN-deep-256 + ViT-B/32, 32 cutouts, random weights: reference loop vs batched, one run
      python3 -m musivid bench --device $dev $models --cutouts 32 --steps $steps --batch $batches \
        --json "$OUT/bench-eager.json" --markdown "$OUT/bench-eager.md" | tee "$OUT/bench-eager.txt" ;;
    compile)  # eager and torch.compile'd step in the same run: whether compile pays
      python3 -m musivid bench --device $dev $models --cutouts 32 --steps $steps --batch $cbatches --compile \
        --json "$OUT/bench-compile.json" --markdown "$OUT/bench-compile.md" | tee "$OUT/bench-compile.txt" ;;
    render)  # frames/s of the streaming render (generation + H.264/AAC encoding), BigGAN-deep-256
      python3 benchmarks/render_memory.py $render | tee "$OUT/render.md" ;;
    *) echo "unknown stage: $s (tests, eager, compile, render)" >&2; exit 2 ;;
    esac
  done
  ;;
*) echo "usage: $0 fetch | run [tests] [eager] [compile] [render]" >&2; exit 2 ;;
esac

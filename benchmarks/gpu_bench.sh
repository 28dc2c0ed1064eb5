#!/usr/bin/env bash
# Every GPU measurement in one script, for a lent H100/H200 (see the device tool's README).
# Here first: fetch wheels for the bare device machine (it has torch, not open_clip/av/...):
#   bash benchmarks/gpu_bench.sh fetch      (writes .whl/, ignored by git)
# Then on the device, carrying .whl:
#   bash benchmarks/gpu_bench.sh run        (writes $OUT/bench-*.json, $OUT/gpu-tests.log)
# Paste the printed tables into benchmarks/RESULTS.md with the date, device and command.
set -euo pipefail
cd "$(dirname "$0")/.."
WHEELS="open_clip_torch==3.3.0 pytorch-pretrained-biggan==0.1.1 ftfy==6.3.1 regex timm==1.0.31 \
  huggingface_hub safetensors av==18.1.0 click tqdm boto3 botocore s3transfer jmespath requests \
  urllib3 idna certifi charset_normalizer python-dateutil six wcwidth pyyaml filelock fsspec \
  packaging typing_extensions hf-xet"
case "${1:-run}" in
fetch)
  grep -qx '/.whl/' .git/info/exclude || echo '/.whl/' >> .git/info/exclude
  for w in $WHEELS; do
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
      --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
      --platform any -d .whl "$w" || echo "could not fetch $w"
  done
  python3 -m pip download -q --no-deps --no-binary=:none: -d .whl pytorch-pretrained-biggan==0.1.1 || true
  ;;
run)
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
  OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
  nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$OUT/device.txt"
  python3 -m pytest -q tests/test_gpu.py -p no:cacheprovider 2>&1 | tee "$OUT/gpu-tests.log" || true
  # BigGAN-deep-256 + ViT-B/32, 32 cutouts, random weights: reference loop vs batched, in one run
  python3 -m musivid bench --device cuda --full-size --cutouts 32 --steps 20 \
    --batch 1,4,8,16,32,64,128 --json "$OUT/bench-eager.json" | tee "$OUT/bench-eager.txt"
  python3 -m musivid bench --device cuda --full-size --cutouts 32 --steps 20 --compile \
    --batch 16,32,64,128 --json "$OUT/bench-compile.json" | tee "$OUT/bench-compile.txt"
  ;;
esac

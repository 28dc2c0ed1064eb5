#!/usr/bin/env bash
# Every GPU figure in ONE prepared device call that ends within 8 minutes on an H200, so that a rerun
# still fits a 15-minute session (the machine's start included). The stages and their limits are in
# benchmarks/gpu_bench.py (`python3 benchmarks/gpu_bench.py plan` prints them): eager bench, render,
# eager vs compiled, GPU tests; 480 s of limits in all.
#
# Here, once: fetch wheels for the packages the bare device image lacks (it has torch 2.11, torchvision,
# timm, huggingface_hub, safetensors, numpy, scipy, pillow, fonttools, click, tqdm, requests, regex,
# python-dateutil, six, pytest; not open_clip, pytorch-pretrained-biggan, av, ftfy, boto3 and what
# botocore needs), and count the census (no GPU needed) into .whl/census.json:
#   bash benchmarks/gpu_bench.sh fetch                  (writes .whl/, ignored by git, ~54 MB: < 64 MiB with the tree)
# On the device, ONE call carrying .whl (the machine's own torch is used; our pins are for installs):
#   run(command="bash benchmarks/gpu_bench.sh run", carry=[".whl"], timeout_s=540)
# Results land in $OUT: results.json (every figure), results.md (for benchmarks/RESULTS.md, with the
# census beside the measurement), run.log (all output; the reference loop's speed as soon as it is
# measured). Each is rewritten after every measurement, so a stage cut at its limit keeps what it had.
# DRY=1 runs every stage on the CPU with tiny models: a check of this script (tests/test_bench.py).
set -euo pipefail
cd "$(dirname "$0")/.."
PYVER=${PYVER:-3.12}  # the device image's python3
MISSING="open_clip_torch==3.3.0 ftfy==6.3.1 wcwidth av==18.1.0 boto3 botocore s3transfer jmespath"
SITE=${SITE:-/tmp/musivid-site}
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
  # the census runs here, not on the device: its estimate goes beside the measurement in results.md
  python3 -m musivid bench --census --json .whl/census.json > /dev/null
  du -sh .whl; ls -la .whl
  ;;
run|plan)
  if [ "$mode" = run ] && ls .whl/*.whl > /dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --target "$SITE" .whl/*.whl
    export PYTHONPATH=$SITE:$PWD
  fi
  export PYTHONUNBUFFERED=1
  exec python3 benchmarks/gpu_bench.py "$mode" "$@"
  ;;
*) echo "usage: $0 fetch | plan | run [eager] [render] [compile] [tests]" >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# The GPU checks, in one go on a CUDA node: the tests marked cuda, the device and DDP tests
# with the GPU visible, `encore train --nproc 2` on a node with fewer GPUs, and the GPU benches.
# Usage, from the repo root: bash bench/gpu_check.sh [OUT_DIR]
# Wheels for packages the node lacks may lie in .whl/ (installed into /tmp/site first).
set -uo pipefail
out=${1:-${OUT:-/tmp/gpu-check}}
mkdir -p "$out"
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=$PWD/src${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
run() { echo "== $*"; "$@"; }
{
  date -u; nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
  python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(0), torch.cuda.device_count(), 'GPU(s)')"
} 2>&1 | tee "$out/gpu.txt"
run python3 -m pytest -q -p no:cacheprovider -m cuda tests/train/test_cuda.py 2>&1 | tee "$out/pytest_cuda.txt"
run python3 -m pytest -q -p no:cacheprovider tests/train/test_devices.py tests/train/test_faults_and_ddp.py 2>&1 | tee "$out/pytest_ddp.txt"
run python3 -m encore.cli.main train -w /tmp/gpu-ws --nproc 2 2>&1 | tee "$out/nproc.txt"
run python3 bench/bench_gpu.py --compile --out "$out/bench_gpu.json" 2>&1 | tee "$out/bench_gpu.txt"
run python3 bench/bench_catalogue.py --device cuda --songs 96 --workers 4,8,15 2>&1 | tee "$out/bench_catalogue.txt"

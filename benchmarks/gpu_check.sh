#!/usr/bin/env bash
# The GPU checks in one command, under 8 minutes on one GPU: the CUDA tests, solver vs FireANTs on
# the GPU, 3D training throughput and the implicit backward; their JSON (and logs) into $OUT
# (default benchmarks/out/gpu). Run benchmarks/gpu_wheels.sh on a machine with PyPI first.
#     bash benchmarks/gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-benchmarks/out/gpu}"
mkdir -p "$out"
failed=0
step() {  # step NAME SECONDS COMMAND...: one check, its log in $out, its failure counted, never fatal
    local name=$1 limit=$2
    shift 2
    echo "== $name"
    timeout "$limit" "$@" > "$out/$name.log" 2>&1 || { echo "   failed (exit $?), see $name.log"; failed=1; }
    tail -3 "$out/$name.log"
}
if [ -d .whl ]; then
    python3 -m pip install -q --no-index --find-links .whl --no-deps --no-build-isolation .whl/* \
        > "$out/install.log" 2>&1
fi
python3 -m pip install -q --no-build-isolation --no-deps -e . >> "$out/install.log" 2>&1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$out/gpu.csv" 2>&1
python3 -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.cuda.get_device_name())" \
    || exit 1
step cuda_tests 120 python3 -m pytest -q -n 0 -p no:cacheprovider tests/solver/test_cuda.py
step solver_vs_fireants 150 python3 benchmarks/solver_vs_fireants.py --device cuda --pairs 2 --out "$out"
step train_throughput 120 python3 benchmarks/train_throughput.py --device cuda --settings 2d 3d --steps 3 --solvers dio default \
    --out "$out/train_throughput"
step implicit_backward 90 python3 benchmarks/implicit_backward.py --device cuda --out "$out/implicit_backward"
exit $failed

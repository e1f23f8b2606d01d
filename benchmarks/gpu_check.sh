#!/usr/bin/env bash
# GPU check for the feature path (issue 4), for an NVIDIA H100/H200 host with its own python3 (3.12, torch,
# Triton, JAX, pytest; no network, no Kedro/MLflow/FastAPI/pandas). Run from anywhere:
#
#     bash benchmarks/gpu_check.sh OUTDIR
#
# It writes to OUTDIR:
#   env.txt              the card, driver and library versions
#   imports.txt          which heavy platform modules importing the feature path loads (must be none)
#   pytest.log           tests/kernels and tests/features with compiled kernels (no interpreter)
#   features_gpu.json    the full benchmark (CPU rows and the CUDA rows: GB/s, % of HBM peak and of D2D copy)
#   features_gpu.md      the benchmark's markdown table, for docs/benchmarks.md
#   benchmark.log        its output
# Exit status: 0 when the tests and the benchmark both succeed, else the first failure's status.
set -uo pipefail

if [[ $# -ne 1 ]]; then
    echo "usage: $0 OUTDIR" >&2
    exit 2
fi
OUT="$(mkdir -p "$1" && cd "$1" && pwd)"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3}"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" DO_NOT_TRACK=true
unset TRITON_INTERPRET  # compiled kernels: the point of this check

{
    date -u
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1
    "$PY" -c "import sys, torch, triton; print('python', sys.version.split()[0], '| torch', torch.__version__,
'| triton', triton.__version__, '| cuda', torch.version.cuda, '|', torch.cuda.get_device_name())"
    "$PY" -c "import jax; print('jax', jax.__version__)" 2>&1
} > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"

"$PY" -c "import sys, fusion.features.backends, fusion.features.reference, fusion.kernels.window_stats
print(sorted({'kedro', 'mlflow', 'fastapi', 'pandas'} & set(sys.modules)))" > "$OUT/imports.txt" 2>&1
status=$?
echo "platform modules loaded by the feature path: $(cat "$OUT/imports.txt")"

# --noconftest: tests/conftest.py serves the data tests and imports pandas and SQLAlchemy; these two
# folders set up what they need themselves (hypothesis and pandas are optional, see tests/features/).
# PYTEST_DISABLE_PLUGIN_AUTOLOAD: whatever plugins the host's pytest has installed, none is needed here.
PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 \
"$PY" -m pytest tests/kernels tests/features -m "gpu or not gpu" --noconftest -p no:cacheprovider \
    -q -rs 2>&1 | tee "$OUT/pytest.log"
tests=${PIPESTATUS[0]}
[[ $status -eq 0 ]] && status=$tests

"$PY" benchmarks/features.py --json "$OUT/features_gpu.json" --no-doc 2>&1 | tee "$OUT/benchmark.log"
bench=${PIPESTATUS[0]}
[[ $status -eq 0 ]] && status=$bench
sed -n '/^Windowed statistics/,$p' "$OUT/benchmark.log" > "$OUT/features_gpu.md"

echo "gpu_check: tests exit $tests, benchmark exit $bench; results in $OUT"
exit "$status"

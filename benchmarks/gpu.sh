#!/usr/bin/env bash
# Accelerator benchmarks in one go, for benchmarks/RESULTS.md: the depthwise conv, the whole
# MobileNetV1 train step and vmapped sweep members vs sequential (K = 1 and 8), each with the
# depthwise implementations auto / xla / shifted, on whatever accelerator JAX finds (a GPU, a TPU,
# or the CPU). PyTorch rows run on CUDA when torch sees a GPU (TORCH_DEVICE=cpu|cuda|none to
# choose). Every step has its own time limit; the whole run stays under ten minutes.
#
#   bash benchmarks/gpu.sh                      # full run (under 10 minutes: each step has a limit)
#   bash benchmarks/gpu.sh --quick              # smoke run: tiny shapes, a few minutes on a CPU
#   bash benchmarks/gpu.sh --log gpu.log        # also write everything to gpu.log
#
# Environment: PYTHON (default python3), TORCH_DEVICE (default auto), JAX_PLATFORMS (default
# empty: JAX's own choice, i.e. the accelerator), and extra flags per script in DEPTHWISE_ARGS,
# TRAIN_STEP_ARGS, SWEEP_MEMBERS_ARGS. The checkout's lightjax is used even if not installed; its
# dependencies must be (pip install -e '.[bench]', then a CUDA jax, see benchmarks/README.md).
set -uo pipefail
cd "$(dirname "$0")/.."

QUICK=0
LOG=""
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=1 ;;
        --log) LOG="$2"; shift ;;
        -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "gpu.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
if [ -n "$LOG" ]; then
    exec > >(tee "$LOG") 2>&1
fi

PY="${PYTHON:-python3}"
export JAX_PLATFORMS="${JAX_PLATFORMS-}"      # empty: JAX picks the accelerator
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
# JAX takes half the GPU's memory, not 75%: the PyTorch rows run in the same processes
export XLA_PYTHON_CLIENT_MEM_FRACTION="${XLA_PYTHON_CLIENT_MEM_FRACTION:-0.5}"
TORCH="${TORCH_DEVICE:-auto}"
IMPLS="xla shifted auto"
START=$(date +%s)
FAILED=()

echo "# lightjax accelerator benchmarks ($([ $QUICK = 1 ] && echo quick || echo full) run)"
echo "date: $(date -Iseconds)   host: ${HOSTNAME:-$(uname -n)}   checkout: $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
if command -v nvidia-smi >/dev/null 2>&1; then
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1
else
    echo "nvidia-smi: not found"
fi
if ! "$PY" - <<'EOF'
import importlib.metadata as md, platform
def v(p):
    try:
        return md.version(p)
    except md.PackageNotFoundError:
        return "-"
import jax
devices = jax.devices()
print(f"python {platform.python_version()}; " + ", ".join(
    f"{p} {v(p)}" for p in ("jax", "jaxlib", "jax-cuda12-plugin", "jax-cuda13-plugin", "flax",
                            "optax", "torch")))
print(f"jax backend: {jax.default_backend()}; devices: {len(devices)} x {devices[0].device_kind}")
import lightjax.sweep.group, ml_collections  # noqa: F401  (what the benchmarks need)
EOF
then
    echo "gpu.sh: JAX or lightjax's dependencies are missing; see benchmarks/README.md" >&2
    exit 1
fi
if [ "$TORCH" = auto ]; then
    TORCH=$("$PY" -c "import torch; print('cuda' if torch.cuda.is_available() else 'cpu')" \
            2>/dev/null || echo none)
fi
echo "PyTorch rows: $TORCH"
echo

# run_step NAME SECONDS COMMAND...: one benchmark under its own time limit; a failure is reported
# and the next benchmark still runs.
run_step() {
    local name="$1" limit="$2"
    shift 2
    echo "## $name (limit ${limit} s)"
    echo "\$ $*"
    local t0=$(date +%s)
    timeout -k 10 "$limit" "$@"
    local rc=$?
    echo "-- $name: exit $rc after $(( $(date +%s) - t0 )) s"
    echo
    [ $rc -eq 0 ] || FAILED+=("$name (exit $rc)")
}

if [ $QUICK = 1 ]; then
    run_step depthwise 150 "$PY" benchmarks/depthwise.py --quick --case 16x16x32s1 \
        --case 16x16x32s2 --impls $IMPLS --torch-device "$TORCH" ${DEPTHWISE_ARGS:-}
    run_step train_step 200 "$PY" benchmarks/train_step.py --quick --impls $IMPLS \
        --torch-device "$TORCH" ${TRAIN_STEP_ARGS:-}
    run_step sweep_members 200 "$PY" benchmarks/sweep_members.py --quick --depthwise-impl auto \
        --torch-device "$TORCH" ${SWEEP_MEMBERS_ARGS:-}
else
    run_step depthwise 150 "$PY" benchmarks/depthwise.py --batch 128 --repeats 50 --warmup 5 \
        --impls $IMPLS --torch-device "$TORCH" ${DEPTHWISE_ARGS:-}
    run_step train_step 260 "$PY" benchmarks/train_step.py --batch 128 --alpha 1 0.25 \
        --stem-stride 2 1 --repeats 20 --warmup 3 --impls $IMPLS --torch-device "$TORCH" \
        ${TRAIN_STEP_ARGS:-}
    run_step sweep_members 160 "$PY" benchmarks/sweep_members.py --members 1 8 --steps 20 \
        --warmup 3 --depthwise-impl $IMPLS --torch-device "$TORCH" ${SWEEP_MEMBERS_ARGS:-}
fi

echo "total: $(( $(date +%s) - START )) s"
if [ ${#FAILED[@]} -gt 0 ]; then
    echo "FAILED: ${FAILED[*]}"
    exit 1
fi
echo "all benchmarks finished; paste the tables above into benchmarks/RESULTS.md"

#!/usr/bin/env bash
# The GPU benchmark suite, sized for one short session on a fresh CUDA machine (~8 minutes on
# an H100-class GPU): install from the CUDA lock, then time the training step (float32 and
# bfloat16, batch 256), sampling, the convolution kernel gradient and mixed precision, and
# run the MNIST tutorial's full preset for a fixed number of steps with its FID. Every part
# has its own time limit, so one slow part cannot take the others down; each writes JSON
# under benchmarks/results/gpu/, and the summary table goes to
# benchmarks/results/gpu/summary.md.
#
#   bash benchmarks/gpu_suite.sh            # from the repository root
#   TUTORIAL_STEPS=2000 bash benchmarks/gpu_suite.sh
set -uo pipefail
cd "$(dirname "$0")/.."

OUT=benchmarks/results/gpu
TUTORIAL_STEPS=${TUTORIAL_STEPS:-1000}
mkdir -p "$OUT"
export ARTIFEX_CUDA=1
# shellcheck source=/dev/null
source activate.sh || { echo "[gpu-suite] environment setup failed" >&2; exit 1; }
python -c "import jax; d = jax.devices()[0]; print('[gpu-suite]', jax.__version__, d.platform, d.device_kind)"

status=()
part() {  # part NAME SECONDS COMMAND...: run one part under its own limit, record how it ended
    local name=$1 limit=$2
    shift 2
    echo "[gpu-suite] $name (limit ${limit}s): $*"
    local start=$SECONDS
    timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
    local rc=$?
    status+=("| $name | $rc | $((SECONDS - start)) s |")
    tail -3 "$OUT/$name.log"
}

part train_step_f32 90 python benchmarks/train_step.py --batch-size 256 --repeats 5 \
    --no-retry --out "$OUT/train_step_f32.json"
part train_step_bf16 90 python benchmarks/train_step.py --batch-size 256 --repeats 5 \
    --no-retry --compute-dtype bfloat16 --out "$OUT/train_step_bf16.json"
part mixed_precision 60 python benchmarks/mixed_precision.py --preset tutorial \
    --batch-size 256 --rounds 5 --out "$OUT/mixed_precision.json"
part sampling 60 python benchmarks/sampling.py --n-samples 256 --max-wait 0 \
    --out "$OUT/sampling.json"
part conv_kernel_gradient 45 python benchmarks/conv_kernel_gradient.py --batch-size 256 \
    --out "$OUT/conv_kernel_gradient.json"
part tutorial_full 180 python examples/generative_models/image/diffusion/diffusion_mnist_training.py \
    --preset full --max-steps "$TUTORIAL_STEPS" --eval-samples 1000 --output-dir "$OUT/tutorial"

{
    echo "# GPU suite, $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git rev-parse --short HEAD)"
    echo
    python -c "import jax; print('Device:', jax.devices()[0].device_kind, '| jax', jax.__version__)"
    echo
    echo "| part | exit status | wall |"
    echo "|---|---:|---:|"
    printf '%s\n' "${status[@]}"
    echo
    python - "$OUT" <<'PY'
import json, sys
from pathlib import Path

out = Path(sys.argv[1])
def load(name):
    path = out / name
    return json.loads(path.read_text()) if path.exists() else None

for name in ("train_step_f32.json", "train_step_bf16.json"):
    data = load(name)
    for r in (data or {}).get("results", []):
        print(f"- {name[:-5]}: batch {r['batch_size']}, {r['best_s']} s/step, "
              f"{r['images_per_s_best']} img/s, compile {r['compile_s']} s")
mixed = load("mixed_precision.json")
if mixed:
    print(f"- bfloat16 / float32 step time (median of pairs): {mixed['median_ratio_bf16_over_f32']:.2f}")
summary = load("tutorial/summary.json")
if summary:
    quality = summary.get("quality") or {}
    print(f"- tutorial full preset: {summary['steps']} steps in {summary['train_seconds']:.0f} s, "
          f"FID {quality.get('fid')} ({quality.get('num_samples')} samples)")
PY
} > "$OUT/summary.md"
cat "$OUT/summary.md"

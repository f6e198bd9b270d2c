#!/usr/bin/env bash
# The GPU check: on a machine with NVIDIA GPUs, from the repository root, after pip install -e ".[gpu,test]":
#
#   bash benchmarks/gpu_check.sh            # about 10 minutes on one GPU; OUT=folder keeps the JSON lines,
#                                           # PYTHON=interpreter picks the Python (default: python on PATH)
#
# 1. the golden tests against the original's numbers (tiny bundles, both kernels), with TF32 off (the
#    default) on the GPU;
# 2. the tiny trained checkpoint's bits/dim with --allow_tf32, against the original's float32 number
#    (how far TensorFloat-32 moves it);
# 3. the fast sampler == the naive one, and the sampler replaying the original's samples;
# 4. forward, training step and fast sampler of the full CIFAR-10 config at batch 16 per replica in
#    float32, bfloat16 and float16, both kernels; then one table (docs/speed.md records it, and
#    --kernels=auto's GPU choice follows it).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"
export TF_CPP_MIN_LOG_LEVEL=2
PYTHON=${PYTHON:-python}  # the interpreter with the package installed

if ! "$PYTHON" -c "import sys, tensorflow as tf; sys.exit(0 if tf.config.list_physical_devices('GPU') else 1)"; then
  echo "gpu_check: TensorFlow sees no GPU here (pip install -e \".[gpu,test]\" on a machine with NVIDIA GPUs)" >&2
  exit 1
fi
nvidia-smi -L | tee "$OUT/gpus.txt"

echo "== 1. golden tests on the GPU (TF32 off)"
"$PYTHON" -m pytest -q tests/test_reference.py tests/test_training.py 2>&1 | tail -3 | tee "$OUT/golden.txt"

echo "== 2. TF32 on: the tiny trained checkpoint's bits/dim against the original's float32 value"
"$PYTHON" - <<'END' | tee "$OUT/tf32.txt"
import numpy as np
import sys
sys.path.insert(0, "tests")
from conftest import TINY, bundle_config
from pixelsnail_tf import checkpoints
from pixelsnail_tf.model import build_model

reference = np.load(TINY / "reference.npz")
for allow in (False, True):
    model = build_model(bundle_config(TINY), kernels="reference", allow_tf32=allow)
    model.build((None, 8, 8, 3))
    checkpoints.load_tf1_checkpoint(model, str(TINY / "trained"), use_ema=True)
    bpd = model.bits_per_dim(reference["x_test_u8"]).numpy()
    error = np.abs(bpd / reference["bpd_test_ema_final"] - 1).max()
    print(f"allow_tf32={allow}: bpd {bpd.round(6).tolist()}, largest relative difference {error:.2e}")
END

echo "== 3. samplers"
"$PYTHON" -m pytest -q tests/test_cached_sampling.py tests/test_sampling.py -k "naive or replays" 2>&1 | tail -3 \
  | tee "$OUT/samplers.txt"

echo "== 4. full CIFAR-10 config, batch 16 per replica"
: > "$OUT/bench.jsonl"
for precision in float32 bfloat16 float16; do
  for kernels in reference fast; do
    common=(--batch_size=16 --mixed_precision="$precision" --kernels="$kernels" --iters=3)
    "$PYTHON" benchmarks/forward.py "${common[@]}" | tail -1 | sed 's/^{/{"what": "forward", /' >> "$OUT/bench.jsonl" || true
    "$PYTHON" benchmarks/train_step.py "${common[@]}" | tail -1 | sed 's/^{/{"what": "train_step", /' >> "$OUT/bench.jsonl" || true
  done
  "$PYTHON" benchmarks/sample.py --num_samples=16 --mixed_precision="$precision" --kernels=reference | tail -1 \
    | sed 's/^{/{"what": "sample_fast_16", /' >> "$OUT/bench.jsonl" || true
done
"$PYTHON" - "$OUT/bench.jsonl" <<'END'
import json
import sys

rows = [json.loads(line) for line in open(sys.argv[1]) if line.startswith("{")]
print(f"{'what':16} {'precision':9} {'kernels':9} {'images/s':>9} {'seconds':>8}")
for r in rows:
    rate = r.get("images_per_sec")
    seconds = r.get("seconds_per_step", r.get("seconds_per_batch", r.get("seconds")))
    memory = r.get("peak_gpu_mb")
    print(f"{r['what']:16} {r['mixed_precision']:9} {r['kernels']:9} "
          f"{(f'{rate:.1f}' if rate else '-'):>9} {seconds:8.3f}"
          + (f"  peak GPU memory {memory:.0f} MB" if memory else ""))
END
echo "gpu_check: outputs in $OUT"

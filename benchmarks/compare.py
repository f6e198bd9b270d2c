"""Ours against the ORIGINAL code on this machine: runs both benchmarks alternately, in fresh processes.

On a shared machine the speed drifts by 5-10% within minutes, so one run of each is not a ratio.
This runs `original.py` and then ours (`forward.py` or `train_step.py`) --rounds times, each pair
back to back, and reports the ratio of every pair and their median.

  python benchmarks/compare.py --original_repo=/path/to/pixelsnail-public --mixed_precision=bfloat16
  python benchmarks/compare.py --original_repo=PATH --mode=train_step --rounds=2 --iters=2

--iters, --batch_size and the model flags both take (--model, --nr_resnet, --nr_filters, --nr_logistic_mix,
--resnet_nonlinearity, --dropout_p) go to both; other flags to ours only (--mixed_precision, --kernels).
Last output line: one JSON object with `median_ratio`.
"""

import json
import os
import statistics
import subprocess
import sys

from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from script_flags import define_original_repo_flag, parse_known  # noqa: E402

define_original_repo_flag()
flags.DEFINE_enum("mode", "forward", ["forward", "train_step"], "what to time")
flags.DEFINE_integer("rounds", 3, "pairs of runs (original, then ours)", lower_bound=1)
flags.DEFINE_integer("iters", 3, "timed repetitions in each run", lower_bound=1)
flags.DEFINE_integer("batch_size", 8, "images per step, both")
FLAGS = flags.FLAGS

HERE = os.path.dirname(os.path.abspath(__file__))
# Flags of original.py that ours has too: they go to both, so that both run the same model.
BOTH = ("model", "nr_resnet", "nr_filters", "nr_logistic_mix", "resnet_nonlinearity", "dropout_p")


def images_per_sec(command):
    """Runs one benchmark script; its last output line is JSON with images_per_sec."""
    done = subprocess.run([sys.executable, *command], capture_output=True, text=True)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        sys.exit(f"{' '.join(command[:1])} failed (exit {done.returncode}):\n{done.stderr[-2000:]}")
    return json.loads(lines[-1])["images_per_sec"]


def main(argv):
    model = [a for a in argv[1:] if a.lstrip("-").split("=")[0] in BOTH]
    shared = [f"--iters={FLAGS.iters}", f"--batch_size={FLAGS.batch_size}", *model]
    original = [os.path.join(HERE, "original.py"), f"--original_repo={FLAGS.original_repo}",
                f"--mode={FLAGS.mode}", *shared]
    ours = [os.path.join(HERE, f"{FLAGS.mode}.py"), *shared,
            *[a for a in argv[1:] if a not in model]]
    result = {"mode": FLAGS.mode, "ours_flags": argv[1:], "original": [], "ours": [], "ratios": []}
    for r in range(FLAGS.rounds):
        result["original"].append(images_per_sec(original))
        result["ours"].append(images_per_sec(ours))
        result["ratios"].append(result["ours"][-1] / result["original"][-1])
        print(f"round {r + 1}/{FLAGS.rounds}: original {result['original'][-1]:.3f}, "
              f"ours {result['ours'][-1]:.3f} images/s, ratio {result['ratios'][-1]:.2f}", flush=True)
    result["median_ratio"] = statistics.median(result["ratios"])
    print(f"ours / original, median of {FLAGS.rounds}: {result['median_ratio']:.2f}")
    print(json.dumps(result))


if __name__ == "__main__":
    app.run(main, flags_parser=parse_known)  # the rest goes to ours

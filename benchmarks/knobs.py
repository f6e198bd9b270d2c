"""TensorFlow's per-op scheduling knobs on the fast sampler, each alone and together, in one run.

Runs `sample.py` (fast sampler) once per variant per round, the variants in turn, each in a fresh process
(a thread-pool setting holds for the whole process), and reports every variant's median seconds and its
ratio to the default's. Other flags go to `sample.py` (e.g. --num_samples=64, model flags).

  python benchmarks/knobs.py --rounds=2
  python benchmarks/knobs.py --rounds=2 --num_samples=64

Variants: default; inter_op_1 (--inter_op_threads=1: one op at a time, so no cross-thread hand-off);
single_threaded (--executor=single_threaded: the ops run in order on the calling thread); both.
Last output line: one JSON object with every variant's seconds and `median_ratio_to_default`.
"""

import json
import os
import statistics
import subprocess
import sys

from absl import app, flags

flags.DEFINE_integer("rounds", 2, "runs of each variant, the variants alternating")
FLAGS = flags.FLAGS

HERE = os.path.dirname(os.path.abspath(__file__))
VARIANTS = {"default": [], "inter_op_1": ["--inter_op_threads=1"],
            "single_threaded": ["--executor=single_threaded"],
            "both": ["--inter_op_threads=1", "--executor=single_threaded"]}


def seconds(command):
    """Runs sample.py; its last output line is JSON with `seconds`."""
    done = subprocess.run([sys.executable, os.path.join(HERE, "sample.py"), *command], capture_output=True,
                          text=True)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        sys.exit(f"sample.py {' '.join(command)} failed (exit {done.returncode}):\n{done.stderr[-2000:]}")
    return json.loads(lines[-1])


def main(argv):
    runs = {name: [] for name in VARIANTS}
    machine = None
    for r in range(FLAGS.rounds):
        for name, extra in VARIANTS.items():
            result = seconds([*argv[1:], *extra])
            runs[name].append(result["seconds"])
            machine = result["machine"]
            print(f"round {r + 1}/{FLAGS.rounds} {name}: {result['seconds']:.2f} s", flush=True)
    medians = {name: statistics.median(values) for name, values in runs.items()}
    summary = {"flags": argv[1:], "machine": machine, "seconds": runs,
               "median_ratio_to_default": {name: medians["default"] / medians[name] for name in runs}}
    for name in runs:
        print(f"{name}: median {medians[name]:.2f} s, {summary['median_ratio_to_default'][name]:.2f}x the "
              f"default's speed")
    print(json.dumps(summary))


if __name__ == "__main__":
    app.run(main, flags_parser=lambda argv: FLAGS(argv, known_only=True))  # the rest goes to sample.py

"""TensorFlow's per-op scheduling knobs, each alone and together, in one run.

Runs `--program` (sample.py: the fast sampler; train_step.py: one training step) once per variant per
round, the variants in turn, each in a fresh process (a thread-pool setting holds for the whole process),
and reports every variant's median seconds and its ratio to the default's. Other flags go to the program
(e.g. --num_samples=64, model flags).

  python benchmarks/knobs.py --rounds=2
  python benchmarks/knobs.py --rounds=2 --num_samples=64
  python benchmarks/knobs.py --program=train_step --knobs=inter_op_1 --cross=recompute --iters=2

Variants: default; inter_op_1 (--inter_op_threads=1: one op at a time, so no cross-thread hand-off);
single_threaded (--executor=single_threaded: the ops run in order on the calling thread; sample.py only);
both. With --cross=FLAG each variant runs also with --FLAG (named "FLAG+variant"), in the same round.
Last output line: one JSON object with every variant's seconds and `median_ratio_to_default`.
"""

import json
import os
import statistics
import subprocess
import sys

from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from script_flags import parse_known  # noqa: E402

flags.DEFINE_integer("rounds", 2, "runs of each variant, the variants alternating", lower_bound=1)
flags.DEFINE_enum("program", "sample", ["sample", "train_step"], "what is timed: sample.py (seconds per "
                  "draw) or train_step.py (seconds per training step)")
flags.DEFINE_multi_enum("knobs", ["inter_op_1", "single_threaded", "both"], ["inter_op_1", "single_threaded",
                        "both"], "the variants run besides the default")
flags.DEFINE_string("cross", None, "a boolean flag of the program (e.g. recompute): every variant runs "
                    "also with it on")
FLAGS = flags.FLAGS

HERE = os.path.dirname(os.path.abspath(__file__))
VARIANTS = {"default": [], "inter_op_1": ["--inter_op_threads=1"],
            "single_threaded": ["--executor=single_threaded"],
            "both": ["--inter_op_threads=1", "--executor=single_threaded"]}


SECONDS = {"sample": "seconds", "train_step": "seconds_per_step"}  # in the program's last JSON line


def run(command):
    """Runs --program; its last output line is JSON, with the seconds under SECONDS[--program]."""
    program = f"{FLAGS.program}.py"
    done = subprocess.run([sys.executable, os.path.join(HERE, program), *command], capture_output=True,
                          text=True)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        sys.exit(f"{program} {' '.join(command)} failed (exit {done.returncode}):\n{done.stderr[-2000:]}")
    return json.loads(lines[-1])


def variants():
    """{name: the program's extra flags} of the default and --knobs, crossed with --cross."""
    chosen = {name: extra for name, extra in VARIANTS.items() if name == "default" or name in FLAGS.knobs}
    if not FLAGS.cross:
        return chosen
    crossed = {f"{FLAGS.cross}+{name}": [f"--{FLAGS.cross}", *extra] for name, extra in chosen.items()}
    return {**chosen, **crossed}


def main(argv):
    if FLAGS.program == "train_step" and set(FLAGS.knobs) & {"single_threaded", "both"}:
        sys.exit("knobs.py: train_step.py takes --knobs=inter_op_1 only: TensorFlow's single-threaded "
                 "executor cannot run a training step (its sums of gradients have reference-typed edges)")
    chosen = variants()
    runs = {name: [] for name in chosen}
    peak_mb = {name: [] for name in chosen}  # train_step.py's peak resident memory
    machine = None
    for r in range(FLAGS.rounds):
        for name, extra in chosen.items():
            result = run([*argv[1:], *extra])
            runs[name].append(result[SECONDS[FLAGS.program]])
            peak_mb[name].append(result.get("peak_rss_mb"))
            machine = result["machine"]
            memory = f", peak {result['peak_rss_mb']:.0f} MB" if "peak_rss_mb" in result else ""
            print(f"round {r + 1}/{FLAGS.rounds} {name}: {runs[name][-1]:.2f} s{memory}", flush=True)
    medians = {name: statistics.median(values) for name, values in runs.items()}
    summary = {"program": FLAGS.program, "flags": argv[1:], "machine": machine, "seconds": runs,
               **({"peak_rss_mb": peak_mb} if FLAGS.program == "train_step" else {}),
               "median_ratio_to_default": {name: medians["default"] / medians[name] for name in runs}}
    for name in runs:
        print(f"{name}: median {medians[name]:.2f} s, {summary['median_ratio_to_default'][name]:.2f}x the "
              f"default's speed")
    print(json.dumps(summary))


if __name__ == "__main__":
    app.run(main, flags_parser=parse_known)  # the rest goes to --program

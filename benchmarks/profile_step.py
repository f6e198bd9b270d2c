"""Where a row of the fast sampler spends its time, op by op (TensorFlow's profiler).

Draws --num_samples images with the fast sampler and profiles one row (--row; the rows before it run
first, so that the row function is traced and the caches hold what they hold mid-image). The profiler's
trace is summed per op type over the compute threads: count per pixel step, thread time per pixel step,
mean microseconds per op; and the row's wall time, so that the gap between the threads' op time and the
cores' time shows what is spent outside the ops (the executor's scheduling, waiting).

  python benchmarks/profile_step.py                      # full CIFAR-10 config, 8 images, row 16
  python benchmarks/profile_step.py --num_samples=64
  python benchmarks/profile_step.py --inter_op_threads=1 --executor=single_threaded   # the knobs

Last output line: one JSON object with the per-type totals.
"""

import collections
import glob
import json
import os
import re
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402
from absl import app, flags  # noqa: E402
from tensorflow.tsl.profiler.protobuf import xplane_pb2  # noqa: E402

from pixelsnail_tf.sampling import SAMPLERS  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import define_sampling_flags, executor, machine, model_and_noise  # noqa: E402

flags.DEFINE_integer("row", 16, "the row profiled", lower_bound=1)
flags.DEFINE_integer("top", 25, "op types listed")
define_sampling_flags()
FLAGS = flags.FLAGS
OP_EVENT = re.compile(r"[^\s:]+:\w+")  # not the executor's "A::B" nor the eager runtime's "Execute: f"


def profiled_row(model, noise, row, width, logdir):
    """Samples with the profiler on during row `row` only; the wall seconds of that row and of the row
    before it (not profiled: the profiler's own cost is the difference)."""
    ends = {0: time.perf_counter()}

    def progress(done):
        r = done // width  # rows done
        if r == row + 1:
            tf.profiler.experimental.stop()
        ends[r] = time.perf_counter()
        if r == row:
            tf.profiler.experimental.start(logdir)

    with executor():
        SAMPLERS["fast"](model, progress=progress)(noise).numpy()
    return ends[row + 1] - ends[row], ends[row] - ends[row - 1]


def op_totals(logdir):
    """{op type: [count, thread seconds]} over the threads of the trace, and the threads' time inside the
    default executor's Process spans (ops and the executor's own work between them)."""
    (path,) = glob.glob(os.path.join(logdir, "plugins", "profile", "*", "*.xplane.pb"))
    space = xplane_pb2.XSpace()
    with open(path, "rb") as f:
        space.ParseFromString(f.read())
    totals, executor = collections.defaultdict(lambda: [0, 0.0]), 0.0
    for plane in space.planes:
        if plane.name != "/host:CPU":
            continue
        for line in plane.lines:  # the inter-op pool's threads, or the caller's (single-threaded executor)
            for event in line.events:
                name = plane.event_metadata[event.metadata_id].name
                seconds = event.duration_ps * 1e-12
                if name == "ExecutorState::Process":
                    executor += seconds
                elif OP_EVENT.fullmatch(name):  # an op: "scope/name:Type"
                    total = totals[name.rsplit(":", 1)[1]]
                    total[0] += 1
                    total[1] += seconds
    return totals, executor


def main(argv):
    del argv
    size = FLAGS.image_size
    if FLAGS.row >= size:
        sys.exit(f"error: --row={FLAGS.row} but the images have {size} rows")
    config, model, noise = model_and_noise()
    with tempfile.TemporaryDirectory() as logdir:
        wall, unprofiled = profiled_row(model, noise, FLAGS.row, size, logdir)
        totals, executor = op_totals(logdir)
    steps = size  # pixel steps in the row
    ops = sum(t[1] for t in totals.values())
    cores = len(os.sched_getaffinity(0))
    print(f"row {FLAGS.row}, {FLAGS.num_samples} images of {size}x{size}, {config.model}: "
          f"{unprofiled / steps * 1e3:.1f} ms per pixel step (the row before, not profiled), "
          f"{wall / steps * 1e3:.1f} ms profiled; per step the ops take {ops / steps * 1e3:.1f} ms of thread "
          f"time, the executor's spans {executor / steps * 1e3:.1f} ms, {cores} cores "
          f"{cores * wall / steps * 1e3:.1f} ms")
    print(f"{'op type':<28}{'per step':>9}{'ms/step':>9}{'us/op':>8}")
    ranked = sorted(totals.items(), key=lambda item: -item[1][1])
    for kind, (count, seconds) in ranked[:FLAGS.top]:
        print(f"{kind:<28}{count / steps:>9.1f}{seconds / steps * 1e3:>9.2f}{seconds / count * 1e6:>8.1f}")
    rest = ranked[FLAGS.top:]
    print(f"{'(other types)':<28}{sum(c for _, (c, _) in rest) / steps:>9.1f}"
          f"{sum(s for _, (_, s) in rest) / steps * 1e3:>9.2f}")
    print(json.dumps({"ms_per_pixel_step": unprofiled / steps * 1e3,
                      "ms_per_pixel_step_profiled": wall / steps * 1e3,
                      "op_thread_ms_per_step": ops / steps * 1e3,
                      "executor_thread_ms_per_step": executor / steps * 1e3,
                      "ops_per_step": sum(t[0] for t in totals.values()) / steps,
                      "per_type": {k: {"per_step": c / steps, "ms_per_step": s / steps * 1e3}
                                   for k, (c, s) in ranked},
                      "num_samples": FLAGS.num_samples, "row": FLAGS.row,
                      "inter_op_threads": FLAGS.inter_op_threads, "executor": FLAGS.executor,
                      "model": config.model,
                      "machine": machine(), "tensorflow": tf.__version__}))


if __name__ == "__main__":
    app.run(main)

"""Seconds to draw --num_samples images with the fast (cached) or the naive sampler.

  python benchmarks/sample.py                          # fast sampler, 8 images, full CIFAR-10 config
  python benchmarks/sample.py --sampler=naive          # the original's algorithm (extrapolated)

fast: one untimed run (it traces the row function), then the timed run of the whole sampling.
naive: every pixel runs the whole network on the canvas, H*W times the same work; the time of
--naive_steps such pixel steps (after one untimed step) is extrapolated to H*W steps, and the output
says so. Last output line: one JSON object with `seconds` (and the settings it ran with).
"""

import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402
from absl import app, flags  # noqa: E402

from pixelsnail_tf.distributions.logistic_mixture import sample_discretized_mix_logistic  # noqa: E402
from pixelsnail_tf.sampling import SAMPLERS  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import define_sampling_flags, executor, machine, model_and_noise  # noqa: E402

flags.DEFINE_enum("sampler", "fast", list(SAMPLERS), "which sampler to time")
flags.DEFINE_integer("naive_steps", 3, "pixel steps timed for the naive sampler")
define_sampling_flags()
FLAGS = flags.FLAGS


def time_fast(model, u_mix, u_logistic):
    sampler = SAMPLERS["fast"](model)
    with executor():
        start = time.perf_counter()
        sampler((u_mix, u_logistic)).numpy()
        first = time.perf_counter() - start
        start = time.perf_counter()
        sampler((u_mix, u_logistic)).numpy()
    return time.perf_counter() - start, {"first_call_seconds": first}


def time_naive(model, u_mix, u_logistic):
    """One pixel step of the naive sampler: the whole network on the canvas, then the draw."""
    size = FLAGS.image_size
    step = tf.function(lambda canvas, r, c: sample_discretized_mix_logistic(
        model(canvas)[:, r, c], u_mix[:, r, c], u_logistic[:, r, c]))
    canvas = tf.zeros([FLAGS.num_samples, size, size, 3])
    step(canvas, tf.constant(0), tf.constant(0)).numpy()  # traces it
    start = time.perf_counter()
    for p in range(1, FLAGS.naive_steps + 1):
        step(canvas, tf.constant(p // size), tf.constant(p % size)).numpy()
    per_step = (time.perf_counter() - start) / FLAGS.naive_steps
    return per_step * size * size, {"seconds_per_pixel_step": per_step,
                                    "extrapolated_from_pixel_steps": FLAGS.naive_steps}


def main(argv):
    del argv
    config, model, (u_mix, u_logistic) = model_and_noise()
    size = FLAGS.image_size
    seconds, details = (time_fast if FLAGS.sampler == "fast" else time_naive)(model, u_mix, u_logistic)
    result = {"seconds": seconds, "sampler": FLAGS.sampler, "mixed_precision": FLAGS.mixed_precision,
              "kernels": model.kernels, "inter_op_threads": FLAGS.inter_op_threads,
              "executor": FLAGS.executor,
              "num_samples": FLAGS.num_samples,
              "image_size": size, "model": config.model, "params": model.count_params(), **details,
              "machine": machine(), "tensorflow": tf.__version__}
    how = " (extrapolated)" if FLAGS.sampler == "naive" else ""
    print(f"{FLAGS.sampler} sampler, {config.model}, {FLAGS.num_samples} images of {size}x{size}: "
          f"{seconds:.1f} s{how} on {result['machine']}")
    print(json.dumps(result))


if __name__ == "__main__":
    app.run(main)

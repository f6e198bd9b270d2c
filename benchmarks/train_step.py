"""Images/s and peak memory of one training step (loss, gradients, Polyak average, original Adam).

  python benchmarks/train_step.py                 # full CIFAR-10 config, batch 8, dropout 0.5
  python benchmarks/train_step.py --batch_size=4 --accum_steps=2   # the same 8 images per step, accumulated
  python benchmarks/train_step.py --recompute --inter_op_threads=1   # an inter-op pool of one thread

Same flags as forward.py, and sample.py's --inter_op_threads (not its --executor: TensorFlow's
single-threaded executor cannot run a training step, whose sums of gradients have reference-typed
edges). Last output line: one JSON object with images_per_sec and peak_rss_mb.
"""

import json
import os
import resource
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app, flags  # noqa: E402

from pixelsnail_tf import cli  # noqa: E402
from pixelsnail_tf.training import TrainConfig, build_trainer  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import define_flags, define_scheduling_flags, machine, set_inter_op_threads  # noqa: E402

define_flags("training step")
define_scheduling_flags(executor=False)
flags.DEFINE_float("dropout_p", 0.5, "dropout of the training step")
flags.DEFINE_integer("accum_steps", 1, "micro-batches of --batch_size images per step (train.py's)")
flags.DEFINE_bool("recompute", False, "recompute activations in the backward pass (train.py's)")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    set_inter_op_threads()
    config = cli.model_config_from_flags(FLAGS.flag_values_dict(), dropout_p=FLAGS.dropout_p)
    trainer = build_trainer(config, TrainConfig(batch_size=FLAGS.batch_size, accum_steps=FLAGS.accum_steps),
                      recompute=FLAGS.recompute, **cli.model_options(FLAGS.flag_values_dict()))
    size, count = FLAGS.image_size, FLAGS.batch_size * FLAGS.accum_steps
    images = tf.constant(np.random.default_rng(0).integers(0, 256, (count, size, size, 3), np.uint8))
    trainer.initialize(images[:FLAGS.batch_size])
    trainer.train_step(images).numpy()  # trace and warm up
    start = time.perf_counter()
    for _ in range(FLAGS.iters):
        trainer.train_step(images).numpy()
    seconds = (time.perf_counter() - start) / FLAGS.iters
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux
    gpu = ({"peak_gpu_mb": tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2 ** 20}
           if tf.config.list_physical_devices("GPU") else {})
    result = {"images_per_sec": count / seconds, "accum_steps": FLAGS.accum_steps,
              "recompute": FLAGS.recompute, "mixed_precision": FLAGS.mixed_precision,
              "kernels": trainer.model.kernels, "inter_op_threads": FLAGS.inter_op_threads,
              "seconds_per_step": seconds,
              "peak_rss_mb": peak, **gpu, "batch_size": FLAGS.batch_size, "image_size": size,
              "model": config.model, "params": trainer.model.count_params(), "machine": machine(),
              "tensorflow": tf.__version__}
    print(f"train step {config.model}, batch {FLAGS.batch_size} x {FLAGS.accum_steps}: "
          f"{result['images_per_sec']:.2f} "
          f"images/s, peak {peak:.0f} MB on {result['machine']}")
    print(json.dumps(result))


if __name__ == "__main__":
    app.run(main)

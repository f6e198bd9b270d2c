"""Images/s of the log-likelihood (forward pass + mixture loss) of a model (any --model).

  python benchmarks/forward.py                    # full CIFAR-10 config, batch 8
  python benchmarks/forward.py --batch_size=16 --iters=10

Last output line: one JSON object with images_per_sec (and the settings it ran with).
"""

import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app, flags  # noqa: E402

from pixelsnail_tf import cli  # noqa: E402
from pixelsnail_tf.models import build_model  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import define_flags, machine  # noqa: E402

define_flags("forward pass")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    config = cli.model_config_from_flags(FLAGS.flag_values_dict(), dropout_p=0.0)
    model = build_model(config, **cli.model_options(FLAGS.flag_values_dict()))
    size = FLAGS.image_size
    images = np.random.default_rng(0).integers(0, 256, (FLAGS.batch_size, size, size, 3), np.uint8)
    model.build(images.shape)
    model.log_prob(images).numpy()  # trace and warm up
    start = time.perf_counter()
    for _ in range(FLAGS.iters):
        model.log_prob(images).numpy()
    seconds = (time.perf_counter() - start) / FLAGS.iters
    result = {"images_per_sec": FLAGS.batch_size / seconds, "mixed_precision": FLAGS.mixed_precision,
              "kernels": model.kernels,
              "seconds_per_batch": seconds,
              "batch_size": FLAGS.batch_size, "image_size": size, "model": config.model,
              "params": model.count_params(), "machine": machine(), "tensorflow": tf.__version__}
    print(f"{config.model}, {model.count_params():,} params, batch {FLAGS.batch_size}, "
          f"{size}x{size}: {result['images_per_sec']:.2f} images/s on {result['machine']}")
    print(json.dumps(result))


if __name__ == "__main__":
    app.run(main)

"""Speed of the ORIGINAL PixelSNAIL code on this machine, for same-machine ratios with ours.

Runs the original TF1 model code of a checkout of neocxi/pixelsnail-public (not part of this project;
pass its folder) under tf.compat.v1 graph mode, with a small stand-in for the tf.contrib arg scopes
it imports. Measures what its train.py runs: the test loss with EMA weights (--mode=forward) or one
training step, loss + gradients + its Adam + EMA (--mode=train_step).

  python benchmarks/original.py --original_repo=/path/to/pixelsnail-public --mode=forward

Last output line: one JSON object with images_per_sec.
"""

import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app, flags  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import machine  # noqa: E402
from original_code import import_original  # noqa: E402
from script_flags import define_original_repo_flag  # noqa: E402

define_original_repo_flag()
flags.DEFINE_enum("mode", "forward", ["forward", "train_step"], "what to time")
flags.DEFINE_integer("batch_size", 8, "images per step")
flags.DEFINE_integer("iters", 3, "timed steps (after one untimed warm-up)", lower_bound=1)
flags.DEFINE_string("model", "h12_noup_smallkey", "the original's model name")
flags.DEFINE_integer("nr_resnet", 4, "as the original train.py")
flags.DEFINE_integer("nr_filters", 256, "as the original train.py")
flags.DEFINE_integer("nr_logistic_mix", 10, "as the original train.py")
flags.DEFINE_string("resnet_nonlinearity", "elu", "as the original train.py")
flags.DEFINE_float("dropout_p", 0.5, "dropout of the training step, as the original train.py")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    tf.compat.v1.disable_v2_behavior()  # graph mode and reference variables, as TF1
    nn, models = import_original(FLAGS.original_repo)
    v1 = tf.compat.v1
    shape = (FLAGS.batch_size, 32, 32, 3)
    model_opt = dict(nr_resnet=FLAGS.nr_resnet, nr_filters=FLAGS.nr_filters,
                     nr_logistic_mix=FLAGS.nr_logistic_mix,
                     resnet_nonlinearity=FLAGS.resnet_nonlinearity)
    model = v1.make_template("model", getattr(models, FLAGS.model + "_spec"))
    x = v1.placeholder(tf.float32, shape)
    model(x, None, init=True, dropout_p=FLAGS.dropout_p, **model_opt)
    params = v1.trainable_variables()
    ema = v1.train.ExponentialMovingAverage(decay=0.9995)
    maintain_averages = ema.apply(params)
    if FLAGS.mode == "forward":
        fetch = nn.discretized_mix_logistic_loss(x, model(x, None, ema=ema, dropout_p=0.0, **model_opt))
    else:
        loss = nn.discretized_mix_logistic_loss(
            x, model(x, None, ema=None, dropout_p=FLAGS.dropout_p, **model_opt))
        grads = v1.gradients(loss, params)
        fetch = [loss, v1.group(nn.adam_updates(params, grads, lr=1e-3, mom1=0.95, mom2=0.9995,
                                                eps=1e-6), maintain_averages)]
    feed = {x: np.random.default_rng(0).uniform(-1, 1, shape).astype(np.float32)}
    with v1.Session() as session:
        session.run(v1.global_variables_initializer(), feed)
        session.run(fetch, feed)
        start = time.perf_counter()
        for _ in range(FLAGS.iters):
            session.run(fetch, feed)
        seconds = (time.perf_counter() - start) / FLAGS.iters
    count = sum(int(np.prod(p.shape)) for p in params)
    result = {"images_per_sec": FLAGS.batch_size / seconds, "seconds_per_batch": seconds,
              "mode": FLAGS.mode, "batch_size": FLAGS.batch_size, "model": FLAGS.model,
              "params": count, "machine": machine(), "tensorflow": tf.__version__,
              "implementation": "original TF1 code"}
    print(f"original {FLAGS.model} {FLAGS.mode}, {count:,} params, batch {FLAGS.batch_size}: "
          f"{result['images_per_sec']:.2f} images/s on {result['machine']}")
    print(json.dumps(result))


if __name__ == "__main__":
    app.run(main)

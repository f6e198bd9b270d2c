"""Makes a reference bundle with dropout and concat_elu by running the ORIGINAL PixelSNAIL code.

The public reference bundles have dropout 0 and elu. This one runs the original model code of a
checkout of neocxi/pixelsnail-public (under tf.compat.v1, as benchmarks/original.py) with
resnet_nonlinearity=concat_elu and dropout_p=0.5 on a tiny configuration, and fixes every dropout mask:
each `tf.nn.dropout` call of the original's gated_resnet is given a recorded 0/1 mask (scaled by
1/keep_prob, as TensorFlow's dropout), so that a port can be compared on the same masks. It writes:

  <out_dir>/after_init/model.ckpt   the weights after the data-dependent init (masks on), with their
                                    Polyak averages and Adam's moments, in the original's layout
  <out_dir>/reference.npz           x_init_u8, x_train_u8, x_test_u8 (uint8 [4,8,8,3]);
                                    mask_init/<k>, mask_train/<k>: the k-th dropout call's mask;
                                    params_init/<name>: the weights after the init;
                                    test_out: the network's output on x_test (dropout off);
                                    test_loss, train_loss: summed negative log-likelihoods (nats);
                                    grads_step1/<name>: the gradients of train_loss (masks mask_train)
  <out_dir>/config.json             the model config

  python benchmarks/original_dropout_bundle.py --original_repo=PATH --out_dir=tests/fixtures/dropout
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app, flags  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from original_code import import_original, to_float  # noqa: E402

flags.DEFINE_string("original_repo", None, "folder of a neocxi/pixelsnail-public checkout", required=True)
flags.DEFINE_string("out_dir", None, "where to write the bundle (must not exist)", required=True)
FLAGS = flags.FLAGS

CONFIG = {"model": "h12_noup_smallkey", "nr_resnet": 1, "nr_filters": 16, "nr_logistic_mix": 3,
          "resnet_nonlinearity": "concat_elu", "dropout_p": 0.5, "attn_rep": 2}
SHAPE = (4, 8, 8, 3)
SEED = 7


class FixedMasks:
    """Stands in for tf.nn.dropout: the k-th call multiplies by 1/keep_prob and by the k-th mask, a
    placeholder fed with 0/1 values drawn here."""

    def __init__(self):
        self.placeholders = []

    def __call__(self, x, keep_prob=None, **unused):
        mask = tf.compat.v1.placeholder(tf.float32, x.shape, name=f"dropout_mask_{len(self.placeholders)}")
        self.placeholders.append(mask)
        return x * (1.0 / keep_prob) * mask


def main(argv):
    del argv
    if os.path.exists(FLAGS.out_dir):
        sys.exit(f"error: --out_dir={FLAGS.out_dir} exists already")
    tf.compat.v1.disable_v2_behavior()
    nn, models = import_original(FLAGS.original_repo)
    v1 = tf.compat.v1
    v1.set_random_seed(SEED)
    masks = FixedMasks()
    v1.nn.dropout = masks
    rng = np.random.default_rng(SEED)
    images = {name: rng.integers(0, 256, SHAPE, dtype=np.uint8) for name in ("init", "train", "test")}
    model_opt = {k: CONFIG[k] for k in ("nr_resnet", "nr_filters", "nr_logistic_mix", "resnet_nonlinearity",
                                        "attn_rep")}
    model = v1.make_template("model", getattr(models, CONFIG["model"] + "_spec"))
    x = {name: v1.placeholder(tf.float32, SHAPE, name=f"x_{name}") for name in images}
    model(x["init"], None, init=True, dropout_p=CONFIG["dropout_p"], **model_opt)
    init_masks = list(masks.placeholders)
    params = v1.trainable_variables()
    ema = v1.train.ExponentialMovingAverage(decay=0.9995)
    ema.apply(params)
    train_out = model(x["train"], None, dropout_p=CONFIG["dropout_p"], **model_opt)
    train_masks = masks.placeholders[len(init_masks):]
    train_loss = nn.discretized_mix_logistic_loss(x["train"], train_out)
    grads = v1.gradients(train_loss, params)
    nn.adam_updates(params, grads, lr=1e-3, mom1=0.95, mom2=0.9995, eps=1e-6)  # its moments, for the layout
    test_out = model(x["test"], None, dropout_p=0.0, **model_opt)
    test_loss = nn.discretized_mix_logistic_loss(x["test"], test_out)
    assert len(masks.placeholders) == 2 * len(init_masks)  # dropout only in the init and training passes
    drawn = {m: (rng.random(m.shape.as_list()) >= CONFIG["dropout_p"]).astype(np.float32)
             for m in masks.placeholders}
    feed = {**{x[name]: to_float(images[name]) for name in images}, **drawn}
    with v1.Session() as session:
        session.run(v1.global_variables_initializer(), feed)
        values = session.run({"params": {p.op.name: p for p in params}, "test_out": test_out,
                              "test_loss": test_loss, "train_loss": train_loss,
                              "grads": {p.op.name: g for p, g in zip(params, grads)}}, feed)
        os.makedirs(os.path.join(FLAGS.out_dir, "after_init"))
        v1.train.Saver().save(session, os.path.join(FLAGS.out_dir, "after_init", "model.ckpt"),
                              write_meta_graph=False)
    arrays = {f"x_{name}_u8": array for name, array in images.items()}
    arrays.update({f"mask_init/{k}": drawn[m] for k, m in enumerate(init_masks)})
    arrays.update({f"mask_train/{k}": drawn[m] for k, m in enumerate(train_masks)})
    arrays.update({f"params_init/{name}": value for name, value in values["params"].items()})
    arrays.update({f"grads_step1/{name}": value for name, value in values["grads"].items()})
    arrays.update(test_out=values["test_out"], test_loss=np.float32(values["test_loss"]),
                  train_loss=np.float32(values["train_loss"]))
    np.savez_compressed(os.path.join(FLAGS.out_dir, "reference.npz"), **arrays)
    with open(os.path.join(FLAGS.out_dir, "config.json"), "w") as f:
        json.dump(CONFIG, f, indent=1)
    print(f"wrote {FLAGS.out_dir}: {len(params)} weights, {len(init_masks)} dropout masks per pass, "
          f"test loss {values['test_loss']:.4f}, train loss {values['train_loss']:.4f}")


if __name__ == "__main__":
    app.run(main)

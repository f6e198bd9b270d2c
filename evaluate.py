"""Test bits/dim of a PixelSNAIL checkpoint: pixelsnail_tf's own or an original TF1 one.

  python evaluate.py --checkpoint=checkpoints/cifar --dataset=cifar10
  python evaluate.py --checkpoint=PREFIX --images=test.npy --json_out=result.json
"""

import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

from pixelsnail_tf import checkpointing, cli, data, evaluation, tf1_checkpoint  # noqa: E402
from pixelsnail_tf.model import PixelSNAIL  # noqa: E402

flags.DEFINE_string("checkpoint", None, "checkpoint prefix (.../model.ckpt, .../ckpt-7) or a directory "
                    "(its latest checkpoint); original TF1 checkpoints are detected", required=True)
flags.DEFINE_bool("ema", True, "evaluate the Polyak-averaged (EMA) weights; --noema: the raw weights")
flags.DEFINE_enum("dataset", "cifar10", list(data.DATASETS), "test set to evaluate on")
flags.DEFINE_string("data_dir", "./data", "data root: the original's file layout "
                    "(cifar-10-python/cifar-10-batches-py/, small_imagenet/imgnet_32x32.npz) or "
                    "tensorflow_datasets' data directory")
flags.DEFINE_string("images", None, "evaluate on these images instead: a .npy file of uint8 [N,H,W,3]")
flags.DEFINE_integer("batch_size", 16, "images per forward pass")
flags.DEFINE_string("json_out", None, "write {bpd, per_image_bpd, per_image_log_likelihood} here")
cli.define_model_flags()
flags.adopt_module_key_flags(cli)  # --help lists the model flags too
FLAGS = flags.FLAGS


def model_config(prefix):
    """Config from the flags (TF1 checkpoints) or from the run's config.json (ours)."""
    values = FLAGS.flag_values_dict()
    if checkpointing.is_tf1(prefix):
        return cli.model_config_from_flags(values, dropout_p=0.0), "original TF1"
    config = checkpointing.read_config(os.path.dirname(prefix))
    given = cli.explicit_model_flags(FLAGS)
    if given:
        differences = checkpointing.config_differences(
            config, config.replace(**{name: values[name] for name in given}))
        if differences:
            raise ValueError(f"model flags contradict {prefix}'s config.json: " + "; ".join(differences))
    return config, "pixelsnail_tf"


def main(argv):
    del argv
    try:
        prefix = tf1_checkpoint.resolve_prefix(FLAGS.checkpoint)
        config, kind = model_config(prefix)
        if FLAGS.images:
            images, labels = data.load_images_npy(FLAGS.images), None
        else:
            images, labels = data.load_split(FLAGS.dataset, "test", FLAGS.data_dir)
        if not config.num_classes:
            labels = None
        model = PixelSNAIL(config)
        model.build(images.shape)
        checkpointing.load_weights(model, prefix, use_ema=FLAGS.ema)
        ll = evaluation.log_likelihood(model, images, labels, batch_size=FLAGS.batch_size)
    except (ValueError, FileNotFoundError) as error:
        cli.fail(error)
    result = evaluation.summary(ll, images.shape)
    print(f"test bpd {result['bpd']:.6f} on {len(images)} images "
          f"({'EMA' if FLAGS.ema else 'raw'} weights, {kind} checkpoint {prefix})")
    if FLAGS.json_out:
        with open(FLAGS.json_out, "w") as f:
            json.dump(result, f)


if __name__ == "__main__":
    app.run(main)

"""Test bits/dim of a PixelSNAIL checkpoint: pixelsnail_tf's own or an original TF1 one.

  python evaluate.py --checkpoint=checkpoints/cifar --dataset=cifar10
  python evaluate.py --checkpoint=PREFIX --images=test.npy --json_out=result.json
"""

import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

from pixelsnail_tf import cli, data, evaluation  # noqa: E402

flags.DEFINE_string("checkpoint", None, "checkpoint prefix (.../model.ckpt, .../ckpt-7) or a directory "
                    "(its latest checkpoint); original TF1 checkpoints are detected", required=True)
flags.DEFINE_bool("ema", True, "evaluate the Polyak-averaged (EMA) weights; --noema: the raw weights")
flags.DEFINE_enum("dataset", "cifar10", list(data.DATASETS), "test set to evaluate on")
flags.DEFINE_string("data_dir", "./data", "data root: the original's file layout "
                    "(cifar-10-python/cifar-10-batches-py/, small_imagenet/imgnet_32x32.npz) or "
                    "tensorflow_datasets' data directory")
flags.DEFINE_string("images", None, "evaluate on these images instead: a .npy file of uint8 [N,H,W,3]")
flags.DEFINE_integer("batch_size", 16, "images per forward pass", lower_bound=1)
flags.DEFINE_string("json_out", None, "write {bpd, per_image_bpd, per_image_log_likelihood} here")
cli.define_model_flags()
cli.define_precision_flag()
cli.define_kernels_flag()
flags.adopt_module_key_flags(cli)  # --help lists the model flags too
FLAGS = flags.FLAGS


def main(argv):
    del argv
    try:
        model, prefix, kind = cli.load_model(FLAGS.checkpoint, FLAGS.flag_values_dict(),
                                             cli.explicit_model_flags(FLAGS), use_ema=FLAGS.ema)
        if FLAGS.images:
            images, labels = data.load_images_npy(FLAGS.images), None
        else:
            images, labels = data.load_split(FLAGS.dataset, "test", FLAGS.data_dir)
        if not model.config.num_classes:
            labels = None
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

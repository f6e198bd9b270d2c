"""Export a PixelSNAIL checkpoint (ours or an original TF1 one) as a SavedModel for TF Serving.

  python export.py --checkpoint=checkpoints/cifar --export_dir=serving/pixelsnail --version=1

Writes <export_dir>/<version>/ (saved_model.pb, variables/), the layout TF Serving loads, with the
Polyak-averaged weights by default. Signatures: serving_default (uint8 images -> log_likelihood,
bits_per_dim) and sample (num_samples, seed[, class_label] -> uint8 images).
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

from pixelsnail_tf import cli  # noqa: E402
from pixelsnail_tf.serving import export_saved_model  # noqa: E402

flags.DEFINE_string("checkpoint", None, "checkpoint prefix or folder, either kind", required=True)
flags.DEFINE_bool("ema", True, "export the Polyak-averaged (EMA) weights; --noema: the raw weights")
flags.DEFINE_string("image_size", "32,32", "H,W of the images the SavedModel takes and draws")
flags.DEFINE_string("export_dir", None, "model base path of TF Serving", required=True)
flags.DEFINE_integer("version", 1, "version folder under --export_dir (must not exist yet; TF Serving "
                     "loads the highest)", lower_bound=0)
cli.define_model_flags()
cli.define_kernels_flag(default="reference", note=" (fast needs tensorflow_model_server "
                               "--xla_cpu_compilation_enabled=true on CPU: TF Serving disables XLA JIT "
                               "by default)")
flags.adopt_module_key_flags(cli)
FLAGS = flags.FLAGS


def main(argv):
    del argv
    path = os.path.join(FLAGS.export_dir, str(FLAGS.version))
    try:
        if os.path.exists(path):
            raise FileExistsError(f"{path} exists already; choose another --version")
        height, width = cli.image_size(FLAGS.image_size)
        model, prefix, kind = cli.load_model(FLAGS.checkpoint, FLAGS.flag_values_dict(),
                                             cli.explicit_model_flags(FLAGS), use_ema=FLAGS.ema)
        export_saved_model(model, path, height, width)
    except (ValueError, FileNotFoundError, FileExistsError) as error:
        cli.fail(error)
    print(f"exported {kind} checkpoint {prefix} ({'EMA' if FLAGS.ema else 'raw'} weights, "
          f"{height}x{width}) to {path}")


if __name__ == "__main__":
    app.run(main)

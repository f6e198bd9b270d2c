"""Export a PixelSNAIL checkpoint (ours or an original TF1 one) as a SavedModel for TF Serving, or as a
Keras model file.

  pixelsnail-export --checkpoint=checkpoints/cifar --export_dir=serving/pixelsnail --version=1
  pixelsnail-export --checkpoint=checkpoints/cifar --export_dir=keras_models --format=keras

Writes <export_dir>/<version>/ (saved_model.pb, variables/), the layout TF Serving loads, with the
Polyak-averaged weights by default. Signatures: serving_default (uint8 images -> log_likelihood,
bits_per_dim, per_pixel_bits) and sample (num_samples, seed[, class_label] -> uint8 images).
--format=keras writes <export_dir>/<version>/model.keras instead: the model with those weights as its
own, for keras.saving.load_model after `import pixelsnail_tf.models` (which registers its classes).
"""

import os
import sys

from absl import flags

from pixelsnail_tf import cli, memory
from pixelsnail_tf.commands.train import recorded_flags
from pixelsnail_tf.serving import export_saved_model

KERAS_FILE = "model.keras"


def define_flags(fv):
    flags.DEFINE_string("checkpoint", None, "checkpoint prefix or folder, either kind", required=True,
                        flag_values=fv)
    flags.DEFINE_bool("ema", True, "export the Polyak-averaged (EMA) weights; --noema: the raw weights",
                      flag_values=fv)
    flags.DEFINE_string("image_size", "32,32", "H,W of the images the SavedModel takes and draws; "
                        "default: the size the run in the checkpoint's folder was trained at, else 32,32",
                        flag_values=fv)
    flags.DEFINE_string("export_dir", None, "model base path of TF Serving", required=True, flag_values=fv)
    flags.DEFINE_enum("format", "saved_model", ["saved_model", "keras"], "saved_model: for TF Serving; "
                      "keras: a .keras file (model.keras) for keras.saving.load_model", flag_values=fv)
    flags.DEFINE_integer("version", 1, "version folder under --export_dir (must not exist yet; TF Serving "
                         "loads the highest)", lower_bound=0, flag_values=fv)
    cli.define_model_flags(fv)
    cli.define_kernels_flag(fv, default="reference", note=" (fast needs tensorflow_model_server "
                            "--xla_cpu_compilation_enabled=true on CPU: TF Serving disables XLA JIT "
                            "by default)")


def main(values):
    path = os.path.join(values.export_dir, str(values.version))
    try:
        if os.path.exists(path):
            raise FileExistsError(f"{path} exists already; choose another --version")
        if os.path.exists(values.export_dir) and not os.path.isdir(values.export_dir):
            raise ValueError(f"--export_dir={values.export_dir} is a file; give a folder")
        if values["image_size"].present:
            cli.image_size(values.image_size)  # checked before the model loads
        model, prefix, kind = cli.load_model(values.checkpoint, values.flag_values_dict(),
                                             cli.explicit_model_flags(values), use_ema=values.ema)
        if values.format == "keras":
            os.makedirs(path)
            path = os.path.join(path, KERAS_FILE)
            model.save(path)
            shape = "any image size"
        else:
            (height, width), source = cli.image_size_for(values, recorded_flags(os.path.dirname(prefix)))
            cli.check_image_size(model, height, width, source)
            memory.check_fits(memory.forward_bytes(model.config, 1, height, width),
                              f"one image of {height}x{width} ({source})", "give a smaller --image_size")
            export_saved_model(model, path, height, width)
            shape = f"{height}x{width}"
    except (ValueError, FileNotFoundError, FileExistsError) as error:
        cli.fail(error)
    print(f"exported {kind} checkpoint {prefix} ({'EMA' if values.ema else 'raw'} weights, "
          f"{shape}) to {path}")


def run():
    cli.run_program(sys.modules[__name__])

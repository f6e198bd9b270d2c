"""Command-line pieces shared by the programs (pixelsnail_tf.commands): running one, the original
train.py's model flags, loading a model from either kind of checkpoint, --image_size parsing,
one-line failures.

Flags are defined on the FlagValues a program is given; only `run_program` touches absl's global one.
"""

import os
import sys

import tensorflow as tf
from absl import app, flags, logging

from pixelsnail_tf import checkpoints, hardware
from pixelsnail_tf.config import NONLINEARITIES, OUTPUTS, VARIANTS, ModelConfig
from pixelsnail_tf.layers.kernels import AUTO, KERNELS

MODEL_FLAGS = ("model", "nr_resnet", "nr_filters", "nr_logistic_mix", "resnet_nonlinearity",
               "attn_rep", "output", "num_codes")


def run_program(module):
    """Runs a command module (define_flags, main) as the program: its flags on absl's FlagValues,
    listed by --help under the module's docstring; stray positional arguments are refused."""
    before = set(flags.FLAGS)
    module.define_flags(flags.FLAGS)
    sys.modules["__main__"].__doc__ = module.__doc__ + "\nflags:\n" + grouped_help(
        flags.FLAGS, sorted(set(flags.FLAGS) - before))

    def main(argv):
        if len(argv) > 1:
            fail(f"unexpected argument {argv[1]!r} (flags are written --name=value; see --help)")
        quiet_logs(verbose=flags.FLAGS["verbosity"].present)
        module.main(flags.FLAGS)

    app.run(main)


# --help lists a program's flags in these groups, in this order.
HELP_GROUPS = {
    "data": ("dataset", "data_set", "data_dir", "images", "image_size", "class_conditional", "shuffle",
             "noise_from", "complete", "given_rows", "given_mask"),
    "model": MODEL_FLAGS + ("preset", "dropout_p"),
    "training": ("learning_rate", "lr_decay", "batch_size", "accum_steps", "init_batch_size", "polyak_decay",
                 "max_epochs", "seed", "init_checkpoint"),
    "checkpoints and outputs": ("checkpoint", "tf1_checkpoint", "to_tf1", "ema", "save_dir",
                                "save_interval", "num_samples", "sampler", "class_label",
                                "original_sampling", "out_dir", "json_out", "export_dir", "format", "version",
                                "overwrite"),
    "compute": ("mixed_precision", "allow_tf32", "kernels", "recompute", "nr_gpu", "worker_gradients"),
}


def grouped_help(flag_values, names):
    """--help text of the flags `names`, group by group (HELP_GROUPS; the rest under "other")."""
    grouped = {name for group in HELP_GROUPS.values() for name in group}
    text = ""
    for group, members in [*HELP_GROUPS.items(), ("other", tuple(n for n in names if n not in grouped))]:
        for name in names:
            if name in members:
                flag_values.register_key_flag_for_module(group, flag_values[name])
        section = flag_values.module_help(group)
        text += section + "\n" if section else ""
    return text


def quiet_logs(verbose):
    """Warnings and errors only (TensorFlow's: errors only), unless --verbosity was given; TensorFlow's
    log lines once each (its logger has a handler of its own, and also passed every line on to absl's)."""
    tf.get_logger().propagate = False
    if not verbose:
        logging.set_verbosity(logging.WARNING)
        tf.get_logger().setLevel("ERROR")  # its warnings (retracing, ...) are for developers


def define_model_flags(flag_values=flags.FLAGS):
    """The original train.py's model flags, same names and defaults, plus --attn_rep."""
    d = ModelConfig()
    flags.DEFINE_string("model", d.model, "model variant by the original's name: "
                        + ", ".join(sorted(VARIANTS)), flag_values=flag_values)
    flags.DEFINE_integer("nr_resnet", d.nr_resnet, "gated residual layers before each attention block",
                         lower_bound=1, flag_values=flag_values)
    flags.DEFINE_integer("nr_filters", d.nr_filters, "channels of the residual stream",
                         lower_bound=1, flag_values=flag_values)
    flags.DEFINE_integer("nr_logistic_mix", d.nr_logistic_mix,
                         "logistic components of the output mixture (CIFAR 10, ImageNet 32)",
                         lower_bound=1, flag_values=flag_values)
    flags.DEFINE_enum("resnet_nonlinearity", d.resnet_nonlinearity, list(NONLINEARITIES),
                      "nonlinearity inside the gated residual layers", flag_values=flag_values)
    flags.DEFINE_integer("attn_rep", None, "number of attention blocks; default: what --model "
                         "implies (h12 -> 12, h8 -> 8, h6_noup/model -> 6)", lower_bound=1,
                         flag_values=flag_values)
    flags.DEFINE_enum("output", d.output, list(OUTPUTS), "what the model is a distribution over: "
                      "logistic_mixture: 8-bit RGB images, per pixel a mixture of --nr_logistic_mix "
                      "discretized logistics (the original); categorical: integer code maps [H,W] in "
                      "[0, --num_codes) (e.g. a VQ-VAE's), each code embedded as the input and given a "
                      "softmax over the codes", flag_values=flag_values)
    flags.DEFINE_integer("num_codes", d.num_codes, "with --output=categorical: the number of codes K",
                         lower_bound=0, flag_values=flag_values)


# --mixed_precision -> the model's Keras dtype policy.
PRECISIONS = {"float32": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}


# --mixed_precision and --kernels say how the model computes, not what: checkpoints do not
# depend on them.
def define_precision_flag(flag_values=flags.FLAGS):
    flags.DEFINE_enum("mixed_precision", "float32", list(PRECISIONS),
                      "bfloat16: the layers compute in bfloat16 from float32 weights (faster on CPUs with "
                      "native bfloat16, AVX512_BF16/AMX, and on GPUs; figures in docs/speed.md); the attention "
                      "softmax, the output layer and the likelihood stay float32; float16: the same in "
                      "float16, for GPUs without bfloat16 (V100, T4), training with a dynamic loss scale",
                      flag_values=flag_values)
    flags.DEFINE_bool("allow_tf32", False, "let NVIDIA GPUs (Ampere and later) compute float32 matmuls and "
                      "convolutions in TensorFloat-32 (10-bit mantissa: faster, but results then differ "
                      "from exact float32 by ~1e-3 relative); off by default", flag_values=flag_values)


def define_kernels_flag(flag_values=flags.FLAGS, default=AUTO, note=""):
    flags.DEFINE_enum("kernels", default, [AUTO, *KERNELS],
                      "auto: fast on CPU, reference on GPU (the kernels measured fastest there); "
                      "fast: the causal 2x2/2x3 convolutions by Winograd F(2x2,k) and the gated layers' "
                      "elementwise chains fused, with XLA (the same math, faster on CPU: docs/speed.md); "
                      "reference: TensorFlow's own ops (tf.nn.conv2d, ...), as the original" + note,
                      flag_values=flag_values)


def model_options(values):
    """build_model's keyword arguments (dtype, kernels, allow_tf32) for the compute flags in `values`;
    a precision that this machine would emulate is warned about on stderr."""
    precision = values.get("mixed_precision") or "float32"
    warning = hardware.precision_warning(precision)
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    kernels = values.get("kernels") or AUTO
    return {"dtype": PRECISIONS[precision],
            "kernels": hardware.auto_kernels() if kernels == AUTO else kernels,
            "allow_tf32": bool(values.get("allow_tf32"))}


def model_config_from_flags(values, **extra):
    """ModelConfig from a dict of flag values (FLAGS.flag_values_dict())."""
    return ModelConfig(**{name: values[name] for name in MODEL_FLAGS}, **extra)


def explicit_model_flags(flag_values):
    """{name: value} of the model flags given on the command line."""
    return {name: flag_values[name].value for name in MODEL_FLAGS if flag_values[name].present}


def load_model(path, values, explicit, use_ema=True):
    """(model with loaded weights, checkpoint prefix, kind) from a checkpoint of either kind: an original
    TF1 one is built from the model flags in `values`; ours from its config.json, which the `explicit`
    model flags (given on the command line) must agree with."""
    return checkpoints.load_model(path, lambda: model_config_from_flags(values, dropout_p=0.0), explicit,
                                  use_ema, **model_options(values))


IMAGE_SIZE_FORM = "--image_size must be H,W or one number (positive integers)"


def image_size(text):
    """[H, W] from --image_size "H,W" or "N" (square)."""
    try:
        parts = [int(p) for p in text.split(",")]
    except ValueError:
        parts = []
    if len(parts) == 1:
        parts *= 2
    if len(parts) != 2 or min(parts) < 1:
        raise ValueError(f"{IMAGE_SIZE_FORM}, got {text!r}")
    return parts


def image_size_is_valid(text):
    try:
        return bool(image_size(text))
    except ValueError:
        return False


def image_size_for(values, recorded):
    """([H, W], where it came from): --image_size as given, else the size the run was trained at
    (`recorded`: its flags, commands.train.recorded_flags, or None), else the flag's default."""
    if not values["image_size"].present and recorded is not None and recorded.image_size:
        return image_size(recorded.image_size), f"the run's flags.txt (--image_size={recorded.image_size})"
    return image_size(values.image_size), f"--image_size={values.image_size}"


def check_image_size(model, height, width, source):
    """The model's check of an image size, its line naming where the size came from."""
    try:
        model.check_image_size(height, width)
    except ValueError as error:
        raise ValueError(f"{error} (from {source})") from None


def define_overwrite_flag(flag_values, outputs):
    flags.DEFINE_bool("overwrite", False, f"replace {outputs} where they exist already (default: refuse "
                      "to start)", flag_values=flag_values)


def check_output_folder(path, flag, names=(), overwrite=False):
    """Creates folder `path` of --flag, or fails with one line, before any work is done; one that holds
    any of the files `names` already is refused unless `overwrite`."""
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as error:
        raise ValueError(f"{flag}={path}: cannot create that folder ({error.strerror})") from None
    if not os.access(path, os.W_OK):
        raise ValueError(f"{flag}={path} is not writable")
    existing = [name for name in names if os.path.exists(os.path.join(path, name))]
    if existing and not overwrite:
        raise ValueError(f"{flag}={path} holds {existing[0]} already; give --overwrite to replace "
                         f"{'it' if len(existing) == 1 else 'them'}, or another {flag}")


def check_output_file(path, flag, overwrite=False):
    """Fails with one line when file `path` of --flag could not be written, or exists and `overwrite` is
    not given, before any work is done."""
    folder = os.path.dirname(path) or "."
    if os.path.isdir(path):
        raise ValueError(f"{flag}={path} is a folder; give a file name")
    if not os.path.isdir(folder):
        raise ValueError(f"{flag}={path}: folder {folder} does not exist")
    if os.path.exists(path) and not overwrite:
        raise ValueError(f"{flag}={path} exists already; give --overwrite to replace it, or another name")
    if not os.access(path if os.path.exists(path) else folder, os.W_OK):
        raise ValueError(f"{flag}={path} is not writable")


def fail(message):
    """Ends a script with one line on stderr and exit status 1.

    Logging is silenced first: TensorFlow would otherwise log warnings after the line as the program
    shuts down (e.g. of a checkpoint restore that the error interrupted).
    """
    logging.set_verbosity(logging.FATAL)
    tf.get_logger().setLevel("FATAL")
    sys.exit(f"error: {message}")

"""Command-line pieces shared by the scripts: the original train.py's model flags, loading a model
from either kind of checkpoint, --image_size parsing, one-line failures.

The scripts own absl FLAGS; the package only defines flags on the FlagValues it is given and works
on plain dicts of values.
"""

import os
import sys

import tensorflow as tf
from absl import flags, logging

from pixelsnail_tf import checkpointing, tf1_checkpoint
from pixelsnail_tf.config import VARIANTS, ModelConfig
from pixelsnail_tf.layers.kernels import KERNELS
from pixelsnail_tf.model import PixelSNAIL

MODEL_FLAGS = ("model", "nr_resnet", "nr_filters", "nr_logistic_mix", "resnet_nonlinearity",
               "attn_rep")


def define_model_flags(flag_values=flags.FLAGS):
    """The original train.py's model flags, same names and defaults, plus --attn_rep."""
    d = ModelConfig()
    flags.DEFINE_string("model", d.model, "model variant by the original's name: "
                        + ", ".join(sorted(VARIANTS)), flag_values=flag_values)
    flags.DEFINE_integer("nr_resnet", d.nr_resnet, "gated residual layers before each attention block",
                         flag_values=flag_values)
    flags.DEFINE_integer("nr_filters", d.nr_filters, "channels of the residual stream",
                         flag_values=flag_values)
    flags.DEFINE_integer("nr_logistic_mix", d.nr_logistic_mix,
                         "logistic components of the output mixture (CIFAR 10, ImageNet 32)",
                         flag_values=flag_values)
    flags.DEFINE_enum("resnet_nonlinearity", d.resnet_nonlinearity, ["concat_elu", "elu", "relu"],
                      "nonlinearity inside the gated residual layers", flag_values=flag_values)
    flags.DEFINE_integer("attn_rep", None, "number of attention blocks; default: what --model "
                         "implies (h12 -> 12, h8 -> 8, h6_noup/model -> 6)", flag_values=flag_values)


# --mixed_precision -> the model's Keras dtype policy.
PRECISIONS = {"float32": "float32", "bfloat16": "mixed_bfloat16"}


# --mixed_precision and --kernels say how the model computes, not what: checkpoints do not
# depend on them.
def define_precision_flag(flag_values=flags.FLAGS):
    flags.DEFINE_enum("mixed_precision", "float32", list(PRECISIONS),
                      "bfloat16: the layers compute in bfloat16 from float32 weights (about 2x faster on "
                      "CPUs with AVX512_BF16/AMX and on GPUs); the attention softmax, the output layer and "
                      "the likelihood stay float32", flag_values=flag_values)


def define_kernels_flag(flag_values=flags.FLAGS, default="fast", note=""):
    flags.DEFINE_enum("kernels", default, list(KERNELS),
                      "fast: the causal 2x2/2x3 convolutions by Winograd F(2x2,k) and the gated layers' "
                      "elementwise chains fused, with XLA (the same math, ~1.25x faster on CPU); "
                      "reference: TensorFlow's own ops (tf.nn.conv2d, ...), as the original" + note,
                      flag_values=flag_values)


def model_options(values):
    """PixelSNAIL keyword arguments (dtype, kernels) for the compute flags in `values`."""
    return {"dtype": PRECISIONS[values.get("mixed_precision") or "float32"],
            "kernels": values.get("kernels") or "fast"}


def model_config_from_flags(values, **extra):
    """ModelConfig from a dict of flag values (FLAGS.flag_values_dict())."""
    return ModelConfig(**{name: values[name] for name in MODEL_FLAGS}, **extra)


def explicit_model_flags(flag_values):
    """{name: value} of the model flags given on the command line."""
    return {name: flag_values[name].value for name in MODEL_FLAGS if flag_values[name].present}


def load_model(path, values, explicit, use_ema=True):
    """(model with loaded weights, checkpoint prefix, kind) from a checkpoint of either kind.

    An original TF1 checkpoint is read with the model flags in `values`; ours with its config.json,
    which the `explicit` model flags (given on the command line) must agree with.
    """
    prefix = tf1_checkpoint.resolve_prefix(path)
    try:
        tf1 = checkpointing.is_tf1(prefix)
    except (tf.errors.OpError, IndexError) as error:  # a truncated or corrupted index
        raise ValueError(f"cannot read checkpoint {prefix}: {first_line(error)}") from None
    if tf1:
        config, kind = model_config_from_flags(values, dropout_p=0.0), "original TF1"
    else:
        config, kind = checkpointing.read_config(os.path.dirname(prefix)), "pixelsnail_tf"
        differences = checkpointing.config_differences(config, config.replace(**explicit))
        if differences:
            raise ValueError(f"model flags contradict {prefix}'s config.json: " + "; ".join(differences))
    model = PixelSNAIL(config, **model_options(values))
    model.build((None, 2, 2, 3))
    try:
        checkpointing.load_weights(model, prefix, use_ema=use_ema)
    except (tf.errors.OpError, IndexError) as error:  # truncated or corrupted data files
        raise ValueError(f"cannot read checkpoint {prefix}: {first_line(error)}") from None
    return model, prefix, kind


def image_size(text):
    """[H, W] from "H,W" or "N" (square)."""
    parts = [int(p) for p in text.split(",")]
    if len(parts) == 1:
        parts *= 2
    if len(parts) != 2 or min(parts) < 1:
        raise ValueError(f"--image_size must be H,W or one number, got {text!r}")
    return parts


def first_line(error):
    """The first line of an exception's message (TensorFlow's carry stack traces after it)."""
    lines = str(getattr(error, "message", error)).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def fail(message):
    """Ends a script with one line on stderr and exit status 1.

    Logging is silenced first: TensorFlow would otherwise log warnings after the line as the program
    shuts down (e.g. of a checkpoint restore that the error interrupted).
    """
    logging.set_verbosity(logging.FATAL)
    tf.get_logger().setLevel("FATAL")
    sys.exit(f"error: {message}")

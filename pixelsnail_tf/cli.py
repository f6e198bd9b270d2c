"""Command-line pieces shared by the scripts: the original train.py's model flags.

The scripts own absl FLAGS; the package only defines flags on the FlagValues it is given and turns
a plain dict of values into a ModelConfig.
"""

import sys

from absl import flags

from pixelsnail_tf.config import VARIANTS, ModelConfig

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


def model_config_from_flags(values, **extra):
    """ModelConfig from a dict of flag values (FLAGS.flag_values_dict())."""
    return ModelConfig(**{name: values[name] for name in MODEL_FLAGS}, **extra)


def explicit_model_flags(flag_values):
    """Names of the model flags given on the command line."""
    return [name for name in MODEL_FLAGS if flag_values[name].present]


def fail(message):
    """Ends a script with one line on stderr and exit status 1."""
    sys.exit(f"error: {message}")

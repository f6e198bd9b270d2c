"""The residual nonlinearities the original offers (`--resnet_nonlinearity`)."""

import tensorflow as tf

from pixelsnail_tf.layers.kernels import check_kernels, xla_fused


def concat_elu(x):
    """ELU of [x, -x] along channels: doubles the channel count."""
    return tf.nn.elu(tf.concat([x, -x], axis=-1))


NONLINEARITIES = {"concat_elu": concat_elu, "elu": tf.nn.elu, "relu": tf.nn.relu}
_FUSED = {name: xla_fused(f) for name, f in NONLINEARITIES.items()}


def get_nonlinearity(name, kernels="reference"):
    """The nonlinearity called `name`; with kernels="fast", compiled by XLA into one pass."""
    if name not in NONLINEARITIES:
        raise ValueError(f"unknown nonlinearity {name!r}; choose one of {', '.join(NONLINEARITIES)}")
    return _FUSED[name] if check_kernels(kernels) == "fast" else NONLINEARITIES[name]

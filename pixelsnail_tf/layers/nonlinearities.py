"""The residual nonlinearities the original offers (`--resnet_nonlinearity`)."""

import tensorflow as tf

from pixelsnail_tf.layers.kernels import check_kernels, xla_fused


def concat_elu(x, elu=tf.nn.elu):
    """ELU of [x, -x] along channels: doubles the channel count."""
    return elu(tf.concat([x, -x], axis=-1))


def elu_by_exp(x):
    """ELU as TensorFlow's own tf.nn.elu computes it: exp(x) - 1 where x < 0. (XLA lowers tf.nn.elu to
    expm1, which rounds differently near 0 and is slower on CPU. exp of min(x, 0), so that the
    gradient of the unused branch is never inf * 0.)"""
    return tf.where(x > 0, x, tf.exp(tf.minimum(x, 0.0)) - 1.0)


NONLINEARITIES = {"concat_elu": concat_elu, "elu": tf.nn.elu, "relu": tf.nn.relu}
_FUSED = {"concat_elu": xla_fused(lambda x: concat_elu(x, elu_by_exp)),
          "elu": xla_fused(elu_by_exp),
          "relu": xla_fused(tf.nn.relu)}


def apply_activation(x, activation):
    """activation(x), or x itself where activation is None."""
    return x if activation is None else activation(x)


def get_nonlinearity(name, kernels="reference"):
    """The nonlinearity called `name`; with kernels="fast", compiled by XLA into one pass."""
    if name not in NONLINEARITIES:
        raise ValueError(f"unknown nonlinearity {name!r}; choose one of {', '.join(NONLINEARITIES)}")
    return _FUSED[name] if check_kernels(kernels) == "fast" else NONLINEARITIES[name]


def activated_channels(name, channels):
    """The channel count of nonlinearity `name` applied to `channels` channels."""
    return int(NONLINEARITIES[name](tf.zeros([1, channels])).shape[-1])

"""The residual nonlinearities the original offers (`--resnet_nonlinearity`)."""

import tensorflow as tf


def concat_elu(x):
    """ELU of [x, -x] along channels: doubles the channel count."""
    return tf.nn.elu(tf.concat([x, -x], axis=-1))


NONLINEARITIES = {"concat_elu": concat_elu, "elu": tf.nn.elu, "relu": tf.nn.relu}


def get_nonlinearity(name):
    try:
        return NONLINEARITIES[name]
    except KeyError:
        raise ValueError(f"unknown nonlinearity {name!r}; choose one of {', '.join(NONLINEARITIES)}")

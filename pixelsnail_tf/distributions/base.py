"""What every output distribution shares: bits per dimension of a log-likelihood, and the uniform noise
the samplers draw each value from."""

import math

import tensorflow as tf

UNIFORM_MIN = 1e-5  # the original draws its uniforms from [1e-5, 1 - 1e-5]


def bits_per_dim(log_likelihood, num_dims):
    """Bits per sub-pixel from log-likelihood in nats over `num_dims` sub-pixels (H*W*3)."""
    return -log_likelihood / (math.log(2.0) * num_dims)


def uniform_noise(shape, seed):
    """Stateless uniforms in [1e-5, 1 - 1e-5], the range the original samples from. seed: [2] ints."""
    return tf.random.stateless_uniform(shape, seed, minval=UNIFORM_MIN, maxval=1.0 - UNIFORM_MIN)

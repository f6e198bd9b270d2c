"""What every output distribution shares: bits per dimension of a log-likelihood, and the uniform noise
the samplers draw each value from."""

import math

import tensorflow as tf

UNIFORM_MIN = 1e-5  # the original draws its uniforms from [1e-5, 1 - 1e-5]
_PHILOX = 1  # tf.random.Algorithm.PHILOX: the algorithm of stateless draws on CPUs and GPUs
_VALUES_PER_COUNTER = 4  # Philox gives four 32-bit words per counter value, one float32 each


def bits_per_dim(log_likelihood, num_dims):
    """Bits per sub-pixel from log-likelihood in nats over `num_dims` sub-pixels (H*W*3)."""
    return -log_likelihood / (math.log(2.0) * num_dims)


def uniform_noise(shape, seed, start=0):
    """Stateless uniforms in [1e-5, 1 - 1e-5], the range the original samples from. seed: [2] ints.

    Rows [start, start + shape[0]) of the draw that `tf.random.stateless_uniform` makes from `seed` for
    any longer first dimension, equal to it to the bit: a draw of many samples can be made a batch at a
    time, in the memory of one batch. Philox's stream is addressed by its 128-bit counter, so the draw
    starts `start` rows in by advancing the counter (a carry into its high word included).
    """
    per_row = math.prod(shape[1:])
    offset = tf.cast(start, tf.uint64) * per_row
    key, counter = tf.raw_ops.StatelessRandomGetKeyCounter(seed=seed)
    low = counter[0] + offset // _VALUES_PER_COUNTER
    high = counter[1] + tf.cast(low < counter[0], tf.uint64)
    skipped = tf.cast(offset % _VALUES_PER_COUNTER, tf.int32)  # values before `start` in its counter
    flat = tf.raw_ops.StatelessRandomUniformV2(shape=[shape[0] * per_row + skipped], key=key,
                                               counter=tf.stack([low, high]), alg=_PHILOX)
    low_value, high_value = tf.constant(UNIFORM_MIN), tf.constant(1.0 - UNIFORM_MIN)
    return tf.reshape(flat[skipped:], shape) * (high_value - low_value) + low_value

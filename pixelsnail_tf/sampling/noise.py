"""The samplers' noise: uniform draws from a stateless seed, so the same seed gives the same images."""

import tensorflow as tf

from pixelsnail_tf.logistic_mixture import uniform_noise


def draw_noise(num_samples, height, width, mixtures, seed):
    """(u_mix [S,H,W,M], u_logistic [S,H,W,3]) from an integer seed (stateless RNG)."""
    seed = tf.stack([tf.cast(seed, tf.int64), tf.constant(0, tf.int64)])
    mix_seed, logistic_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    return (uniform_noise([num_samples, height, width, mixtures], mix_seed),
            uniform_noise([num_samples, height, width, 3], logistic_seed))

"""The samplers' noise: uniform draws from a stateless seed, so the same seed gives the same samples."""

import tensorflow as tf


def draw_noise(distribution, num_samples, height, width, seed, start=0):
    """The noise of `num_samples` H x W samples of a model's distribution (model.distribution), from an
    integer seed (stateless RNG): a tuple of uniforms [S,H,W,n] in [1e-5, 1 - 1e-5], named by
    distribution.noise_shapes (images: u_mix [S,H,W,M] for the component choice, u_logistic [S,H,W,3]
    for the logistics, as the original; codes: u_codes [S,H,W,K] for the Gumbel-max choice).

    With `start`, samples [start, start + num_samples) of the same seed's draw: a long draw made a batch
    at a time equals the draw made at once."""
    seed = tf.stack([tf.cast(seed, tf.int64), tf.constant(0, tf.int64)])
    return distribution.noise(num_samples, height, width, seed, start)

"""Drawing images from a model: the noise, and the samplers by name.

All uniform noise is drawn up front from a stateless seed ([S,H,W,M] for the component choice, [S,H,W,3]
for the logistics, both in [1e-5, 1 - 1e-5] as the original), so the same seed gives the same images
whatever the batching, and given noise (e.g. recorded from the original) can be replayed. Both samplers
draw the same images from the same noise:

  naive.py   the original's algorithm: the whole network on the whole canvas for every pixel
  cached.py  the fast one: each layer computes only what a new pixel changes, from its caches
"""

import tensorflow as tf

from pixelsnail_tf.logistic_mixture import uniform_noise
from pixelsnail_tf.sampling.cached import CachedSampler, sample_cached
from pixelsnail_tf.sampling.naive import NaiveSampler, sample_pixels

__all__ = ["SAMPLERS", "CachedSampler", "NaiveSampler", "draw_noise", "sample_cached", "sample_pixels"]


def draw_noise(num_samples, height, width, mixtures, seed):
    """(u_mix [S,H,W,M], u_logistic [S,H,W,3]) from an integer seed (stateless RNG)."""
    seed = tf.stack([tf.cast(seed, tf.int64), tf.constant(0, tf.int64)])
    mix_seed, logistic_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    return (uniform_noise([num_samples, height, width, mixtures], mix_seed),
            uniform_noise([num_samples, height, width, 3], logistic_seed))


# sample.py --sampler: both draw the same images from the same noise; "fast" is the default.
SAMPLERS = {"fast": CachedSampler, "naive": NaiveSampler}


"""Drawing images from a model: the noise, and the samplers by name.

All uniform noise is drawn up front from a stateless seed ([S,H,W,M] for the component choice, [S,H,W,3]
for the logistics, both in [1e-5, 1 - 1e-5] as the original), so the same seed gives the same images
whatever the batching, and given noise (e.g. recorded from the original) can be replayed. Both samplers
draw the same images from the same noise:

  naive.py       the original's algorithm: the whole network on the whole canvas for every pixel
  cached.py      the fast one: each layer computes only what a new pixel changes, from its caches
  registry.py    both by name; noise.py: the noise
  completion.py  completing partly given images with either
"""

from pixelsnail_tf.sampling.cached import CachedSampler, sample_cached
from pixelsnail_tf.sampling.completion import complete, prefix_lengths
from pixelsnail_tf.sampling.naive import NaiveSampler, sample_pixels
from pixelsnail_tf.sampling.noise import draw_noise
from pixelsnail_tf.sampling.registry import SAMPLERS

__all__ = ["SAMPLERS", "CachedSampler", "NaiveSampler", "complete", "draw_noise", "prefix_lengths",
           "sample_cached", "sample_pixels"]

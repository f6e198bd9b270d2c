"""The samplers by name (sample.py --sampler): both draw the same images from the same noise."""

from pixelsnail_tf.sampling.cached import CachedSampler
from pixelsnail_tf.sampling.naive import NaiveSampler

SAMPLERS = {"fast": CachedSampler, "naive": NaiveSampler}  # "fast" is the default

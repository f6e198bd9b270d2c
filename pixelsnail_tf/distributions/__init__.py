"""What a model is a distribution over (ModelConfig.output), and all that follows from it: the data it
takes and how the network reads them, the width of its output layer, the likelihood, the samplers' noise
and draw. The network between input and output is the same for both.

  LogisticMixture  8-bit RGB images [B,H,W,3] (the original): the network reads x = 2k/255 - 1 per
                   colour (images.py); each pixel is a discretized mixture of M logistics
                   (logistic_mixture.py), 10*M parameters
  Categorical      integer code maps [B,H,W] in [0, K), e.g. a VQ-VAE's: the network reads a learned
                   embedding of each code (nr_filters channels); each code is a K-way softmax

A "value" is what one position holds as the network reads it and the samplers write it (a pixel's three
floats, or a code); "stored" is how users give and get them (uint8 images, int32 codes).
"""

from pixelsnail_tf.distributions.base import bits_per_dim
from pixelsnail_tf.distributions.categorical import Categorical
from pixelsnail_tf.distributions.logistic_mixture import LogisticMixture

__all__ = ["DISTRIBUTIONS", "Categorical", "LogisticMixture", "bits_per_dim", "distribution_of"]

DISTRIBUTIONS = {kind.name: kind for kind in (LogisticMixture, Categorical)}


def distribution_of(config):
    """The distribution of a model config (its `output`)."""
    return DISTRIBUTIONS[config.output](config)

"""The fast sampler: the network evaluated once per pixel position, from per-layer caches.

The naive sampler runs the whole network on the whole canvas for every pixel. Here (in the spirit of
Ramachandran et al. 2017, "Fast Generation for Convolutional Autoregressive Models") each layer computes
only what the new pixel changes, row by row; each architecture's steps are in its own module
(pixelsnail_steps.py, pixelcnn_pp_steps.py), with one interface:

    Steps(model, height, width, quantize)       the model's weights prepared for its steps
    Steps.initial_state(model, batch, H, W)     the caches before row 0 (a nest of tensors)
    steps.row(r, state, u_mix, u_logistic, labels) -> the state after drawing row r
    Steps.images(state)                         the drawn images [B, H, W, 3]

It draws what the naive sampler draws from the same noise (float differences are rounding only).
"""

import tensorflow as tf

from pixelsnail_tf.sampling.pixelcnn_pp_steps import PixelCNNPPSteps
from pixelsnail_tf.sampling.pixelsnail_steps import PixelSNAILSteps

# Variant.architecture -> its steps.
STEPS = {"pixelsnail": PixelSNAILSteps, "pixelcnn_pp": PixelCNNPPSteps}


def sample_cached(model, u_mix, u_logistic, labels=None, quantize=True):
    """Float images [S,H,W,3] drawn with the caches, as one graph (a while loop over the rows)."""
    height, width = u_mix.shape[1], u_mix.shape[2]
    steps = STEPS[model.config.variant.architecture]
    network = steps(model, height, width, quantize)

    def row(r, state):
        return r + 1, network.row(r, state, tf.gather(u_mix, r, axis=1), tf.gather(u_logistic, r, axis=1),
                                  labels)

    initial = steps.initial_state(model, tf.shape(u_mix)[0], height, width)
    _, state = tf.while_loop(lambda r, _: r < height, row, [tf.constant(0), initial])
    return steps.images(state)


class CachedSampler:
    """The fast sampler: same call and result as NaiveSampler (naive.py), about H*W times less work.

    Each image row is one call of a tf.function (traced once per batch and image size), so
    `progress` (a Python callable taking the number of pixels done) is told after every row.
    """

    def __init__(self, model, quantize=True, progress=None):
        self.model = model
        self.quantize = quantize
        self.progress = progress
        self._steps = STEPS[model.config.variant.architecture]
        self._row = tf.function(self._draw_row)

    def _draw_row(self, r, state, u_mix, u_logistic, labels):
        height, _, width, _ = state["canvas"].shape
        network = self._steps(self.model, height, width, self.quantize)
        return network.row(r, state, u_mix, u_logistic, labels)

    def __call__(self, u_mix, u_logistic, labels=None):
        u_mix = tf.convert_to_tensor(u_mix, tf.float32)
        u_logistic = tf.convert_to_tensor(u_logistic, tf.float32)
        batch, height, width = u_mix.shape[:3]
        state = self._steps.initial_state(self.model, batch, height, width)
        for r in range(height):
            state = self._row(tf.constant(r), state, u_mix[:, r], u_logistic[:, r], labels)
            if self.progress is not None:
                self.progress((r + 1) * width)
        return self._steps.images(state)

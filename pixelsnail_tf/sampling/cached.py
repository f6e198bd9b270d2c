"""The fast sampler: the network evaluated once per pixel position, from per-layer caches.

The naive sampler runs the whole network on the whole canvas for every pixel. Here (in the spirit of
Ramachandran et al. 2017, "Fast Generation for Convolutional Autoregressive Models") each layer computes
only what the new pixel changes, row by row: the model's own steps (ImageModel.steps) do that; this
module only runs them and draws each pixel from its mixture. It draws what the naive sampler draws from
the same noise (float differences are rounding only).
"""

import tensorflow as tf

from pixelsnail_tf.images import round_to_levels
from pixelsnail_tf.logistic_mixture import sample_discretized_mix_logistic


def _draw_row(steps, r, state, u_mix, u_logistic, labels, quantize, given=None):
    """The state after drawing row r with the model's `steps` from the row's noise [B,W,M], [B,W,3]:
    the steps' state and the canvas with the row in it. given: None, or (pixels [B,W,3] of the row,
    counts [B]): pixel (r, c) of image b is the given one when r*W + c < counts[b] (a completion)."""
    width = u_mix.shape[1]

    def draw(c, params):
        x = sample_discretized_mix_logistic(params, u_mix[:, c], u_logistic[:, c])
        x = round_to_levels(x) if quantize else x
        if given is None:
            return x
        pixels, counts = given
        return tf.where((r * width + c < counts)[:, None], pixels[:, c], x)

    network, canvas = dict(state), state["canvas"]
    del network["canvas"]
    network, pixels, _ = steps.row(r, network, draw, labels)
    return {**network, "canvas": tf.tensor_scatter_nd_update(canvas, [[r]], pixels[None])}


def _initial_state(model, batch, height, width):
    """The model's steps' state before row 0, with the canvas [H, B, W, 3] (rows first)."""
    return {**model.initial_steps_state(batch, height, width), "canvas": tf.zeros([height, batch, width, 3])}


def _images(state):
    return tf.transpose(state["canvas"], [1, 0, 2, 3])


def _given_row(given, r):
    return None if given is None else (tf.gather(given[0], r, axis=1), given[1])


def sample_cached(model, u_mix, u_logistic, labels=None, quantize=True, given=None):
    """Float images [S,H,W,3] drawn with the caches, as one graph (a while loop over the rows).
    given: None, or (images [S,H,W,3] float, counts [S]): each image's first counts pixels in raster
    order are those given (they fill the caches), the rest drawn (a completion)."""
    height, width = u_mix.shape[1], u_mix.shape[2]
    steps = model.steps(height, width)  # the weights prepared once, outside the loop over the rows

    def row(r, state):
        return r + 1, _draw_row(steps, r, state, tf.gather(u_mix, r, axis=1), tf.gather(u_logistic, r, axis=1),
                                labels, quantize, _given_row(given, r))

    initial = _initial_state(model, tf.shape(u_mix)[0], height, width)
    _, state = tf.while_loop(lambda r, _: r < height, row, [tf.constant(0), initial])
    return _images(state)


class CachedSampler:
    """The fast sampler: same call and result as NaiveSampler (naive.py), about H*W times less work.

    Each image row is one call of a tf.function (traced once per batch and image size), so
    `progress` (a Python callable taking the number of pixels done) is told after every row.
    """

    def __init__(self, model, quantize=True, progress=None):
        self.model = model
        self.progress = progress
        self._row = tf.function(lambda r, state, u_mix, u_logistic, labels, given: _draw_row(
            model.steps(state["canvas"].shape[0], u_mix.shape[1]), r, state, u_mix, u_logistic, labels,
            quantize, given))

    def __call__(self, u_mix, u_logistic, labels=None, given=None):
        """given: as sample_cached's (a completion), or None."""
        u_mix = tf.convert_to_tensor(u_mix, tf.float32)
        u_logistic = tf.convert_to_tensor(u_logistic, tf.float32)
        batch, height, width = u_mix.shape[:3]
        if given is not None:
            given = (tf.convert_to_tensor(given[0], tf.float32), tf.convert_to_tensor(given[1], tf.int32))
        state = _initial_state(self.model, batch, height, width)
        for r in range(height):
            state = self._row(tf.constant(r), state, u_mix[:, r], u_logistic[:, r], labels,
                              _given_row(given, r))
            if self.progress is not None:
                self.progress((r + 1) * width)
        return _images(state)

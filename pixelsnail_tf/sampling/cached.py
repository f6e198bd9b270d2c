"""The fast sampler: the network evaluated once per pixel position, from per-layer caches.

The naive sampler runs the whole network on the whole canvas for every pixel. Here (in the spirit of
Ramachandran et al. 2017, "Fast Generation for Convolutional Autoregressive Models") each layer computes
only what the new pixel changes, row by row: the model's own steps (ImageModel.steps) do that; this
module only runs them and draws each position from its distribution. It draws what the naive sampler
draws from the same noise (float differences are rounding only).
"""

import tensorflow as tf

from pixelsnail_tf.models.base import swap_leading
from pixelsnail_tf.sampling.naive import convert_inputs, where_given


def _draw_row(steps, r, state, noise, labels, quantize, given=None):
    """The state after drawing row r with the model's `steps` from the row's noise (a tuple of [B,W,n]):
    the steps' state and the canvas with the row in it. given: None, or (values [B,W,...] of the row,
    counts [B]): position (r, c) of sample b is the given one when r*W + c < counts[b] (a completion)."""
    width = noise[0].shape[1]
    distribution = steps.model.distribution

    def draw(c, params):
        x = distribution.draw(params, [u[:, c] for u in noise], quantize)
        if given is None:
            return x
        values, counts = given
        return where_given(r * width + c < counts, values[:, c], x)

    network, canvas = dict(state), state["canvas"]
    del network["canvas"]
    network, values, _ = steps.row(r, network, draw, labels)
    return {**network, "canvas": tf.tensor_scatter_nd_update(canvas, [[r]], values[None])}


def _initial_state(model, batch, height, width):
    """The model's steps' state before row 0, with the canvas [H, B, W, ...] (rows first)."""
    d = model.distribution
    return {**model.initial_steps_state(batch, height, width),
            "canvas": tf.zeros([height, batch, width, *d.value_shape], d.value_dtype)}


def _samples(state):
    return swap_leading(state["canvas"])


def _row_of(tensors, r):
    return [tf.gather(t, r, axis=1) for t in tensors]


def _given_row(given, r):
    return None if given is None else (tf.gather(given[0], r, axis=1), given[1])


def sample_cached(model, noise, labels=None, quantize=True, given=None):
    """Samples [S,H,W,...] (as NaiveSampler's) drawn with the caches, as one graph (a while loop over
    the rows). noise: draw_noise's tuple. given: None, or (values [S,H,W,...], counts [S]): each
    sample's first counts positions in raster order are those given (they fill the caches), the rest
    drawn (a completion)."""
    height, width = noise[0].shape[1], noise[0].shape[2]
    steps = model.steps(height, width)  # the weights prepared once, outside the loop over the rows

    def row(r, state):
        return r + 1, _draw_row(steps, r, state, _row_of(noise, r), labels, quantize, _given_row(given, r))

    initial = _initial_state(model, tf.shape(noise[0])[0], height, width)
    _, state = tf.while_loop(lambda r, _: r < height, row, [tf.constant(0), initial])
    return _samples(state)


class CachedSampler:
    """The fast sampler: same call and result as NaiveSampler (naive.py), about H*W times less work.

    Each image row is one call of a tf.function (traced once per batch and image size), so
    `progress` (a Python callable taking the number of pixels done) is told after every row.
    """

    def __init__(self, model, quantize=True, progress=None):
        self.model = model
        self.progress = progress
        self._row = tf.function(lambda r, state, noise, labels, given: _draw_row(
            model.steps(state["canvas"].shape[0], noise[0].shape[1]), r, state, noise, labels,
            quantize, given))

    def __call__(self, noise, labels=None, given=None):
        """noise: draw_noise's tuple; given: as sample_cached's (a completion), or None."""
        noise, given = convert_inputs(self.model, noise, given)
        batch, height, width = noise[0].shape[:3]
        state = _initial_state(self.model, batch, height, width)
        for r in range(height):
            state = self._row(tf.constant(r), state, tuple(_row_of(noise, r)), labels, _given_row(given, r))
            if self.progress is not None:
                self.progress((r + 1) * width)
        return _samples(state)

"""The naive (reference) sampler: the original's algorithm, one pixel at a time, as one tf.function.

The canvas starts at zeros; for each pixel in raster order the whole network runs on the canvas, the
pixel's three sub-pixels are drawn from its mixture (the original's sample_from_discretized_mix_logistic)
and written into the canvas.
"""

import tensorflow as tf

from pixelsnail_tf.images import round_to_levels
from pixelsnail_tf.logistic_mixture import sample_discretized_mix_logistic


def sample_pixels(model, u_mix, u_logistic, labels=None, quantize=True, progress=None, given=None):
    """Float images [S,H,W,3] in [-1, 1] drawn pixel by pixel with the given noise.

    quantize: round each drawn pixel to its 8-bit level before it is fed back (the model is a
    distribution over 8-bit images); False keeps the original's continuous values.
    progress: optional Python callable called with the number of pixels done (eager runs only).
    given: None, or (images [S,H,W,3] float, counts [S]): each image's first counts pixels in raster
    order are those given, the rest drawn (a completion).
    """
    num_samples, height, width = tf.shape(u_mix)[0], u_mix.shape[1], u_mix.shape[2]
    rows = tf.range(num_samples)

    def draw(p, canvas):
        r, c = p // width, p % width
        params = model(canvas, labels, training=False)[:, r, c]
        x = sample_discretized_mix_logistic(params, u_mix[:, r, c], u_logistic[:, r, c])
        if quantize:
            x = round_to_levels(x)
        if given is not None:
            x = tf.where((p < given[1])[:, None], given[0][:, r, c], x)
        index = tf.stack([rows, tf.fill([num_samples], r), tf.fill([num_samples], c)], axis=1)
        if progress is not None:
            tf.py_function(lambda done: progress(int(done)), [p + 1], [])
        return p + 1, tf.tensor_scatter_nd_update(canvas, index, x)

    canvas = tf.zeros([num_samples, height, width, 3])
    _, canvas = tf.while_loop(lambda p, _: p < height * width, draw, [tf.constant(0), canvas])
    return canvas


class NaiveSampler:
    """The reference sampler: every pixel runs the whole network (H*W passes per image).

    `__call__(u_mix, u_logistic, labels)` is one compiled tf.function per input shape.
    """

    def __init__(self, model, quantize=True, progress=None):
        self.model = model
        self.quantize = quantize
        self._fn = tf.function(lambda u_mix, u_logistic, labels, given: sample_pixels(
            model, u_mix, u_logistic, labels, quantize, progress, given))

    def __call__(self, u_mix, u_logistic, labels=None, given=None):
        """given: as sample_pixels' (a completion), or None."""
        if given is not None:
            given = (tf.convert_to_tensor(given[0], tf.float32), tf.convert_to_tensor(given[1], tf.int32))
        return self._fn(tf.convert_to_tensor(u_mix, tf.float32),
                        tf.convert_to_tensor(u_logistic, tf.float32), labels, given)

"""The naive (reference) sampler: the original's algorithm, one pixel at a time, as one tf.function.

The canvas starts at zeros; for each position in raster order the whole network runs on the canvas, the
position's value is drawn from its distribution (for images, the original's
sample_from_discretized_mix_logistic: a pixel's three sub-pixels) and written into the canvas.
"""

import tensorflow as tf


def where_given(is_given, given, drawn):
    """Per sample (is_given [S] bool) the given value, else the drawn one (values [S, ...])."""
    return tf.where(tf.reshape(is_given, [-1] + [1] * (drawn.shape.rank - 1)), given, drawn)


def convert_inputs(model, noise, given):
    """The samplers' inputs as tensors: noise (a tuple of float32) and given (values, int32 counts)."""
    noise = tuple(tf.convert_to_tensor(u, tf.float32) for u in noise)
    if given is not None:
        given = (tf.convert_to_tensor(given[0], model.distribution.value_dtype),
                 tf.convert_to_tensor(given[1], tf.int32))
    return noise, given


def sample_pixels(model, noise, labels=None, quantize=True, progress=None, given=None):
    """Samples [S,H,W,...] (values: images float in [-1, 1] [S,H,W,3], codes int32 [S,H,W]) drawn one
    position at a time with the given noise (draw_noise's tuple).

    quantize: round each drawn pixel to its 8-bit level before it is fed back (the model is a
    distribution over 8-bit images); False keeps the original's continuous values.
    progress: optional Python callable called with the number of pixels done (eager runs only).
    given: None, or (values [S,H,W,...], counts [S]): each sample's first counts positions in raster
    order are those given, the rest drawn (a completion).
    """
    distribution = model.distribution
    num_samples, height, width = tf.shape(noise[0])[0], noise[0].shape[1], noise[0].shape[2]
    rows = tf.range(num_samples)

    def draw(p, canvas):
        r, c = p // width, p % width
        params = model(canvas, labels, training=False)[:, r, c]
        x = distribution.draw(params, [u[:, r, c] for u in noise], quantize)
        if given is not None:
            x = where_given(p < given[1], given[0][:, r, c], x)
        index = tf.stack([rows, tf.fill([num_samples], r), tf.fill([num_samples], c)], axis=1)
        if progress is not None:
            tf.py_function(lambda done: progress(int(done)), [p + 1], [])
        return p + 1, tf.tensor_scatter_nd_update(canvas, index, x)

    canvas = tf.zeros([num_samples, height, width, *distribution.value_shape], distribution.value_dtype)
    _, canvas = tf.while_loop(lambda p, _: p < height * width, draw, [tf.constant(0), canvas])
    return canvas


class NaiveSampler:
    """The reference sampler: every pixel runs the whole network (H*W passes per image).

    `__call__(noise, labels)` is one compiled tf.function per input shape.
    """

    def __init__(self, model, quantize=True, progress=None):
        self.model = model
        self.quantize = quantize
        self._fn = tf.function(lambda noise, labels, given: sample_pixels(
            model, noise, labels, quantize, progress, given))

    def __call__(self, noise, labels=None, given=None):
        """noise: draw_noise's tuple; given: as sample_pixels' (a completion), or None."""
        noise, given = convert_inputs(self.model, noise, given)
        return self._fn(noise, labels, given)

"""A SavedModel of a model for TF Serving: log-likelihood and sampling signatures.

The exported graph needs TensorFlow only (not this package). Signatures:
  serving_default: images uint8 [batch, H, W, 3] [, class_label int32 [batch]]
                   -> log_likelihood (nats), bits_per_dim, per image; per_pixel_bits [batch, H, W]
                   (-log2 of each pixel's likelihood, its three colours together: where it is unlikely)
  sample:          num_samples int32, seed int64 [, class_label int32] -> images uint8 [S, H, W, 3]
                   (the fast sampler: the images sample.py draws with the same seed)
  complete:        images uint8 [batch, H, W, 3], given_pixels int32 [batch] (each image's first k
                   pixels in raster order are kept: R given rows are R * W), num_samples int32, seed
                   int64 [, class_label int32 [batch]] -> completions uint8 [batch, num_samples, H, W, 3]
                   (the fast sampler: what sampling.complete and sample.py --complete draw)
A model of codes (--output=categorical) takes and gives int32 codes [batch, H, W] in [0, num_codes)
named `codes` wherever the above has uint8 images (its bits_per_dim and per_pixel_bits are per code).
Inputs of another dtype, rank or channel count, codes or class labels out of their range, given_pixels
outside [0, H*W], and num_samples outside [0, MAX_SAMPLES] (complete: [1, MAX_SAMPLES / batch]) are
rejected by the signatures themselves (InvalidArgumentError).
"""

import math

import tensorflow as tf

from pixelsnail_tf.distributions import bits_per_dim
from pixelsnail_tf.sampling import draw_noise, sample_cached


MAX_SAMPLES = 1024  # images one `sample` call draws at most (its caches grow with the batch)


def _check_labels(class_label, num_classes):
    """Assertion ops: every label in [0, num_classes) (a one-hot of another value would be zeros)."""
    message = f"class_label must lie in [0, {num_classes})"
    return [tf.debugging.assert_greater_equal(class_label, 0, message=message),
            tf.debugging.assert_less(class_label, num_classes, message=message)]


def export_saved_model(model, path, height, width):
    """Writes the SavedModel of `model` (its current weights) for H x W images (code maps) to `path`."""
    signatures = _Signatures(model, height, width).functions()
    module = tf.Module()
    module.weights = [w.value for w in model.weights]  # the variables the graphs read
    module.log_likelihood, module.sample, module.complete = (
        signatures["serving_default"], signatures["sample"], signatures["complete"])
    tf.saved_model.save(module, path, signatures=signatures)


class _Signatures:
    """The signatures' computations for one model and image size, each checking its inputs first."""

    def __init__(self, model, height, width):
        self.model, self.height, self.width = model, height, width
        self.num_classes = model.config.num_classes
        self.distribution = distribution = model.distribution
        self.name, self.dtype = distribution.data, distribution.stored_dtype
        self.shape = [height, width, *distribution.value_shape]  # of one image (code map)
        self.described = (f"{self.name} must be {self.dtype.name} [batch, "
                          f"{', '.join(map(str, self.shape))}]")

    def functions(self):
        """{signature name: tf.function with its input signature}."""
        images = tf.TensorSpec([None, *self.shape], self.dtype, name=self.name)
        labels = tf.TensorSpec([None], tf.int32, name="class_label")
        scalar = [tf.TensorSpec([], tf.int32, name="num_samples"), tf.TensorSpec([], tf.int64, name="seed")]
        given = [images, tf.TensorSpec([None], tf.int32, name="given_pixels")] + scalar
        if self.num_classes:
            return {
                "serving_default": tf.function(self.scores, input_signature=[images, labels]),
                "sample": tf.function(lambda num_samples, seed, class_label: self.draw(
                    num_samples, seed, tf.fill([tf.maximum(num_samples, 0)], class_label)),
                    input_signature=scalar + [tf.TensorSpec([], tf.int32, name="class_label")]),
                "complete": tf.function(self.fill, input_signature=given + [labels])}
        return {
            "serving_default": tf.function(lambda images: self.scores(images), input_signature=[images]),
            "sample": tf.function(lambda num_samples, seed: self.draw(num_samples, seed),
                                  input_signature=scalar),
            "complete": tf.function(lambda images, given_pixels, num_samples, seed: self.fill(
                images, given_pixels, num_samples, seed), input_signature=given)}

    def values_of(self, stored):
        """The values the model reads, after the checks of their range."""
        return self.distribution.from_stored(tf.reshape(self.distribution.checked(stored), [-1, *self.shape]))

    def shape_is_valid(self, stored):
        """(whether `stored` is a batch of this shape, its batch size)."""
        # A signature does not enforce its shape on what it is fed, and kernels built for this
        # shape abort the process on another rank: the model runs only in the branch for valid input.
        rank = 1 + len(self.shape)
        padded = tf.concat([tf.shape(stored), [-1] * rank], axis=0)[:rank]
        valid = tf.logical_and(tf.equal(tf.rank(stored), rank),
                               tf.reduce_all(tf.equal(padded[1:], self.shape)))
        return valid, padded[0]

    def scores(self, stored, class_label=None):
        valid, batch = self.shape_is_valid(stored)
        if class_label is not None:
            valid = tf.logical_and(valid, tf.equal(tf.shape(class_label)[0], batch))

        def compute():
            checks = [] if class_label is None else _check_labels(class_label, self.num_classes)
            with tf.control_dependencies(checks):
                x = self.values_of(stored)
            return self.distribution.log_prob(x, self.model(x, class_label))

        def reject():
            message = self.described + " (and class_label [batch])"
            with tf.control_dependencies([tf.debugging.Assert(False, [message, tf.shape(stored)])]):
                return tf.zeros([0, self.height, self.width])

        per_pixel = tf.cond(valid, compute, reject)
        ll = tf.reduce_sum(per_pixel, axis=[1, 2])  # as ImageModel.log_prob sums them
        dims = self.height * self.width * self.distribution.dims
        return {"log_likelihood": ll, "bits_per_dim": bits_per_dim(ll, dims),
                "per_pixel_bits": -per_pixel / math.log(2.0)}

    def draw(self, num_samples, seed, labels=None):
        checks = [tf.debugging.assert_greater_equal(num_samples, 0, message="num_samples must be >= 0"),
                  tf.debugging.assert_less_equal(num_samples, MAX_SAMPLES, message=(
                      f"num_samples must be <= {MAX_SAMPLES} per call"))]
        if labels is not None:
            checks += _check_labels(labels, self.num_classes)
        with tf.control_dependencies(checks):
            num_samples = tf.identity(num_samples)

        def sampled():
            noise = draw_noise(self.distribution, num_samples, self.height, self.width, seed)
            return self.distribution.to_stored(sample_cached(self.model, noise, labels))

        empty = lambda: tf.zeros([0, *self.shape], self.dtype)  # noqa: E731
        return {self.name: tf.cond(num_samples > 0, sampled, empty)}

    def fill(self, stored, given_pixels, num_samples, seed, labels=None):
        message = self.described + " and given_pixels [batch]"
        valid, batch = self.shape_is_valid(stored)
        pixels = self.height * self.width
        # the product in int64: in int32 a large num_samples could wrap around to pass the bound
        total = tf.cast(batch, tf.int64) * tf.cast(num_samples, tf.int64)
        checks = [tf.debugging.Assert(valid, [message, tf.shape(stored)]),
                  tf.debugging.assert_equal(tf.shape(given_pixels)[0], batch, message=message),
                  tf.debugging.assert_greater_equal(given_pixels, 0, message="given_pixels must be >= 0"),
                  tf.debugging.assert_less_equal(given_pixels, pixels,
                                                 message=f"given_pixels must be <= {pixels}"),
                  tf.debugging.assert_greater_equal(num_samples, 1, message="num_samples must be >= 1"),
                  tf.debugging.assert_less_equal(total, tf.constant(MAX_SAMPLES, tf.int64), message=(
                      f"batch x num_samples must be <= {MAX_SAMPLES} per call"))]
        if labels is not None:
            checks += _check_labels(labels, self.num_classes)
            checks.append(tf.debugging.assert_equal(tf.shape(labels)[0], batch, message=message))

        def completed():
            with tf.control_dependencies(checks):
                x = self.values_of(stored)
            noise = draw_noise(self.distribution, batch * num_samples, self.height, self.width, seed)
            given = (tf.repeat(x, num_samples, axis=0), tf.repeat(given_pixels, num_samples))
            drawn = sample_cached(self.model, noise,
                                  None if labels is None else tf.repeat(labels, num_samples), given=given)
            return tf.reshape(self.distribution.to_stored(drawn), [batch, num_samples, *self.shape])

        empty = lambda: tf.zeros([0, tf.maximum(num_samples, 0), *self.shape], self.dtype)  # noqa: E731
        with tf.control_dependencies(checks):
            return {"completions": tf.cond(batch > 0, completed, empty)}

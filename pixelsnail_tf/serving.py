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

from pixelsnail_tf.logistic_mixture import bits_per_dim
from pixelsnail_tf.sampling import draw_noise, sample_cached


MAX_SAMPLES = 1024  # images one `sample` call draws at most (its caches grow with the batch)


def _check_labels(class_label, num_classes):
    """Assertion ops: every label in [0, num_classes) (a one-hot of another value would be zeros)."""
    message = f"class_label must lie in [0, {num_classes})"
    return [tf.debugging.assert_greater_equal(class_label, 0, message=message),
            tf.debugging.assert_less(class_label, num_classes, message=message)]


def export_saved_model(model, path, height, width):
    """Writes the SavedModel of `model` (its current weights) for H x W images (code maps) to `path`."""
    conditional = model.config.num_classes > 0
    num_classes = model.config.num_classes
    distribution = model.distribution
    name, dtype = distribution.data, distribution.stored_dtype
    shape = [height, width, *distribution.value_shape]  # of one image (code map)
    rank = 1 + len(shape)
    described = f"{name} must be {dtype.name} [batch, {', '.join(map(str, shape))}]"
    module = tf.Module()
    module.weights = [w.value for w in model.weights]  # the variables the graphs read

    def values_of(stored):
        """The values the model reads, after the checks of their range."""
        return distribution.from_stored(tf.reshape(distribution.checked(stored), [-1, *shape]))

    def shape_is_valid(stored):
        # A signature does not enforce its shape on what it is fed, and kernels built for this
        # shape abort the process on another rank: the model runs only in the branch for valid input.
        padded = tf.concat([tf.shape(stored), [-1] * rank], axis=0)[:rank]
        valid = tf.logical_and(tf.equal(tf.rank(stored), rank), tf.reduce_all(tf.equal(padded[1:], shape)))
        return valid, padded[0]

    def scores(stored, class_label=None):
        valid, batch = shape_is_valid(stored)
        if class_label is not None:
            valid = tf.logical_and(valid, tf.equal(tf.shape(class_label)[0], batch))

        def compute():
            checks = [] if class_label is None else _check_labels(class_label, num_classes)
            with tf.control_dependencies(checks):
                x = values_of(stored)
            return distribution.log_prob(x, model(x, class_label))

        def reject():
            message = described + " (and class_label [batch])"
            with tf.control_dependencies([tf.debugging.Assert(False, [message, tf.shape(stored)])]):
                return tf.zeros([0, height, width])

        per_pixel = tf.cond(valid, compute, reject)
        ll = tf.reduce_sum(per_pixel, axis=[1, 2])  # as ImageModel.log_prob sums them
        return {"log_likelihood": ll, "bits_per_dim": bits_per_dim(ll, height * width * distribution.dims),
                "per_pixel_bits": -per_pixel / math.log(2.0)}

    images_spec = tf.TensorSpec([None, *shape], dtype, name=name)
    if conditional:
        labels_spec = tf.TensorSpec([None], tf.int32, name="class_label")
        log_likelihood = tf.function(scores, input_signature=[images_spec, labels_spec])
    else:
        log_likelihood = tf.function(lambda images: scores(images), input_signature=[images_spec])

    def draw(num_samples, seed, labels=None):
        checks = [tf.debugging.assert_greater_equal(num_samples, 0, message="num_samples must be >= 0"),
                  tf.debugging.assert_less_equal(num_samples, MAX_SAMPLES, message=(
                      f"num_samples must be <= {MAX_SAMPLES} per call"))]
        if labels is not None:
            checks += _check_labels(labels, num_classes)
        with tf.control_dependencies(checks):
            num_samples = tf.identity(num_samples)

        def sampled():
            noise = draw_noise(distribution, num_samples, height, width, seed)
            return distribution.to_stored(sample_cached(model, noise, labels))

        empty = lambda: tf.zeros([0, *shape], dtype)  # noqa: E731
        return {name: tf.cond(num_samples > 0, sampled, empty)}

    scalar = [tf.TensorSpec([], tf.int32, name="num_samples"), tf.TensorSpec([], tf.int64, name="seed")]
    if conditional:
        sample = tf.function(lambda num_samples, seed, class_label: draw(
            num_samples, seed, tf.fill([tf.maximum(num_samples, 0)], class_label)),
            input_signature=scalar + [tf.TensorSpec([], tf.int32, name="class_label")])
    else:
        sample = tf.function(draw, input_signature=scalar)

    def fill(stored, given_pixels, num_samples, seed, labels=None):
        message = described + " and given_pixels [batch]"
        valid, batch = shape_is_valid(stored)
        checks = [tf.debugging.Assert(valid, [message, tf.shape(stored)]),
                  tf.debugging.assert_equal(tf.shape(given_pixels)[0], batch, message=message),
                  tf.debugging.assert_greater_equal(given_pixels, 0, message="given_pixels must be >= 0"),
                  tf.debugging.assert_less_equal(given_pixels, height * width,
                                                 message=f"given_pixels must be <= {height * width}"),
                  tf.debugging.assert_greater_equal(num_samples, 1, message="num_samples must be >= 1"),
                  tf.debugging.assert_less_equal(batch * num_samples, MAX_SAMPLES, message=(
                      f"batch x num_samples must be <= {MAX_SAMPLES} per call"))]
        if labels is not None:
            checks += _check_labels(labels, num_classes)
            checks.append(tf.debugging.assert_equal(tf.shape(labels)[0], batch, message=message))

        def completed():
            with tf.control_dependencies(checks):
                x = values_of(stored)
            noise = draw_noise(distribution, batch * num_samples, height, width, seed)
            given = (tf.repeat(x, num_samples, axis=0), tf.repeat(given_pixels, num_samples))
            drawn = sample_cached(model, noise, None if labels is None else tf.repeat(labels, num_samples),
                                  given=given)
            return tf.reshape(distribution.to_stored(drawn), [batch, num_samples, *shape])

        empty = lambda: tf.zeros([0, tf.maximum(num_samples, 0), *shape], dtype)  # noqa: E731
        with tf.control_dependencies(checks):
            return {"completions": tf.cond(batch > 0, completed, empty)}

    given_specs = [images_spec, tf.TensorSpec([None], tf.int32, name="given_pixels")] + scalar
    if conditional:
        complete = tf.function(fill, input_signature=given_specs + [labels_spec])
    else:
        complete = tf.function(lambda images, given_pixels, num_samples, seed: fill(
            images, given_pixels, num_samples, seed), input_signature=given_specs)
    module.log_likelihood, module.sample, module.complete = log_likelihood, sample, complete
    tf.saved_model.save(module, path, signatures={"serving_default": log_likelihood, "sample": sample,
                                                  "complete": complete})

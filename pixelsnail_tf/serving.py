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
Inputs of another dtype, rank or channel count, class labels outside [0, num_classes), given_pixels
outside [0, H*W], and num_samples outside [0, MAX_SAMPLES] (complete: [1, MAX_SAMPLES / batch]) are
rejected by the signatures themselves (InvalidArgumentError).
"""

import math

import tensorflow as tf

from pixelsnail_tf.images import float_to_uint8, uint8_to_float
from pixelsnail_tf.logistic_mixture import bits_per_dim, discretized_mix_logistic_pixel_log_prob
from pixelsnail_tf.sampling import draw_noise, sample_cached


MAX_SAMPLES = 1024  # images one `sample` call draws at most (its caches grow with the batch)


def _check_labels(class_label, num_classes):
    """Assertion ops: every label in [0, num_classes) (a one-hot of another value would be zeros)."""
    message = f"class_label must lie in [0, {num_classes})"
    return [tf.debugging.assert_greater_equal(class_label, 0, message=message),
            tf.debugging.assert_less(class_label, num_classes, message=message)]


def export_saved_model(model, path, height, width):
    """Writes the SavedModel of `model` (its current weights) for H x W images to `path`."""
    conditional = model.config.num_classes > 0
    num_classes = model.config.num_classes
    module = tf.Module()
    module.weights = [w.value for w in model.weights]  # the variables the graphs read

    def scores(images, class_label=None):
        # A signature does not enforce its shape on what it is fed, and kernels built for this
        # shape abort the process on another rank: the model runs only in the branch for valid input.
        shape = tf.concat([tf.shape(images), [-1, -1, -1, -1]], axis=0)[:4]  # padded to rank 4
        valid = tf.logical_and(tf.equal(tf.rank(images), 4),
                               tf.reduce_all(tf.equal(shape[1:], [height, width, 3])))
        if class_label is not None:
            valid = tf.logical_and(valid, tf.equal(tf.shape(class_label)[0], shape[0]))

        def compute():
            checks = [] if class_label is None else _check_labels(class_label, num_classes)
            with tf.control_dependencies(checks):
                x = uint8_to_float(tf.reshape(images, [-1, height, width, 3]))
            return discretized_mix_logistic_pixel_log_prob(x, model(x, class_label))

        def reject():
            message = f"images must be uint8 [batch, {height}, {width}, 3] (and class_label [batch])"
            with tf.control_dependencies([tf.debugging.Assert(False, [message, tf.shape(images)])]):
                return tf.zeros([0, height, width])

        per_pixel = tf.cond(valid, compute, reject)
        ll = tf.reduce_sum(per_pixel, axis=[1, 2])  # as discretized_mix_logistic_log_prob sums them
        return {"log_likelihood": ll, "bits_per_dim": bits_per_dim(ll, height * width * 3),
                "per_pixel_bits": -per_pixel / math.log(2.0)}

    images_spec = tf.TensorSpec([None, height, width, 3], tf.uint8, name="images")
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
            u_mix, u_logistic = draw_noise(num_samples, height, width, model.config.nr_logistic_mix, seed)
            return float_to_uint8(sample_cached(model, u_mix, u_logistic, labels))

        empty = lambda: tf.zeros([0, height, width, 3], tf.uint8)  # noqa: E731
        return {"images": tf.cond(num_samples > 0, sampled, empty)}

    scalar = [tf.TensorSpec([], tf.int32, name="num_samples"), tf.TensorSpec([], tf.int64, name="seed")]
    if conditional:
        sample = tf.function(lambda num_samples, seed, class_label: draw(
            num_samples, seed, tf.fill([tf.maximum(num_samples, 0)], class_label)),
            input_signature=scalar + [tf.TensorSpec([], tf.int32, name="class_label")])
    else:
        sample = tf.function(draw, input_signature=scalar)
    def fill(images, given_pixels, num_samples, seed, labels=None):
        message = f"images must be uint8 [batch, {height}, {width}, 3] and given_pixels [batch]"
        shape = tf.concat([tf.shape(images), [-1, -1, -1, -1]], axis=0)[:4]
        valid = tf.logical_and(tf.equal(tf.rank(images), 4),
                               tf.reduce_all(tf.equal(shape[1:], [height, width, 3])))
        batch = shape[0]
        checks = [tf.debugging.Assert(valid, [message, tf.shape(images)]),
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
                x = uint8_to_float(tf.reshape(images, [-1, height, width, 3]))
            u_mix, u_logistic = draw_noise(batch * num_samples, height, width, model.config.nr_logistic_mix,
                                           seed)
            given = (tf.repeat(x, num_samples, axis=0), tf.repeat(given_pixels, num_samples))
            drawn = sample_cached(model, u_mix, u_logistic,
                                  None if labels is None else tf.repeat(labels, num_samples), given=given)
            return tf.reshape(float_to_uint8(drawn), [batch, num_samples, height, width, 3])

        empty = lambda: tf.zeros([0, tf.maximum(num_samples, 0), height, width, 3], tf.uint8)  # noqa: E731
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

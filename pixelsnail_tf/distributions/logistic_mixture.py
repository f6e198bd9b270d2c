"""Discretized mixture of logistics (PixelCNN++): per-pixel and per-image log-likelihood, sampling.

Network output per pixel, 10*M channels: [0, M) mixture logits shared by R, G, B; then for each
colour c in (R, G, B) a group of 3M channels: means, log scales, coefficients (pre-tanh).
The coefficients make the colours autoregressive within a pixel: the mean of G gets alpha*R, the mean
of B gets beta*R + gamma*G, with (alpha, beta, gamma) = tanh(coefficients of R, G, B groups).
Pixel values are x = 2k/255 - 1 for k in 0..255: bins of half-width 1/255.
"""

import math

import tensorflow as tf

from pixelsnail_tf import images as image_checks
from pixelsnail_tf.distributions.base import uniform_noise

LOG_SCALE_MIN = -7.0  # log scales are clamped from below, in the loss and in sampling
_EDGE = 0.999  # x below -EDGE is level 0, above +EDGE level 255: those bins extend to infinity
_MIN_BIN_PROB = 1e-5  # below it, the bin probability is approximated by density * bin width
_PROB_FLOOR = 1e-12  # only keeps the unused branch of the select finite (and its gradient)


def unpack_parameters(params):
    """[..., 10M] -> logits [..., M], means/log_scales/coeffs [..., 3, M] (raw, unclamped)."""
    mixtures = params.shape[-1] // 10
    logits = params[..., :mixtures]
    rest = tf.reshape(params[..., mixtures:], tf.concat([tf.shape(params)[:-1], [3, 3 * mixtures]], 0))
    return (logits, rest[..., :mixtures], rest[..., mixtures:2 * mixtures],
            rest[..., 2 * mixtures:])


def discretized_mix_logistic_log_prob(x, params):
    """Per-image log-likelihood in nats of images x [B,H,W,3] in [-1,1] under params [B,H,W,10M]:
    the sum of the per-pixel ones (the original's computation, which sums them likewise)."""
    return tf.reduce_sum(discretized_mix_logistic_pixel_log_prob(x, params), axis=[1, 2])


def discretized_mix_logistic_pixel_log_prob(x, params):
    """Per-pixel log-likelihood in nats [B,H,W] (the three colours of a pixel together) of images x
    [B,H,W,3] in [-1,1] under params [B,H,W,10M].

    The original's computation step by step (same branches, constants and order of operations).
    """
    logits, means, log_scales, coeffs = unpack_parameters(params)
    log_scales = tf.maximum(log_scales, LOG_SCALE_MIN)
    coeffs = tf.tanh(coeffs)
    x = x[..., None]  # [B,H,W,3,1], broadcasts against the M components
    mean_r = means[..., 0, :]
    mean_g = means[..., 1, :] + coeffs[..., 0, :] * x[..., 0, :]
    mean_b = means[..., 2, :] + coeffs[..., 1, :] * x[..., 0, :] + coeffs[..., 2, :] * x[..., 1, :]
    centered = x - tf.stack([mean_r, mean_g, mean_b], axis=-2)
    inv_scale = tf.exp(-log_scales)
    plus_in = inv_scale * (centered + 1.0 / 255.0)
    min_in = inv_scale * (centered - 1.0 / 255.0)
    mid_in = inv_scale * centered
    bin_prob = tf.sigmoid(plus_in) - tf.sigmoid(min_in)
    log_cdf_plus = plus_in - tf.nn.softplus(plus_in)  # bin of level 0
    log_one_minus_cdf_min = -tf.nn.softplus(min_in)  # bin of level 255
    log_pdf_mid = mid_in - log_scales - 2.0 * tf.nn.softplus(mid_in)
    log_probs = tf.where(
        x < -_EDGE, log_cdf_plus,
        tf.where(x > _EDGE, log_one_minus_cdf_min,
                 tf.where(bin_prob > _MIN_BIN_PROB, tf.math.log(tf.maximum(bin_prob, _PROB_FLOOR)),
                          log_pdf_mid - math.log(127.5))))
    log_probs = tf.reduce_sum(log_probs, axis=-2) + _log_softmax(logits)
    return _log_sum_exp(log_probs)


def _log_softmax(x):
    m = tf.reduce_max(x, axis=-1, keepdims=True)
    return x - m - tf.math.log(tf.reduce_sum(tf.exp(x - m), axis=-1, keepdims=True))


def _log_sum_exp(x):
    # the max is taken twice, as the original: the gradient flows through both
    return tf.reduce_max(x, axis=-1) + tf.math.log(
        tf.reduce_sum(tf.exp(x - tf.reduce_max(x, axis=-1, keepdims=True)), axis=-1))


def sample_discretized_mix_logistic(params, u_mix, u_logistic):
    """Samples in [-1, 1] from params [...,10M] given its noise, exactly as the original.

    u_mix [..., M] picks one component per pixel, shared by R, G, B, by the Gumbel-max trick;
    u_logistic [..., 3] draws each colour from its logistic, G and B shifted by the coefficients
    times the already clipped R (and G). Values are continuous (not rounded to 8-bit levels).
    """
    logits, means, log_scales, coeffs = unpack_parameters(params)
    mixtures = logits.shape[-1]
    choice = tf.one_hot(tf.argmax(logits - tf.math.log(-tf.math.log(u_mix)), axis=-1),
                        depth=mixtures, dtype=params.dtype)[..., None, :]
    mean = tf.reduce_sum(means * choice, axis=-1)
    log_scale = tf.maximum(tf.reduce_sum(log_scales * choice, axis=-1), LOG_SCALE_MIN)
    coeff = tf.reduce_sum(tf.tanh(coeffs) * choice, axis=-1)
    y = mean + tf.exp(log_scale) * (tf.math.log(u_logistic) - tf.math.log(1.0 - u_logistic))
    r = tf.clip_by_value(y[..., 0], -1.0, 1.0)
    g = tf.clip_by_value(y[..., 1] + coeff[..., 0] * r, -1.0, 1.0)
    b = tf.clip_by_value(y[..., 2] + coeff[..., 1] * r + coeff[..., 2] * g, -1.0, 1.0)
    return tf.stack([r, g, b], axis=-1)


class LogisticMixture:
    """8-bit RGB images; per pixel a discretized mixture of logistics (the original's output)."""

    name = "logistic_mixture"
    data = "images"  # what the data are called in messages
    stored_dtype = tf.uint8
    value_dtype = tf.float32
    value_shape = (3,)
    dims = 3  # sub-pixels per position: bits per dim divides by H*W*3

    def __init__(self, config):
        self.mixtures = config.nr_logistic_mix
        self.parameters = 10 * self.mixtures
        self.input_channels = 3
        self.noise_shapes = {"u_mix": (self.mixtures,), "u_logistic": (3,)}

    def input_layer(self):
        """The layer that turns values into the network's input (None: they are the input)."""
        return None

    def check(self, data):
        """Values (float32 [B,H,W,3] in [-1, 1]) of uint8 or float32 images; ValueError (one line)."""
        return image_checks.check_images(data)

    def check_array(self, array, where):
        """ValueError (one line, naming `where`) unless `array` holds uint8 images [N,H,W,3]."""
        image_checks.check_image_array(array, where)

    def checked(self, stored):
        """stored, in a graph, once its values are known to lie in their range: uint8 always does."""
        return stored

    def from_stored(self, stored):
        return image_checks.uint8_to_float(stored)

    def to_stored(self, values):
        return image_checks.float_to_uint8(values)

    def pictures(self, stored):
        """uint8 RGB images [N,H,W,3] to look at: the images themselves."""
        return stored

    def log_prob(self, values, params):
        """Log-likelihood in nats of each position [B,H,W] (a pixel's three colours together)."""
        return discretized_mix_logistic_pixel_log_prob(values, params)

    def noise(self, count, height, width, seed, start=0):
        """The uniforms that samples [start, start + count) of H x W use, from stateless seeds [2] per
        name."""
        seeds = tf.unstack(tf.random.experimental.stateless_split(seed, len(self.noise_shapes)))
        return tuple(uniform_noise([count, height, width, *shape], s, start)
                     for shape, s in zip(self.noise_shapes.values(), seeds))

    def draw(self, params, noise, quantize=True):
        """Values [B,3] drawn at one position from its parameters [B,10M] and noise ([B,M], [B,3]);
        quantize: each rounded to its 8-bit level (else the original's continuous values)."""
        x = sample_discretized_mix_logistic(params, *noise)
        return image_checks.round_to_levels(x) if quantize else x

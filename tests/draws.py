"""What "two samplers draw the same images" guarantees, and the check of exactly that.

The fast (cached) and the naive sampler compute each pixel's mixture parameters by different sums:
per-pixel steps against whole-image convolutions, and the kernels oneDNN and XLA pick depend on the
CPU's instruction set (AVX-512 or AVX2) and on whether oneDNN is on. In float32 the two drawn values
of a pixel differ by rounding only: |delta| <= EPSILON (the continuous-feedback comparisons, which
let these differences accumulate over whole images, stay within it).

With 8-bit feedback (the default) such a difference is invisible unless the draw lies within
|delta| of a decision boundary: half-way between two 8-bit levels, or a near-tie of the two best
Gumbel scores of the mixture-component choice. There the two samplers may decide differently, and
from that pixel on each image continues as another draw of the same model. So the guarantee is:

    the images are identical, or identical up to a first differing pixel whose draw (recomputed
    from the shared prefix) lies within EPSILON of a decision boundary.

If delta were spread evenly over a level, a flip would happen in at most EPSILON / LEVEL_WIDTH of the
sub-pixel draws (0.64%); `assert_same_draws` returns the counts so that tests can measure the rate.
"""

import math

import numpy as np
import tensorflow as tf

from pixelsnail_tf.distributions.logistic_mixture import sample_discretized_mix_logistic, unpack_parameters
from pixelsnail_tf.images import check_images

EPSILON = 5e-5  # float32 rounding between two computation paths, in pixel value and in logit units
LEVEL_WIDTH = 2.0 / 255.0  # distance between two 8-bit levels in [-1, 1]
FLIP_RATE_BOUND = EPSILON / LEVEL_WIDTH


def decision_margins(params, u_mix, u_logistic):
    """How far one pixel's draw is from changing: (choice gap, level distances [3]).

    params [10M], u_mix [M], u_logistic [3] of one pixel. The choice gap is the best Gumbel score
    minus the second best (logit units); a level distance is how far the drawn value of a colour lies
    from the nearest half-way point between two 8-bit levels (pixel value units).
    """
    params = tf.constant(params, tf.float32)[None]
    logits = unpack_parameters(params)[0][0].numpy().astype(np.float64)
    scores = np.sort(logits - np.log(-np.log(np.asarray(u_mix, np.float64))))
    gap = scores[-1] - scores[-2] if scores.size > 1 else np.inf
    x = sample_discretized_mix_logistic(params, tf.constant(u_mix, tf.float32)[None],
                                        tf.constant(u_logistic, tf.float32)[None])[0].numpy()
    level = x.astype(np.float64) * 127.5 + 127.5  # in [0, 255]; rounding boundaries at k + 0.5
    return gap, np.abs(level - (np.floor(level) + 0.5)) / 127.5


def assert_same_draws(model, fast, naive, u_mix, u_logistic, labels=None):
    """Asserts the guarantee above for images [S,H,W,3] (uint8, or float32 8-bit levels) drawn by two
    samplers from the same noise. Returns (flips, draws): images that differ, and the sub-pixel draws
    compared under a shared prefix (up to and including each image's first difference)."""
    fast, naive = check_images(fast).numpy(), check_images(naive).numpy()
    u_mix, u_logistic = np.asarray(u_mix), np.asarray(u_logistic)
    height, width = fast.shape[1:3]
    flips, draws = 0, 0
    for i in range(fast.shape[0]):
        differs = np.any(fast[i] != naive[i], axis=-1).reshape(-1)
        if not differs.any():
            draws += differs.size * 3
            continue
        p = int(np.argmax(differs))
        r, c = divmod(p, width)
        flips, draws = flips + 1, draws + 3 * (p + 1)
        # The network is causal: its parameters at (r, c) depend only on the shared earlier pixels.
        label = None if labels is None else tf.constant(np.asarray(labels)[i:i + 1])
        params = model(tf.constant(naive[i:i + 1]), label, training=False)[0, r, c].numpy()
        gap, distances = decision_margins(params, u_mix[i, r, c], u_logistic[i, r, c])
        changed = fast[i, r, c] != naive[i, r, c]
        assert gap < EPSILON or np.all(distances[changed] < EPSILON), (
            f"image {i} differs first at pixel ({r}, {c}) (of {height}x{width}): "
            f"{fast[i, r, c]} vs {naive[i, r, c]}, but its draw is {distances[changed].max():.3g} from the "
            f"nearest level boundary and {gap:.3g} from a component tie (a rounding flip needs < {EPSILON})")
    return flips, draws


def red_level_probabilities(params, mixtures):
    """The probability of each of the 256 levels of a pixel's red value under its mixture parameters
    [10M] (float64, computed independently of the package: the red channel depends on no other)."""
    params = np.asarray(params, np.float64)
    m = mixtures
    logits, means, log_scales = params[:m], params[m:2 * m], np.maximum(params[2 * m:3 * m], -7)
    weights = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    x = np.arange(256) * 2 / 255 - 1
    cdf = lambda v: 1 / (1 + np.exp(-(v[:, None] - means) / np.exp(log_scales)))  # noqa: E731
    upper = np.where(x[:, None] > 0.999, 1.0, cdf(x + 1 / 255))
    lower = np.where(x[:, None] < -0.999, 0.0, cdf(x - 1 / 255))
    probs = ((upper - lower) * weights).sum(axis=1)
    assert abs(probs.sum() - 1) < 1e-9
    return probs


def assert_levels_follow(levels, probs, min_dof=8):
    """Chi-square test (99.9%) that drawn levels [n] (8-bit levels, or codes) follow `probs` [levels];
    neighbouring levels are merged until each group expects at least 20 draws."""
    n = len(levels)
    counts = np.bincount(np.asarray(levels, int), minlength=len(probs))
    assert len(counts) == len(probs)
    observed, expected, o, e = [], [], 0.0, 0.0
    for k in range(len(probs)):
        o, e = o + counts[k], e + n * probs[k]
        if e >= 20:
            observed.append(o), expected.append(e)
            o = e = 0.0
    observed[-1] += o
    expected[-1] += e
    observed, expected = np.array(observed), np.array(expected)
    dof = len(observed) - 1
    assert dof >= min_dof
    chi2 = ((observed - expected) ** 2 / expected).sum()
    z = 3.09  # 99.9% quantile, Wilson-Hilferty approximation of the chi-square quantile
    assert chi2 < dof * (1 - 2 / (9 * dof) + z * math.sqrt(2 / (9 * dof))) ** 3

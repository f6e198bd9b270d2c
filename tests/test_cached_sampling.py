"""The cached (fast) sampler against the naive one and against the original's recorded samples."""

import os

import numpy as np
import pytest
import tensorflow as tf

from conftest import REPORT, initialized_model, small_config, trained_tiny_model
from draws import EPSILON, FLIP_RATE_BOUND, assert_same_draws
from pixelsnail_tf.distributions import distribution_of
from pixelsnail_tf.sampling import CachedSampler, sample_cached
from pixelsnail_tf.config import VARIANTS
from pixelsnail_tf.images import float_to_uint8
from pixelsnail_tf.distributions.logistic_mixture import unpack_parameters
from pixelsnail_tf.sampling import NaiveSampler, draw_noise

pytestmark = pytest.mark.paths


# Weights and noise are seeded (a failure can be reproduced); PIXELSNAIL_TEST_SEED=k draws other ones,
# for repeated runs that measure the flip rate over more images.
SEED = int(os.environ.get("PIXELSNAIL_TEST_SEED", "0"))
# Every variant; square and non-square (odd sizes: pooled key cells clipped at the border), with and
# without class conditioning; nr_resnet 2 so that caches chain through consecutive layers. Six images
# each: 60 seeded draws across the variants for the flip rate.
# pxpp (a U-net over three resolutions) takes sides that are multiples of 4.
CASES = [(model, size, classes) for model in sorted(VARIANTS)
         for size, classes in (((4, 4), 0), ((4, 8) if model == "pxpp" else (3, 5), 3))]
IMAGES = 6


@pytest.fixture(scope="module")
def flip_tally():
    """Counts the 8-bit flips between the samplers over the module's cases; asserts their rate."""
    tally = dict(images=0, flips=0, draws=0)
    yield tally
    rate = tally["flips"] / max(tally["draws"], 1)
    REPORT.append(f"fast vs naive sampler, 8-bit feedback: {tally['flips']} of {tally['images']} images "
                  f"differ (rounding flips); flip rate {rate:.2e} per sub-pixel draw "
                  f"(bound {FLIP_RATE_BOUND:.2e}, {tally['draws']} draws)")
    assert rate <= FLIP_RATE_BOUND, REPORT[-1]


@pytest.mark.slow
@pytest.mark.parametrize("variant,size,num_classes", CASES)
def test_draws_what_the_naive_sampler_draws(variant, size, num_classes, flip_tally):
    config = small_config(model=variant, nr_resnet=2, num_classes=num_classes)
    seed = SEED * len(CASES) + CASES.index((variant, size, num_classes))
    model = initialized_model(config, *size, seed=seed)
    u_mix, u_logistic = draw_noise(distribution_of(config), IMAGES, *size, seed=100 + seed)
    labels = tf.constant(np.arange(IMAGES) % num_classes) if num_classes else None
    naive = NaiveSampler(model)((u_mix, u_logistic), labels).numpy()
    rows_done = []
    fast = CachedSampler(model, progress=rows_done.append)((u_mix, u_logistic), labels).numpy()
    # 8-bit levels fed back: identical images but for rounding flips at a level boundary (draws.py)
    flips, draws = assert_same_draws(model, fast, naive, u_mix, u_logistic, labels)
    flip_tally.update(images=flip_tally["images"] + IMAGES, flips=flip_tally["flips"] + flips,
                      draws=flip_tally["draws"] + draws)
    assert rows_done == [size[1] * (r + 1) for r in range(size[0])]
    # continuous values fed back (the original's sampling): rounding differences only, which later
    # pixels carry on and may amplify; EPSILON bounds them (draws.py); a component choice is a
    # discontinuity that no tolerance covers, but a tie within EPSILON has probability ~1e-5 here
    naive = NaiveSampler(model, quantize=False)((u_mix, u_logistic), labels).numpy()
    fast = CachedSampler(model, quantize=False)((u_mix, u_logistic), labels).numpy()
    np.testing.assert_allclose(fast, naive, atol=EPSILON)
    assert len(np.unique(fast)) > 20  # not stuck on a few values: the test compares real samples


@pytest.mark.slow
def test_a_difference_is_accepted_only_at_a_decision_boundary():
    """assert_same_draws fails on a changed level away from a boundary and accepts one at a boundary."""
    config = small_config()
    model = initialized_model(config, 2, 2, seed=1)
    u_mix, u_logistic = (t.numpy() for t in draw_noise(distribution_of(config), 1, 2, 2, seed=5))
    naive = float_to_uint8(NaiveSampler(model)((u_mix, u_logistic))).numpy()
    changed = naive.copy()
    changed[0, 1, 1, 0] ^= 1  # one level apart, in the last pixel
    with pytest.raises(AssertionError, match="from the nearest level boundary"):
        assert_same_draws(model, changed, naive, u_mix, u_logistic)
    # noise that puts the first pixel's red half-way between two levels: either level is a valid draw
    params = model(tf.zeros([1, 2, 2, 3]))[0, 0, 0]  # the first pixel's do not depend on the image
    logits, means, log_scales, _ = (t.numpy() for t in unpack_parameters(params))
    k = np.argmax(logits - np.log(-np.log(u_mix[0, 0, 0])))
    mean, scale = means[0, k], np.exp(max(log_scales[0, k], -7.0))
    level = np.floor(mean * 127.5 + 127.5)  # the boundary between `level` and `level + 1` is nearest
    u_logistic[0, 0, 0, 0] = 1 / (1 + np.exp(-(((level + 0.5) / 127.5 - 1 - mean) / scale)))
    naive = float_to_uint8(NaiveSampler(model)((u_mix, u_logistic))).numpy()
    other = naive.copy()
    other[0, 0, 0, 0] = 2 * level + 1 - naive[0, 0, 0, 0]
    assert abs(int(other[0, 0, 0, 0]) - int(naive[0, 0, 0, 0])) == 1
    assert assert_same_draws(model, other, naive, u_mix, u_logistic) == (1, 3)


def test_replays_the_original_samples(tiny_config, tiny_reference):
    model = trained_tiny_model(tiny_config)
    x = CachedSampler(model, quantize=False)((tiny_reference["sample_rand_u_mix"],
                                              tiny_reference["sample_rand_u_logistic"]))
    # Continuous values fed back carry the network's rounding differences (the per-pixel convolutions
    # sum in another order than conv2d) into later pixels: the naive sampler's 4e-6 becomes 1.5e-5
    # by the last rows here. The default 8-bit feedback removes them (identical images above, but for
    # rounding flips at level boundaries).
    np.testing.assert_allclose(x.numpy(), tiny_reference["sample_rand_x"], atol=EPSILON)


@pytest.mark.slow
def test_one_graph_version_equals_the_row_by_row_calls():
    """sample_cached (a while loop over the rows, as in the exported `sample` signature)."""
    config = small_config(model="model", num_classes=2)
    model = initialized_model(config, 3, 4)
    u_mix, u_logistic = draw_noise(distribution_of(config), 2, 3, 4, seed=3)
    labels = tf.constant([1, 0])
    # the same ops on the same shapes in the same order, only the loop around them differs: identical
    graph = tf.function(lambda noise: sample_cached(model, noise, labels))((u_mix, u_logistic))
    np.testing.assert_array_equal(graph.numpy(), CachedSampler(model)((u_mix, u_logistic), labels).numpy())


@pytest.mark.slow
def test_follows_the_weights():
    """Weights are read when a row is drawn: changing them changes the next samples."""
    config = small_config()
    model = initialized_model(config, 3, 3)
    u_mix, u_logistic = draw_noise(distribution_of(config), 2, 3, 3, seed=4)
    sampler = CachedSampler(model)
    before = sampler((u_mix, u_logistic)).numpy()
    model.head.b.assign(model.head.b + 0.5)
    after = sampler((u_mix, u_logistic)).numpy()
    assert np.any(before != after)
    assert_same_draws(model, after, NaiveSampler(model)((u_mix, u_logistic)), u_mix, u_logistic)

"""The cached (fast) sampler against the naive one and against the original's recorded samples."""

import numpy as np
import pytest
import tensorflow as tf

from conftest import small_config, trained_tiny_model
from pixelsnail_tf.cached_sampling import CachedSampler, sample_cached
from pixelsnail_tf.config import VARIANTS
from pixelsnail_tf.model import PixelSNAIL
from pixelsnail_tf.sampling import NaiveSampler, draw_noise


def initialized(config, height, width, seed=0):
    model = PixelSNAIL(config)
    labels = np.arange(3) % config.num_classes if config.num_classes else None
    images = np.random.default_rng(seed).uniform(-1, 1, (3, height, width, 3)).astype(np.float32)
    model.initialize(images, labels)
    return model


# Every variant; square and non-square (odd sizes: pooled key cells clipped at the border), with and
# without class conditioning; nr_resnet 2 so that caches chain through consecutive layers.
CASES = [(model, size, classes) for model in sorted(VARIANTS)
         for size, classes in (((4, 4), 0), ((3, 5), 3))]


@pytest.mark.parametrize("variant,size,num_classes", CASES)
def test_draws_what_the_naive_sampler_draws(variant, size, num_classes):
    config = small_config(model=variant, nr_resnet=2, num_classes=num_classes)
    model = initialized(config, *size)
    u_mix, u_logistic = draw_noise(3, *size, config.nr_logistic_mix, seed=sum(size))
    labels = tf.constant([2, 0, 1]) if num_classes else None
    naive = NaiveSampler(model)(u_mix, u_logistic, labels).numpy()
    rows_done = []
    fast = CachedSampler(model, progress=rows_done.append)(u_mix, u_logistic, labels).numpy()
    np.testing.assert_array_equal(fast, naive)  # 8-bit levels fed back: identical images
    assert rows_done == [size[1] * (r + 1) for r in range(size[0])]
    # continuous values fed back (the original's sampling): rounding differences only
    naive = NaiveSampler(model, quantize=False)(u_mix, u_logistic, labels).numpy()
    fast = CachedSampler(model, quantize=False)(u_mix, u_logistic, labels).numpy()
    np.testing.assert_allclose(fast, naive, atol=5e-5)
    assert len(np.unique(fast)) > 20  # not stuck on a few values: the test compares real samples


def test_replays_the_original_samples(tiny_config, tiny_reference):
    model = trained_tiny_model(tiny_config)
    x = CachedSampler(model, quantize=False)(tiny_reference["sample_rand_u_mix"],
                                             tiny_reference["sample_rand_u_logistic"])
    # Continuous values fed back carry the network's rounding differences (the per-pixel convolutions
    # sum in another order than conv2d) into later pixels: the naive sampler's 4e-6 becomes 1.5e-5
    # by the last rows here. The default 8-bit feedback removes them (identical images above).
    np.testing.assert_allclose(x.numpy(), tiny_reference["sample_rand_x"], atol=2e-5)


def test_one_graph_version_equals_the_row_by_row_calls():
    """sample_cached (a while loop over the rows, as in the exported `sample` signature)."""
    config = small_config(model="model", num_classes=2)
    model = initialized(config, 3, 4)
    u_mix, u_logistic = draw_noise(2, 3, 4, config.nr_logistic_mix, seed=3)
    labels = tf.constant([1, 0])
    graph = tf.function(lambda u, v: sample_cached(model, u, v, labels))(u_mix, u_logistic)
    np.testing.assert_array_equal(graph.numpy(), CachedSampler(model)(u_mix, u_logistic, labels).numpy())


def test_follows_the_weights():
    """Weights are read when a row is drawn: changing them changes the next samples."""
    config = small_config()
    model = initialized(config, 3, 3)
    u_mix, u_logistic = draw_noise(2, 3, 3, config.nr_logistic_mix, seed=4)
    sampler = CachedSampler(model)
    before = sampler(u_mix, u_logistic).numpy()
    model.head.b.assign(model.head.b + 0.5)
    after = sampler(u_mix, u_logistic).numpy()
    assert np.any(before != after)
    np.testing.assert_array_equal(after, NaiveSampler(model)(u_mix, u_logistic).numpy())

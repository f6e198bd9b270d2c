"""Discretized mixture of logistics: against the original's stored numbers, and normalization."""

import math

import numpy as np
import pytest
import tensorflow as tf

from pixelsnail_tf.distributions import bits_per_dim
from pixelsnail_tf.distributions.base import uniform_noise
from pixelsnail_tf.distributions.logistic_mixture import (discretized_mix_logistic_log_prob,
                                                          sample_discretized_mix_logistic)

pytestmark = pytest.mark.paths


@pytest.mark.parametrize("key", ["raw_after_init", "raw_final", "ema_final"])
def test_log_prob_of_stored_network_outputs(tiny_reference, key):
    ll = discretized_mix_logistic_log_prob(tiny_reference["x_test"], tiny_reference[f"out_test_{key}"])
    np.testing.assert_allclose(ll.numpy(), tiny_reference[f"ll_test_{key}"], rtol=1e-6)
    np.testing.assert_allclose(bits_per_dim(ll, 8 * 8 * 3).numpy(), tiny_reference[f"bpd_test_{key}"],
                               rtol=1e-6)


def test_sampling_replays_the_original_noise(tiny_reference):
    x = sample_discretized_mix_logistic(tiny_reference["sample_rand_out"],
                                        tiny_reference["sample_rand_u_mix"],
                                        tiny_reference["sample_rand_u_logistic"])
    np.testing.assert_allclose(x.numpy(), tiny_reference["sample_rand_x"], atol=1e-5)


def test_greedy_sampling(tiny_reference):
    out = tiny_reference["sample_greedy_out"]
    u_mix = np.full(out.shape[:-1] + (3,), math.exp(-1.0), np.float32)  # Gumbel term 0
    u_logistic = np.full(out.shape[:-1] + (3,), 0.5, np.float32)  # logistic noise 0
    x = sample_discretized_mix_logistic(out, u_mix, u_logistic)
    np.testing.assert_allclose(x.numpy(), tiny_reference["sample_greedy_x"], atol=1e-5)


@pytest.mark.slow
def test_probabilities_of_all_pixel_values_sum_to_one():
    rng = np.random.default_rng(3)
    mixtures = 2
    params = rng.normal(size=(1, 1, 1, 10 * mixtures)).astype(np.float32)
    params[..., mixtures:] *= 0.5
    levels = np.arange(256, dtype=np.float32) * 2 / 255 - 1
    total = 0.0
    for r in levels:  # all 256^3 colours of one pixel, one red level at a time
        g, b = np.meshgrid(levels, levels, indexing="ij")
        x = np.stack([np.full(g.size, r), g.ravel(), b.ravel()], -1).reshape(-1, 1, 1, 3)
        total += np.exp(discretized_mix_logistic_log_prob(
            x, np.broadcast_to(params, (len(x), 1, 1, 10 * mixtures))).numpy().astype(np.float64)).sum()
    assert abs(total - 1.0) < 1e-4


def test_samples_lie_in_range_and_noise_is_reproducible():
    params = tf.random.stateless_normal([2, 4, 4, 30], seed=[1, 2]) * 3
    u = uniform_noise([2, 4, 4, 3], seed=[5, 6])
    assert float(tf.reduce_min(u)) >= 1e-5 and float(tf.reduce_max(u)) <= 1 - 1e-5
    np.testing.assert_array_equal(u.numpy(), uniform_noise([2, 4, 4, 3], seed=[5, 6]).numpy())
    x = sample_discretized_mix_logistic(params, u, uniform_noise([2, 4, 4, 3], seed=[7, 8])).numpy()
    assert x.shape == (2, 4, 4, 3) and x.min() >= -1 and x.max() <= 1

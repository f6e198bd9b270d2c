"""The fast sampler on the paper's CIFAR-10 configuration (46M parameters, 12 attention blocks at 32x32):
its first two rows, drawn pixel by pixel as the naive sampler does (about a minute and a half)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from draws import assert_same_draws
from pixelsnail_tf.distributions import distribution_of
from pixelsnail_tf.config import ModelConfig
from pixelsnail_tf.images import round_to_levels
from pixelsnail_tf.distributions.logistic_mixture import sample_discretized_mix_logistic
from pixelsnail_tf.models import build_model
from pixelsnail_tf.sampling import draw_noise

pytestmark = pytest.mark.slow

ROWS, SIDE, IMAGES = 2, 32, 1


def draw(params, u_mix, u_logistic):
    return round_to_levels(sample_discretized_mix_logistic(params, u_mix, u_logistic))


def test_first_two_rows_of_the_cifar_config_equal_the_naive_samplers():
    config = ModelConfig()
    keras.utils.set_random_seed(0)
    model = build_model(config)
    rng = np.random.default_rng(0)
    model.initialize(rng.uniform(-1, 1, (IMAGES, SIDE, SIDE, 3)).astype(np.float32))
    u_mix, u_logistic = draw_noise(distribution_of(config), IMAGES, SIDE, SIDE, seed=7)

    @tf.function
    def naive_pixel(canvas, r, c):  # the whole network on the canvas, for one pixel
        x = draw(model(canvas)[:, r, c], u_mix[:, r, c], u_logistic[:, r, c])
        index = tf.stack([tf.range(IMAGES), tf.fill([IMAGES], r), tf.fill([IMAGES], c)], axis=1)
        return tf.tensor_scatter_nd_update(canvas, index, x)

    naive = tf.zeros([IMAGES, SIDE, SIDE, 3])
    for p in range(ROWS * SIDE):
        naive = naive_pixel(naive, tf.constant(p // SIDE), tf.constant(p % SIDE))

    @tf.function
    def fast_row(r, state):
        def choose(c, params):
            return draw(params, u_mix[:, r][:, c], u_logistic[:, r][:, c])
        state, pixels, _ = model.steps(SIDE, SIDE).row(r, state, choose)
        return state, pixels

    state, rows = model.initial_steps_state(IMAGES, SIDE, SIDE), []
    for r in range(ROWS):
        state, pixels = fast_row(tf.constant(r), state)
        rows.append(pixels)
    fast = tf.concat([tf.stack(rows, axis=1), tf.zeros([IMAGES, SIDE - ROWS, SIDE, 3])], axis=1)
    assert len(np.unique(fast.numpy()[:, :ROWS])) > 20  # real draws, not a constant
    # identical, but for a rounding flip at a decision boundary (draws.py): none expected here
    assert assert_same_draws(model, fast, naive, u_mix, u_logistic)[0] == 0

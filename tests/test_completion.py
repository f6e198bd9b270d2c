"""Completing partly given images: given pixels kept, both samplers alike, the first drawn pixel from
the model's conditional."""

import numpy as np
import pytest

from conftest import initialized_model, small_config, trained_tiny_model
from draws import assert_levels_follow, assert_same_draws, red_level_probabilities
from pixelsnail_tf.distributions import distribution_of
from pixelsnail_tf.config import VARIANTS
from pixelsnail_tf.images import uint8_to_float
from pixelsnail_tf.sampling import complete, draw_noise, prefix_lengths


@pytest.mark.slow
@pytest.mark.parametrize("sampler", ["fast", "naive"])
def test_given_pixels_are_kept_and_the_rest_drawn(tiny_config, tiny_reference, sampler):
    model = trained_tiny_model(tiny_config)
    images = tiny_reference["x_test_u8"][:2]
    counts = np.array([3 * 8, 3 * 8 + 5])  # three rows; three rows and five pixels
    out = complete(model, images, given_pixels=counts, num_samples=2, seed=4, sampler=sampler)
    assert out.shape == (2, 2, 8, 8, 3) and out.dtype == np.uint8
    for i, count in enumerate(counts):
        flat = out[i].reshape(2, 64, 3)
        np.testing.assert_array_equal(flat[:, :count], np.broadcast_to(images[i].reshape(64, 3)[:count],
                                                                       (2, count, 3)))
        assert (flat[:, count:] != images[i].reshape(64, 3)[count:]).any()  # the rest is drawn
        assert (out[i, 0] != out[i, 1]).any()  # two completions, two draws
    again = complete(model, images, given_pixels=counts, num_samples=2, seed=4, sampler=sampler,
                     batch_size=3)
    np.testing.assert_array_equal(again, out)  # the noise does not depend on the batching


def test_all_rows_given_returns_the_image(tiny_config, tiny_reference):
    model = trained_tiny_model(tiny_config)
    images = tiny_reference["x_test_u8"]
    out = complete(model, images, given_rows=8, num_samples=1)
    np.testing.assert_array_equal(out[:, 0], images)


@pytest.mark.slow
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_fast_completes_what_naive_completes(variant):
    """Every variant, with the given prefix ending inside a row: the same completions from the same
    noise, up to a rounding flip at a decision boundary (draws.py)."""
    size = (8, 8) if variant == "pxpp" else (4, 5)
    model = initialized_model(small_config(variant), *size)
    images = np.random.default_rng(7).integers(0, 256, (2, *size, 3), np.uint8)
    counts = np.array([size[1] + 2, 2 * size[1]])
    fast = complete(model, images, given_pixels=counts, num_samples=2, seed=11, sampler="fast")
    naive = complete(model, images, given_pixels=counts, num_samples=2, seed=11, sampler="naive")
    u_mix, u_logistic = draw_noise(distribution_of(model.config), 4, *size, 11)
    assert_same_draws(model, fast.reshape(4, *size, 3), naive.reshape(4, *size, 3), u_mix.numpy(),
                      u_logistic.numpy())


@pytest.mark.slow
def test_first_drawn_pixel_follows_the_model_conditional(tiny_config, tiny_reference):
    """Chi-square test of the red value of the first drawn pixel (2, 3) given the pixels before it,
    against the mixture the network gives that pixel."""
    model = trained_tiny_model(tiny_config)
    image = tiny_reference["x_test_u8"][1]
    count = 2 * 8 + 3
    params = model(uint8_to_float(image[None])).numpy()[0, 2, 3]
    red = complete(model, image[None], given_pixels=[count], num_samples=3000, seed=5, batch_size=3000)
    assert_levels_follow(red[0, :, 2, 3, 0], red_level_probabilities(params, tiny_config.nr_logistic_mix))


def test_a_mask_must_be_a_raster_prefix():
    mask = np.zeros((2, 3, 4), bool)
    mask[0, 0] = True
    mask[0, 1, :2] = True
    np.testing.assert_array_equal(prefix_lengths(mask), [6, 0])
    mask[1, 2, 0] = True  # a given pixel after drawn ones
    with pytest.raises(ValueError, match="mask of image 1 is not a prefix in raster order"):
        prefix_lengths(mask)


@pytest.mark.slow
def test_float_images_complete_as_their_levels(tiny_config, tiny_reference):
    """Float images in [-1, 1] are completed like their uint8 levels."""
    model = trained_tiny_model(tiny_config)
    images = tiny_reference["x_test_u8"][:1]
    as_float = complete(model, uint8_to_float(images).numpy(), given_rows=4, seed=2)
    as_uint8 = complete(model, images, given_rows=4, seed=2)
    np.testing.assert_array_equal(as_float, as_uint8)

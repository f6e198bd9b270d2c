"""The training loop's checks of its data (runs.check_data), which fit makes before anything is built or
written: both splits of what the model is a distribution over and of one shape, a global batch, more
than one pixel."""

import numpy as np
import pytest

from conftest import small_config
from pixelsnail_tf.distributions import distribution_of
from pixelsnail_tf.runs import check_data

IMAGES = distribution_of(small_config())
CODES = distribution_of(small_config(output="categorical", num_codes=4))


def images(count, height=8, width=8):
    return np.zeros((count, height, width, 3), np.uint8)


@pytest.mark.parametrize("distribution, train, test, batch, message", [
    (IMAGES, images(8), images(4, 16, 16), 8,
     "the data's test data are of shape (16, 16, 3) and its training data (8, 8, 3)"),
    (IMAGES, images(8), images(4).astype(np.float32), 8, "the data's test data must hold uint8 images"),
    (IMAGES, images(8)[..., 0], images(4), 8, "the data's training data must hold uint8 images"),
    (IMAGES, images(7), images(4), 8, "7 training images are fewer than one global batch (8:"),
    (IMAGES, images(8, 1, 1), images(4, 1, 1), 8, "1x1 images cannot be trained on"),
    (CODES, np.zeros((8, 4, 4), np.int32), np.full((4, 4, 4), 4), 8, "codes must lie in [0, 4)"),
])
def test_data_a_run_cannot_use_is_refused_with_one_line(distribution, train, test, batch, message):
    with pytest.raises(ValueError) as error:
        check_data(distribution, batch, (train, None), (test, None))
    assert message in str(error.value) and "\n" not in str(error.value)


def test_data_of_one_shape_and_a_batch_pass():
    check_data(IMAGES, 8, (images(8), None), (images(2), None))
    check_data(CODES, 2, (np.zeros((2, 4, 4), np.int64), None), (np.ones((1, 4, 4), np.uint8), None))

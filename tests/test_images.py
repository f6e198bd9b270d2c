"""Image values and pictures (pixelsnail_tf.images): the original's scaling, the checks, the grid."""

import numpy as np
import pytest

from pixelsnail_tf import images


def test_levels_round_trip_exactly():
    levels = np.arange(256, dtype=np.uint8).reshape(1, 16, 16, 1).repeat(3, axis=-1)
    x = images.uint8_to_float(levels).numpy()
    assert x.min() == -1.0 and x.max() == 1.0 and x[0, 0, 1, 0] == np.float32((1 - 127.5) / 127.5)
    np.testing.assert_array_equal(images.float_to_uint8(x).numpy(), levels)
    np.testing.assert_array_equal(images.round_to_levels(x + 0.003).numpy(), x)


@pytest.mark.parametrize("bad, message", [
    (np.zeros((2, 4, 4), np.uint8), "shape [batch, height, width, 3]"),
    (np.zeros((1, 4, 4, 3), np.int32), "got dtype int32"),
    (np.full((1, 4, 4, 3), 1.5, np.float32), "got values in [1.5, 1.5]"),
    (np.full((1, 4, 4, 3), np.nan, np.float32), "NaN/Inf"),
])
def test_bad_images_are_one_line(bad, message):
    with pytest.raises(ValueError, match=None) as error:
        images.check_images(bad)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_grid_keeps_true_colours_and_enlarges_by_whole_factors():
    tiles = np.arange(2 * 2 * 3 * 3, dtype=np.uint8).reshape(2, 2, 3, 3)
    grid = images.image_grid(tiles)
    assert grid.shape == (1 + 2 + 1, 1 + 2 * (3 + 1), 3)  # ceil(sqrt(2)) = 2 columns, white borders
    np.testing.assert_array_equal(grid[1:3, 1:4], tiles[0])
    np.testing.assert_array_equal(grid[1:3, 5:8], tiles[1])
    assert (grid[0] == 255).all()
    large = images.enlarged(grid, min_width=256)
    assert large.shape[1] == 9 * 29 and large.shape[1] >= 256  # the smallest whole factor
    np.testing.assert_array_equal(large[::29, ::29], grid)


def test_labels_are_checked_against_the_classes():
    assert images.check_labels(None, 3, 0) is None
    np.testing.assert_array_equal(images.check_labels([0, 2, 1], 3, 3).numpy(), [0, 2, 1])
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):
        images.check_labels([0, 3, 1], 3, 3)


def test_completion_rows_show_the_image_its_given_part_and_the_completions():
    pictures = np.full((2, 2, 3, 3), 200, np.uint8)
    completions = np.zeros((2, 3, 2, 3, 3), np.uint8)
    cells, columns = images.completion_rows(pictures, np.array([4, 0]), completions)
    assert columns == 5 and cells.shape == (10, 2, 3, 3)
    np.testing.assert_array_equal(cells[0], pictures[0])
    assert (cells[1].reshape(-1, 3)[:4] == 200).all() and (cells[1].reshape(-1, 3)[4:] == 128).all()
    assert (cells[6] == 128).all()  # the second image: nothing given
    assert (cells[2:5] == 0).all() and (cells[7:10] == 0).all()

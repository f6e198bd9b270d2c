"""Shifts and shifted (causal) convolutions.

A shifted convolution pads the input only above (and left of) each pixel, so an output pixel sees
input pixels in the rows above it and, for the down-right variant, to its left in its own row.
A shift moves an image down (or right) by one pixel with a zero row (column) in front; applied after
a shifted convolution it makes the receptive field strictly earlier than the pixel itself.
The shifted transposed convolutions (the PixelCNN++ variant's upsampling) crop their output so that
an output pixel depends only on input cells above it (and, down-right, to its left).
"""

import keras
import tensorflow as tf

from pixelsnail_tf.layers.incremental import PixelSteps, RowSteps
from pixelsnail_tf.layers.weight_norm import WeightNormConv2D, WeightNormConv2DTranspose


def down_shift(x):
    """Row 0 becomes zeros, row i becomes input row i-1."""
    return tf.pad(x[:, :-1], [[0, 0], [1, 0], [0, 0], [0, 0]])


def right_shift(x):
    """Column 0 becomes zeros, column j becomes input column j-1."""
    return tf.pad(x[:, :, :-1], [[0, 0], [0, 0], [1, 0], [0, 0]])


@keras.saving.register_keras_serializable(package="pixelsnail_tf")
class DownShift(keras.layers.Layer):
    def call(self, x):
        return down_shift(x)


@keras.saving.register_keras_serializable(package="pixelsnail_tf")
class RightShift(keras.layers.Layer):
    def call(self, x):
        return right_shift(x)


class _ShiftedConv2D(WeightNormConv2D):
    """A VALID convolution after padding kh-1 rows above and columns left / right: subclasses say how many."""

    default_kernel_size = None

    def __init__(self, filters, kernel_size=None, init_scale=1.0, **kwargs):
        kwargs.pop("padding", None)  # from get_config: the padding is always ours, then VALID
        super().__init__(filters, kernel_size or self.default_kernel_size, init_scale=init_scale,
                         padding="VALID", **kwargs)

    @property
    def horizontal_padding(self):
        """(columns padded on the left, on the right)."""
        raise NotImplementedError

    @property
    def spatial_padding(self):
        return (self.kernel_size[0] - 1, 0), self.horizontal_padding

    def initial_rows(self, batch, width, dtype):
        """The state of its steps before row 0: its kh-1 input rows above the image (the zero padding)."""
        kh, _, channels, _ = self.V.shape
        return tf.zeros([batch, kh - 1, width, channels], dtype)

    def row_steps(self, dtype):
        """The layer a row at a time (layers/incremental.py), its weights prepared in `dtype`."""
        return RowSteps(self, dtype)


@keras.saving.register_keras_serializable(package="pixelsnail_tf")
class DownShiftedConv2D(_ShiftedConv2D):
    """Sees the kh-1 rows above and the row of the pixel, centred horizontally (default 2x3)."""

    default_kernel_size = (2, 3)

    @property
    def horizontal_padding(self):
        side = (self.kernel_size[1] - 1) // 2
        return side, side


@keras.saving.register_keras_serializable(package="pixelsnail_tf")
class DownRightShiftedConv2D(_ShiftedConv2D):
    """Sees the kh-1 rows above and the kw-1 columns to the left, including the pixel (default 2x2)."""

    default_kernel_size = (2, 2)

    @property
    def horizontal_padding(self):
        return self.kernel_size[1] - 1, 0

    def pixel_steps(self, dtype):
        """The layer a pixel at a time (layers/incremental.py), its weights prepared in `dtype`."""
        return PixelSteps(self, dtype)


class _ShiftedConv2DTranspose(WeightNormConv2DTranspose):
    """A VALID transposed convolution cropped to [s*H, s*W]: the first rows, and the columns the
    subclass names."""

    default_kernel_size = None

    def __init__(self, filters, kernel_size=None, strides=2, **kwargs):
        super().__init__(filters, kernel_size or self.default_kernel_size, strides=strides, **kwargs)

    @property
    def cropped_columns(self):
        """(output columns dropped on the left, on the right)."""
        raise NotImplementedError

    def call(self, x, init=False):
        out = super().call(x, init=init)
        left, right = self.cropped_columns
        bottom = self.kernel_size[0] - 1
        return out[:, :-bottom if bottom else None, left:-right if right else None]


@keras.saving.register_keras_serializable(package="pixelsnail_tf")
class DownShiftedConv2DTranspose(_ShiftedConv2DTranspose):
    """Upsampling whose output pixel sees the input cells of its row and above, centred (default 2x3)."""

    default_kernel_size = (2, 3)

    @property
    def cropped_columns(self):
        side = (self.kernel_size[1] - 1) // 2
        return side, side


@keras.saving.register_keras_serializable(package="pixelsnail_tf")
class DownRightShiftedConv2DTranspose(_ShiftedConv2DTranspose):
    """Upsampling whose output pixel sees the input cells above and to its left (default 2x2)."""

    default_kernel_size = (2, 2)

    @property
    def cropped_columns(self):
        return 0, self.kernel_size[1] - 1

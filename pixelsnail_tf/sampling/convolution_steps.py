"""Shifted convolutions and 1x1 gated layers evaluated a row or a pixel at a time, for the fast samplers.

A shifted convolution's output at row r needs its kh-1 input rows above (final once those rows are
drawn) and the current row; a down-right-shifted one's output at pixel c needs, of the current row, only
the pixel and the kw-1 to its left. RowConv computes a whole row from the rows above; PixelConv splits
the rows-above part (once per row) from the current-row part (once per pixel).
"""

import tensorflow as tf

from pixelsnail_tf.layers.nonlinearities import apply_activation

# The gated layers' elementwise ops run as TensorFlow's own here, whatever the model's kernels: on one
# pixel (or row) of a batch, launching an XLA-compiled chain costs more than it saves (measured:
# benchmarks/README.md). The images equal the naive sampler's (tested).
ELEMENTWISE = "reference"


def pad_columns(x, layer):
    left, right = layer.horizontal_padding
    return tf.pad(x, [[0, 0], [0, 0], [left, right], [0, 0]])


def rows_above(layer, batch, width, dtype):
    """A shifted convolution's initial state: its kh-1 input rows above the image (zero padding)."""
    kh, _, channels, _ = layer.V.shape
    return tf.zeros([batch, kh - 1, width, channels], dtype)


class RowConv:
    """A shifted convolution evaluated a whole row at a time; its state is the kh-1 input rows above."""

    def __init__(self, layer, dtype):
        self.layer = layer
        self.kernel, self.bias = layer.effective_weights(dtype)

    def apply(self, rows):
        """The output row [B,1,W/stride,out] of kh input rows [B,kh,W,C] (the last one the current row)."""
        return tf.nn.bias_add(tf.nn.conv2d(pad_columns(rows, self.layer), self.kernel, self.layer.strides,
                                           "VALID"), self.bias)

    def __call__(self, above, row):
        """row [B,1,W,C], above [B,kh-1,W,C] -> (output row [B,1,W,out], next state)."""
        rows = tf.concat([above, row], axis=1)
        return self.apply(rows), rows[:, 1:]


class PixelConv:
    """A down-right-shifted convolution evaluated one pixel at a time.

    The rows above enter once per row (`row_start`); a pixel then needs only the kernel's last row
    applied to itself and the kw-1 inputs to its left. The row state is (those inputs [B, (kw-1)*C],
    zeros at the row start for the padding; a TensorArray of the row's inputs, for `row_end`).
    With stride s (a downsampling layer) it takes every input pixel, and its output at column c is that
    of output cell c // s, whose inputs (columns s*j-kw+1 .. s*j) are all in at c = s*j.
    """

    def __init__(self, layer, dtype):
        if layer.horizontal_padding[1]:
            raise ValueError(f"{layer.name} sees pixels to its right: it cannot run pixel by pixel")
        self.layer = layer
        self.kernel, self.bias = layer.effective_weights(dtype)
        kh, kw, channels, units = self.kernel.shape
        self.kh, self.kw, self.channels = kh, kw, channels
        self.last_row_kernel = tf.reshape(self.kernel[kh - 1], [kw * channels, units])

    def row_start(self, above):
        """The contribution of the rows above [B,kh-1,W,C] to each pixel of the row ([B,out] per column,
        a TensorArray: one read per pixel)."""
        if self.kh == 1:
            out = tf.zeros([tf.shape(above)[0], 1, above.shape[2], self.kernel.shape[-1]],
                           self.kernel.dtype) + self.bias
        else:
            out = tf.nn.bias_add(tf.nn.conv2d(pad_columns(above, self.layer), self.kernel[:-1],
                                              [1, 1, self.layer.strides, 1], "VALID"), self.bias)
        return tf.TensorArray(out.dtype, size=out.shape[2], clear_after_read=False).unstack(tf.transpose(out[:, 0], [1, 0, 2]))

    def empty_row(self, batch, width):
        dtype = self.kernel.dtype
        return (tf.zeros([batch, (self.kw - 1) * self.channels], dtype),
                tf.TensorArray(dtype, size=width, element_shape=[None, self.channels]))

    def step(self, row, above_out, c, value):
        """value [B,C] at column c -> (output [B,out] at c, the row state with value in it)."""
        left, inputs = row
        window = tf.concat([left, value], axis=1)  # taps left to right, as the kernel's last row
        out = tf.matmul(window, self.last_row_kernel) + above_out.read(c // self.layer.strides)
        left = value if self.kw == 2 else window[:, self.channels:]  # (the same; one op less per pixel)
        return out, (left, inputs.write(c, value))

    @staticmethod
    def row_inputs(row):
        """The inputs of a finished row, [B, W, C]."""
        return tf.transpose(row[1].stack(), [1, 0, 2])

    def row_end(self, above, row):
        return tf.concat([above, self.row_inputs(row)[:, None]], axis=1)[:, 1:]


def dense_resnet(resnet, dtype):
    """The linear maps of a 1x1 gated layer for GatedResnet.residual, weights prepared once."""
    conv_in, conv_out = resnet.conv_in.linear(dtype), resnet.conv_out.linear(dtype)

    def first(t, f):
        return conv_in(apply_activation(t, f))

    def second(t, f):
        return conv_out(apply_activation(t, f))

    return first, second, resnet.aux and resnet.aux.linear(dtype)

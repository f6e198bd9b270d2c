"""Shifted convolutions and gated layers evaluated a row or a pixel at a time (the fast sampler's steps).

A shifted convolution's output at row r needs its kh-1 input rows above (final once those rows are
drawn) and the current row; a down-right-shifted one's output at pixel c needs, of the current row, only
the pixel and the kw-1 to its left. RowSteps computes a whole row from the rows above; PixelSteps splits
the rows-above part (once per row) from the current-row part (once per pixel). The gated layers' steps
run GatedResnet.residual with their convolutions' steps in place of the convolutions.

The layers hand these out (`row_steps`, `pixel_steps`, `dense_steps`), with their weights prepared once
in the dtype given (the model's compute dtype): build them inside the traced function that runs the
steps, so that they read the variables there. A state (the rows above) is a nest of tensors, made by the
layer's `initial_rows`.
"""

import tensorflow as tf

from pixelsnail_tf.layers.nonlinearities import apply_activation, get_nonlinearity

# The gated layers' elementwise ops run as TensorFlow's own here, whatever the model's kernels: on one
# pixel (or row) of a batch, launching an XLA-compiled chain costs more than it saves (measured:
# docs/speed.md). The images equal the naive sampler's (tested).
ELEMENTWISE = "reference"


def _pad_columns(x, layer):
    left, right = layer.horizontal_padding
    return tf.pad(x, [[0, 0], [0, 0], [left, right], [0, 0]])


class RowSteps:
    """A shifted convolution a whole row at a time; its state is its kh-1 input rows above."""

    def __init__(self, layer, dtype):
        self.layer = layer
        self.kernel, self.bias = layer.effective_weights(dtype)

    def apply(self, rows):
        """The output row [B,1,W/stride,out] of kh input rows [B,kh,W,C] (the last one the current row)."""
        return tf.nn.bias_add(tf.nn.conv2d(_pad_columns(rows, self.layer), self.kernel, self.layer.strides,
                                           "VALID"), self.bias)

    def __call__(self, above, row):
        """row [B,1,W,C], above [B,kh-1,W,C] -> (output row [B,1,W,out], next state)."""
        rows = tf.concat([above, row], axis=1)
        return self.apply(rows), rows[:, 1:]


class PixelSteps:
    """A down-right-shifted convolution one pixel at a time.

    The rows above enter once per row (`row_start`); a pixel then needs only the kernel's last row
    applied to itself and the kw-1 inputs to its left. The row state is (those inputs [B, (kw-1)*C],
    zeros at the row start for the padding; a TensorArray of the row's inputs, for `row_end`).
    With stride s (a downsampling layer) it takes every input pixel, and its output at column c is that
    of output cell c // s, whose inputs (columns s*j-kw+1 .. s*j) are all in at c = s*j.
    """

    def __init__(self, layer, dtype):
        self.layer = layer
        self.kernel, self.bias = layer.effective_weights(dtype)
        kh, kw, channels, units = self.kernel.shape
        self.kh, self.kw, self.channels = kh, kw, channels
        self.last_row_kernel = tf.reshape(self.kernel[kh - 1], [kw * channels, units])

    def row_start(self, above):
        """The contribution of the rows above [B,kh-1,W,C] to each output of the row, [B,W/stride,out]
        (a pixel gathers its column; a TensorArray of columns would first need the row transposed)."""
        if self.kh == 1:
            return tf.zeros([tf.shape(above)[0], above.shape[2], self.kernel.shape[-1]],
                            self.kernel.dtype) + self.bias
        return tf.nn.bias_add(tf.nn.conv2d(_pad_columns(above, self.layer), self.kernel[:-1],
                                           [1, 1, self.layer.strides, 1], "VALID"), self.bias)[:, 0]

    def empty_row(self, batch, width):
        """The row state before its first pixel."""
        dtype = self.kernel.dtype
        return (tf.zeros([batch, (self.kw - 1) * self.channels], dtype),
                tf.TensorArray(dtype, size=width, element_shape=[None, self.channels]))

    def __call__(self, row, above_out, c, value):
        """value [B,C] at column c -> (output [B,out] at c, the row state with value in it)."""
        left, inputs = row
        window = tf.concat([left, value], axis=1)  # taps left to right, as the kernel's last row
        out = tf.matmul(window, self.last_row_kernel) + tf.gather(above_out, c // self.layer.strides, axis=1)
        left = value if self.kw == 2 else window[:, self.channels:]  # (the same; one op less per pixel)
        return out, (left, inputs.write(c, value))

    @staticmethod
    def row_inputs(row):
        """The inputs of a finished row, [B, W, C]."""
        return tf.transpose(row[1].stack(), [1, 0, 2])

    def row_end(self, above, row):
        """The state for the next row: the rows above with the finished row's inputs below them."""
        return tf.concat([above, self.row_inputs(row)[:, None]], axis=1)[:, 1:]


def _flat(linear):
    """A linear map of rows [N, C] applied to [B, ..., C]. (A rank-4 matmul against the kernel lets
    oneDNN's batched matmul corrupt memory, seen on TF 2.21; a matrix does not.)"""
    def apply(t):
        out = linear(tf.reshape(t, [-1, t.shape[-1]]))
        return tf.reshape(out, tf.concat([tf.shape(t)[:-1], tf.shape(out)[-1:]], axis=0))
    return apply


class GatedRowSteps:
    """A gated layer of shifted convolutions a whole row at a time; its state: the two convolutions'."""

    def __init__(self, resnet, dtype):
        self.resnet = resnet
        self.convs = resnet.conv_in.row_steps(dtype), resnet.conv_out.row_steps(dtype)
        self.aux = resnet.aux and _flat(resnet.aux.linear(dtype))

    def __call__(self, state, x, a=None, h=None):
        """Row r of x [B,1,W,C] (and of a), state from the rows above -> (output row, next state)."""
        states = list(state)

        def conv(i):
            def apply(t, f=None):
                out, states[i] = self.convs[i](states[i], apply_activation(t, f))
                return out
            return apply
        out = self.resnet.residual(x, conv(0), conv(1), self.aux, a=a, h=h, elementwise=ELEMENTWISE)
        return out, tuple(states)


class GatedPixelSteps:
    """A gated layer of down-right-shifted convolutions one pixel at a time (PixelSteps' protocol)."""

    def __init__(self, resnet, dtype):
        self.resnet = resnet
        self.convs = resnet.conv_in.pixel_steps(dtype), resnet.conv_out.pixel_steps(dtype)
        self.aux = resnet.aux and resnet.aux.linear(dtype)

    def row_start(self, state):
        return tuple(conv.row_start(s) for conv, s in zip(self.convs, state))

    def empty_row(self, batch, width):
        return tuple(conv.empty_row(batch, width) for conv in self.convs)

    def row_aux(self, a):
        """The auxiliary input's projection aux(f(a)) for a whole row, a [..., C] (known before the row's
        first pixel): one matmul of all its pixels instead of one per pixel, reading the weights once."""
        f = get_nonlinearity(self.resnet.nonlinearity, ELEMENTWISE)
        return _flat(self.aux)(f(a))

    def __call__(self, row, above_out, c, x, a=None, h=None, aux_term=None):
        """x [B,C] at column c (a, its auxiliary input there, or aux_term: row_aux's value there) ->
        (output [B,C], the row state)."""
        rows = list(row)

        def conv(i):
            def apply(t, f=None):
                out, rows[i] = self.convs[i](row[i], above_out[i], c, apply_activation(t, f))
                return out
            return apply
        out = self.resnet.residual(x, conv(0), conv(1), self.aux, a=a, h=h, elementwise=ELEMENTWISE,
                                   aux_term=aux_term)
        return out, tuple(rows)

    def row_end(self, state, row):
        return tuple(conv.row_end(s, r) for conv, s, r in zip(self.convs, state, row))


def gated_dense_steps(resnet, dtype):
    """A gated layer of 1x1 maps as a function of x [B,C] (a, h as GatedResnet.call): no state."""
    conv_in, conv_out = resnet.conv_in.linear(dtype), resnet.conv_out.linear(dtype)
    aux = resnet.aux and resnet.aux.linear(dtype)

    def first(t, f):
        return conv_in(apply_activation(t, f))

    def second(t, f):
        return conv_out(apply_activation(t, f))

    def step(x, a=None, h=None):
        return resnet.residual(x, first, second, aux, a=a, h=h, elementwise=ELEMENTWISE)
    return step

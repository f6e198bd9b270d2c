"""Weight-normalized convolution and dense layers with the original's data-dependent initialization.

Both hold V (direction, drawn from N(0, 0.05^2)), g (scale) and b (bias), created in that order, the
names and order of the original's variables. Calling a layer with `init=True` runs the
data-dependent initialization (Salimans & Kingma 2016) on that batch: it sets
g = init_scale / sqrt(var + eps) and b = -mean * g from the per-channel statistics of the output
computed with V / ||V||, leaves V as drawn, and returns the output the initialized layer computes.
"""

import keras
import tensorflow as tf

from pixelsnail_tf.layers import winograd
from pixelsnail_tf.layers.kernels import check_kernels
from pixelsnail_tf.layers.nonlinearities import apply_activation


class _WeightNorm(keras.layers.Layer):
    """Shared by the weight-normalized layers: variables, init and config."""

    # Which counter the original uses for this layer's variable scope (`conv2d_<k>` / `dense_<k>`).
    tf1_scope = None
    # Epsilon added to the variance in the data-dependent init (the original: 1e-8 conv, 1e-10 dense).
    init_epsilon = None

    def __init__(self, units, init_scale=1.0, **kwargs):
        kwargs.setdefault("autocast", False)  # computes in its input's dtype (see `call`)
        super().__init__(**kwargs)
        self.units = int(units)
        self.init_scale = float(init_scale)

    def _kernel_shape(self, input_channels):
        raise NotImplementedError

    def build(self, input_shape):
        self.V = self.add_weight(
            name="V", shape=self._kernel_shape(int(input_shape[-1])),
            initializer=keras.initializers.RandomNormal(stddev=0.05))
        self.g = self.add_weight(name="g", shape=(self.units,), initializer="ones")
        self.b = self.add_weight(name="b", shape=(self.units,), initializer="zeros")

    def _data_dependent_init(self, t):
        """Sets g and b from the statistics of t (output with unit-norm V), returns the new output."""
        axes = list(range(len(t.shape) - 1))
        mean, variance = tf.nn.moments(t, axes=axes)  # biased variance, as the original
        scale = self.init_scale / tf.sqrt(variance + self.init_epsilon)
        self.g.assign(scale)
        self.b.assign(-mean * scale)
        return scale * (t - mean)

    def get_config(self):
        config = super().get_config()
        config.update(units=self.units, init_scale=self.init_scale)
        return config


@keras.saving.register_keras_serializable(package="pixelsnail_tf")
class WeightNormConv2D(_WeightNorm):
    """conv2d with W = g * V / ||V|| (norm over kh, kw, in per output channel).

    `padding` is VALID or SAME; the causal convolutions subclass this and pad the input themselves.
    `strides` 2 halves the resolution (the PixelCNN++ variant's downsampling layers).
    `kernels="fast"` computes stride-1 VALID convolutions with 2x2, 2x3, 3x2 or 3x3 kernels by
    Winograd F(2x2, k) (`winograd.py`: the same sums in fewer multiplies); "reference" (and any
    other kernel size or stride) uses tf.nn.conv2d, as the original.
    """

    tf1_scope = "conv2d"
    init_epsilon = 1e-8

    def __init__(self, filters, kernel_size, init_scale=1.0, padding="VALID", strides=1,
                 kernels="fast", **kwargs):
        super().__init__(filters, init_scale=init_scale, **kwargs)
        self.kernels = check_kernels(kernels)
        self.kernel_size = tuple(int(k) for k in kernel_size)
        self.padding = padding.upper()
        self.strides = int(strides)
        self._winograd = (kernels == "fast" and self.padding == "VALID" and self.strides == 1
                          and self.kernel_size in winograd.SUPPORTED_KERNEL_SIZES)

    def _kernel_shape(self, input_channels):
        return self.kernel_size + (input_channels, self.units)

    @property
    def spatial_padding(self):
        """((top, bottom), (left, right)): zeros padded around the input before the convolution."""
        return (0, 0), (0, 0)

    def _direction(self):
        # tf.nn.l2_normalize: V / sqrt(max(sum V^2, 1e-12)), the original's normalization.
        return tf.nn.l2_normalize(self.V, axis=[0, 1, 2])

    def effective_weights(self, dtype=tf.float32):
        """(kernel [kh,kw,in,out], bias): the weights the convolution applies, g * V / ||V|| and b,
        normalized in float32, then cast to `dtype` (bfloat16 under mixed precision)."""
        return tf.cast(self.g * self._direction(), dtype), tf.cast(self.b, dtype)

    def call(self, x, init=False, activation=None):
        """The convolution of activation(x). `activation`: None or an elementwise function; the
        Winograd path computes an XLA-fused one (layers/kernels.py) in its input transform, along
        with the padding, in one pass over x."""
        if self._winograd and not init:
            return winograd.winograd_conv2d(x, *self.effective_weights(), self.spatial_padding,
                                            getattr(activation, "fn", activation))
        x = apply_activation(x, activation)
        if any(any(pair) for pair in self.spatial_padding):
            x = tf.pad(x, [(0, 0), *self.spatial_padding, (0, 0)])
        if init:
            return self._data_dependent_init(
                tf.nn.conv2d(x, self._direction(), self.strides, self.padding))
        kernel, bias = self.effective_weights(x.dtype)
        return tf.nn.bias_add(tf.nn.conv2d(x, kernel, self.strides, self.padding), bias)

    def get_config(self):
        config = super().get_config()
        config.pop("units")
        config.update(filters=self.units, kernel_size=self.kernel_size, padding=self.padding,
                      strides=self.strides, kernels=self.kernels)
        return config


@keras.saving.register_keras_serializable(package="pixelsnail_tf")
class WeightNormConv2DTranspose(_WeightNorm):
    """VALID transposed convolution with W = g * V / ||V||; V is [kh, kw, out, in], normalized per
    output channel over (kh, kw, in), as the original's `deconv2d`.

    With stride s an [H, W] input gives [s*H + kh - 1, s*W + kw - 1]: every input pixel spreads
    over a kh x kw patch. The shifted subclasses crop that to [s*H, s*W]; the data-dependent init
    takes its statistics over the whole uncropped output, as the original.
    """

    tf1_scope = "deconv2d"
    init_epsilon = 1e-8

    def __init__(self, filters, kernel_size, strides=2, init_scale=1.0, **kwargs):
        super().__init__(filters, init_scale=init_scale, **kwargs)
        self.kernel_size = tuple(int(k) for k in kernel_size)
        self.strides = int(strides)

    def _kernel_shape(self, input_channels):
        return self.kernel_size + (self.units, input_channels)

    def _direction(self):
        return tf.nn.l2_normalize(self.V, axis=[0, 1, 3])

    def effective_weights(self, dtype=tf.float32):
        """(kernel [kh,kw,out,in], bias), normalized in float32, then cast to `dtype`."""
        return tf.cast(self.g[:, None] * self._direction(), dtype), tf.cast(self.b, dtype)

    def call(self, x, init=False):
        (kh, kw), s = self.kernel_size, self.strides
        shape = tf.shape(x)
        output_shape = tf.stack([shape[0], shape[1] * s + kh - 1, shape[2] * s + kw - 1, self.units])
        if init:
            return self._data_dependent_init(
                tf.nn.conv2d_transpose(x, self._direction(), output_shape, s, "VALID"))
        kernel, bias = self.effective_weights(x.dtype)
        return tf.nn.bias_add(tf.nn.conv2d_transpose(x, kernel, output_shape, s, "VALID"), bias)

    def get_config(self):
        config = super().get_config()
        config.pop("units")
        config.update(filters=self.units, kernel_size=self.kernel_size, strides=self.strides)
        return config


@keras.saving.register_keras_serializable(package="pixelsnail_tf")
class WeightNormDense(_WeightNorm):
    """Dense layer on the last axis ("nin": a 1x1 convolution on images).

    y = (x V) * g / ||V|| + b with ||V|| over the input axis, scaled after the matmul as the original.
    """

    tf1_scope = "dense"
    init_epsilon = 1e-10

    def _kernel_shape(self, input_channels):
        return (input_channels, self.units)

    def scale(self):
        """g / ||V||, per output: the layer computes (x V) * scale + b, scaling after the matmul."""
        return self.g / tf.sqrt(tf.reduce_sum(tf.square(self.V), axis=0))

    def linear(self, dtype=tf.float32):
        """The layer as a function of rows [N, in] of `dtype`, its weights prepared once."""
        if tf.as_dtype(dtype) == tf.float32:
            kernel, scale, bias = tf.convert_to_tensor(self.V), self.scale(), tf.convert_to_tensor(self.b)
            return lambda rows: tf.matmul(rows, kernel) * scale + bias
        # Lower precision (bfloat16): the scale folded into the kernel in float32, so that the matmul
        # and the bias fuse into one op; that rounding is far below bfloat16's.
        kernel, bias = tf.cast(self.V * self.scale(), dtype), tf.cast(self.b, dtype)
        return lambda rows: tf.nn.bias_add(tf.matmul(rows, kernel), bias)

    def call(self, x, init=False, activation=None):
        """The layer applied to activation(x) (activation: None or an elementwise function)."""
        x = apply_activation(x, activation)
        leading = tf.shape(x)[:-1]
        rows = tf.reshape(x, [-1, x.shape[-1]])
        if init:
            out = self._data_dependent_init(tf.matmul(rows, tf.nn.l2_normalize(self.V, axis=0)))
        else:
            out = self.linear(x.dtype)(rows)
        return tf.reshape(out, tf.concat([leading, [self.units]], axis=0))

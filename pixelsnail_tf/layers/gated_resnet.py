"""The gated residual layer of PixelCNN++ / PixelSNAIL."""

import keras
import tensorflow as tf

from pixelsnail_tf.layers.nonlinearities import get_nonlinearity
from pixelsnail_tf.layers.shifts import DownRightShiftedConv2D, DownShiftedConv2D
from pixelsnail_tf.layers.weight_norm import WeightNormDense

CONVOLUTIONS = {
    "down_shifted": DownShiftedConv2D,
    "down_right_shifted": DownRightShiftedConv2D,
    "nin": WeightNormDense,
}

# The second convolution starts small so that each residual layer begins close to the identity.
SECOND_CONV_INIT_SCALE = 0.1


@keras.saving.register_keras_serializable(package="pixelsnail_tf")
class GatedResnet(keras.layers.Layer):
    """x + value * sigmoid(gate), where [value, gate] = conv(dropout(f(conv(f(x)) + nin(f(a))))) + h W.

    Keeps the channel count C of x. `a` is an optional auxiliary input (a 1x1 projection of f(a) is
    added after the first convolution); `h` an optional conditioning vector [batch, K] (a learned
    [K, 2C] matrix, not weight-normalized, N(0, 0.05^2), adds h W to every pixel before the gate).
    Dropout (inverted, rate `dropout_p`) acts when `training` is true, the data-dependent init
    pass included, as in the original.
    """

    def __init__(self, conv="down_right_shifted", nonlinearity="elu", dropout_p=0.0, **kwargs):
        super().__init__(**kwargs)
        if conv not in CONVOLUTIONS:
            raise ValueError(f"unknown conv {conv!r}; choose one of {', '.join(CONVOLUTIONS)}")
        self.conv = conv
        self.nonlinearity = nonlinearity
        self.dropout_p = float(dropout_p)
        self._f = get_nonlinearity(nonlinearity)

    def build(self, x_shape, a_shape=None, h_shape=None):
        channels = int(x_shape[-1])
        conv = CONVOLUTIONS[self.conv]
        # Created in the original's order: first conv, auxiliary projection, second conv.
        self.conv_in = conv(channels, name="conv_in")
        self.aux = WeightNormDense(channels, name="aux") if a_shape is not None else None
        self.conv_out = conv(2 * channels, init_scale=SECOND_CONV_INIT_SCALE, name="conv_out")
        self.dropout = keras.layers.Dropout(self.dropout_p) if self.dropout_p > 0 else None
        self.hw = None
        if h_shape is not None:
            self.hw = self.add_weight(
                name="hw", shape=(int(h_shape[-1]), 2 * channels),
                initializer=keras.initializers.RandomNormal(stddev=0.05))

    def weight_norm_layers(self):
        """The weight-normalized sublayers in the original's creation order."""
        return [layer for layer in (self.conv_in, self.aux, self.conv_out) if layer is not None]

    def call(self, x, a=None, h=None, training=False, init=False):
        f = self._f
        c = self.conv_in(f(x), init=init)
        if a is not None:
            c = c + self.aux(f(a), init=init)
        c = f(c)
        if self.dropout is not None:
            c = self.dropout(c, training=training)
        c = self.conv_out(c, init=init)
        if h is not None:
            c = c + tf.matmul(h, self.hw)[:, None, None, :]
        value, gate = tf.split(c, 2, axis=-1)
        return x + value * tf.sigmoid(gate)

    def get_config(self):
        config = super().get_config()
        config.update(conv=self.conv, nonlinearity=self.nonlinearity, dropout_p=self.dropout_p)
        return config

"""The gated residual layer of PixelCNN++ / PixelSNAIL."""

import keras
import tensorflow as tf

from pixelsnail_tf.layers.incremental import GatedPixelSteps, GatedRowSteps, gated_dense_steps
from pixelsnail_tf.layers.kernels import check_kernels, xla_fused
from pixelsnail_tf.layers.nonlinearities import activated_channels, get_nonlinearity
from pixelsnail_tf.layers.shifts import DownRightShiftedConv2D, DownShiftedConv2D
from pixelsnail_tf.layers.weight_norm import WeightNormDense

CONVOLUTIONS = {
    "down_shifted": DownShiftedConv2D,
    "down_right_shifted": DownRightShiftedConv2D,
    "nin": WeightNormDense,
}

# The second convolution starts small so that each residual layer begins close to the identity.
SECOND_CONV_INIT_SCALE = 0.1


def gated_sum(x, c):
    """x + value * sigmoid(gate) for [value, gate] = c (split along channels)."""
    value, gate = tf.split(c, 2, axis=-1)
    return x + value * tf.sigmoid(gate)


GATED_SUM = {"reference": gated_sum, "fast": xla_fused(gated_sum)}


@keras.saving.register_keras_serializable(package="pixelsnail_tf")
class GatedResnet(keras.layers.Layer):
    """x + value * sigmoid(gate), where [value, gate] = conv(dropout(f(conv(f(x)) + nin(f(a))))) + h W.

    Keeps the channel count C of x. `a` is an optional auxiliary input (a 1x1 projection of f(a) is
    added after the first convolution); `h` an optional conditioning vector [batch, K] (a learned
    [K, 2C] matrix, not weight-normalized, N(0, 0.05^2), adds h W to every pixel before the gate).
    Dropout (inverted, rate `dropout_p`) acts when `training` is true, the data-dependent init
    pass included, as in the original. Its mask is a function of `dropout_seed` (int [2]) when one
    is given (the Trainer derives it from the run's seed, the step and the replica, so that a resumed
    run draws the masks of an uninterrupted one), else of the layer's own Keras seed generator.
    `kernels` (layers/kernels.py): "fast" (Winograd convolutions, XLA-fused nonlinearities and gate)
    or "reference" (TensorFlow's own ops, as the original).
    """

    def __init__(self, conv="down_right_shifted", nonlinearity="elu", dropout_p=0.0,
                 kernels="fast", **kwargs):
        kwargs.setdefault("autocast", False)  # computes in its input's dtype
        super().__init__(**kwargs)
        if conv not in CONVOLUTIONS:
            raise ValueError(f"unknown conv {conv!r}; choose one of {', '.join(CONVOLUTIONS)}")
        self.conv = conv
        self.nonlinearity = nonlinearity
        self.dropout_p = float(dropout_p)
        self.kernels = check_kernels(kernels)
        get_nonlinearity(nonlinearity)  # checks the name

    def build(self, x_shape, a_shape=None, h_shape=None):
        channels = int(x_shape[-1])
        conv = CONVOLUTIONS[self.conv]
        options = {} if conv is WeightNormDense else {"kernels": self.kernels}
        # Created in the original's order: first conv, auxiliary projection, second conv.
        self.conv_in = conv(channels, name="conv_in", **options)
        self.aux = WeightNormDense(channels, name="aux") if a_shape is not None else None
        self.conv_out = conv(2 * channels, init_scale=SECOND_CONV_INIT_SCALE, name="conv_out",
                             **options)
        self.seed_generator = keras.random.SeedGenerator() if self.dropout_p > 0 else None
        self.hw = None
        if h_shape is not None:
            self.hw = self.add_weight(
                name="hw", shape=(int(h_shape[-1]), 2 * channels),
                initializer=keras.initializers.RandomNormal(stddev=0.05))
        # Built here, not on their first call: they are called on inputs before the nonlinearity,
        # which may change the channel count (concat_elu doubles it).
        activated = activated_channels(self.nonlinearity, channels)
        self.conv_in.build((None, activated))
        if self.aux is not None:
            self.aux.build((None, activated_channels(self.nonlinearity, int(a_shape[-1]))))
        self.conv_out.build((None, activated))

    def weight_norm_layers(self):
        """The weight-normalized sublayers in the original's creation order."""
        return [layer for layer in (self.conv_in, self.aux, self.conv_out) if layer is not None]

    def call(self, x, a=None, h=None, training=False, init=False, dropout_seed=None):
        return self.residual(
            x, lambda t, f: self.conv_in(t, init=init, activation=f),
            lambda t, f: self.conv_out(t, init=init, activation=f),
            lambda t: self.aux(t, init=init), a=a, h=h, training=training, dropout_seed=dropout_seed)

    def residual(self, x, conv_in, conv_out, aux=None, a=None, h=None, training=False,
                 elementwise=None, dropout_seed=None, aux_term=None):
        """The layer's math with its linear maps given as functions: conv_in(t, f) and
        conv_out(t, f) convolve f(t) (f is the nonlinearity, or None: t itself; a Winograd
        convolution computes f in its input transform), aux(t) projects t. aux_term: aux(f(a))
        computed already, in place of aux and a (the fast sampler projects a whole row at once).

        `call` passes the sublayers themselves; the cached sampler passes their one-pixel and
        one-row versions, on x of any rank [B, ..., C], with elementwise="reference": on a few
        pixels, launching a compiled chain costs more than its separate ops. The default is the
        layer's `kernels`.
        """
        kernels = elementwise or self.kernels
        f = get_nonlinearity(self.nonlinearity, kernels)
        c = conv_in(x, f)
        if aux_term is not None:
            c = c + aux_term
        elif a is not None:
            c = c + aux(f(a))
        if self.dropout_p > 0 and training:  # dropout comes between f and the convolution
            c = conv_out(self._dropout(f(c), dropout_seed), None)
        else:
            c = conv_out(c, f)
        if h is not None:
            conditioning = tf.matmul(tf.cast(h, c.dtype), tf.cast(self.hw, c.dtype))
            for _ in range(len(c.shape) - 2):
                conditioning = conditioning[:, None]  # [B, 2C] -> [B, 1, ..., 1, 2C]
            c = c + conditioning
        return GATED_SUM[kernels](x, c)

    # Steps for the fast sampler (layers/incremental.py), inference only, weights prepared in `dtype`.

    def initial_rows(self, batch, width, dtype):
        """The state of its row or pixel steps before row 0: its convolutions' rows above."""
        return self.conv_in.initial_rows(batch, width, dtype), self.conv_out.initial_rows(batch, width, dtype)

    def row_steps(self, dtype):
        """A shifted layer a row at a time: (state, x row, a, h) -> (output row, state)."""
        return GatedRowSteps(self, dtype)

    def pixel_steps(self, dtype):
        """A down-right-shifted layer a pixel at a time (row_start, empty_row, step, row_end)."""
        return GatedPixelSteps(self, dtype)

    def dense_steps(self, dtype):
        """A 1x1 ("nin") layer on single pixels: (x [B,C], a, h) -> [B,C], no state."""
        return gated_dense_steps(self, dtype)

    def _dropout(self, t, seed):
        if seed is None:
            return keras.random.dropout(t, self.dropout_p, seed=self.seed_generator)
        return tf.nn.experimental.stateless_dropout(t, self.dropout_p, seed)

    def get_config(self):
        config = super().get_config()
        config.update(conv=self.conv, nonlinearity=self.nonlinearity, dropout_p=self.dropout_p,
                      kernels=self.kernels)
        return config

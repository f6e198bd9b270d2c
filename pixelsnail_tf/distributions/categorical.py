"""Integer code maps [B,H,W] in [0, K), e.g. a VQ-VAE's: the network reads a learned embedding of each
code (nr_filters channels); each position is a K-way softmax over the codes (the network's K logits)."""

import keras
import numpy as np
import tensorflow as tf

from pixelsnail_tf import images as image_checks
from pixelsnail_tf.distributions.base import uniform_noise


class Categorical:
    """Integer codes in [0, num_codes); per code a softmax over the codes (a VQ-VAE prior)."""

    name = "categorical"
    data = "codes"
    stored_dtype = tf.int32
    value_dtype = tf.int32
    value_shape = ()
    dims = 1

    def __init__(self, config):
        self.num_codes = config.num_codes
        self.parameters = self.num_codes
        self.input_channels = config.nr_filters
        self.noise_shapes = {"u_codes": (self.num_codes,)}

    def input_layer(self):
        # float32 weights and lookup (cast to the compute dtype after), as every weight of the model
        return keras.layers.Embedding(self.num_codes, self.input_channels, dtype="float32", name="embedding")

    def check(self, data):
        """int32 codes [B,H,W] of integer codes in [0, num_codes); values checked when concrete."""
        if not tf.is_tensor(data):
            data = np.asarray(data)
        dtype, shape = tf.as_dtype(data.dtype), tuple(data.shape)
        if len(shape) != 3 or not dtype.is_integer:
            raise ValueError(f"codes must be integers of shape [batch, height, width], got {dtype.name} of "
                             f"shape {shape}")
        if image_checks.is_concrete(data):
            self._check_range(np.asarray(data), "codes")
        return tf.cast(data, tf.int32)

    def check_array(self, array, where):
        if array.dtype.kind not in "iu" or len(array.shape) != 3:
            raise ValueError(f"{where} must hold integer codes of shape [N, H, W], got {array.dtype} of "
                             f"shape {tuple(array.shape)}")
        self._check_range(np.asarray(array), where)

    def _check_range(self, values, where):
        if values.size and (values.min() < 0 or values.max() >= self.num_codes):
            raise ValueError(f"{where}: codes must lie in [0, {self.num_codes}) (--num_codes), got values in "
                             f"[{values.min()}, {values.max()}]")

    def checked(self, stored):
        # The embedding would fail (CPU) or read zeros (GPU) on another code. The codes come out of a
        # cond whose other branch fails: a data dependency, so nothing reads them before the check (a
        # control dependency let the embedding's own error come first in some runs).
        message = f"codes must lie in [0, {self.num_codes})"
        in_range = tf.logical_and(tf.reduce_all(stored >= 0), tf.reduce_all(stored < self.num_codes))

        def fail():
            with tf.control_dependencies([tf.debugging.Assert(False, [message])]):
                return tf.identity(stored)

        return tf.cond(in_range, lambda: tf.identity(stored), fail)

    def from_stored(self, stored):
        return tf.cast(stored, tf.int32)

    def to_stored(self, values):
        return tf.cast(values, tf.int32)

    def pictures(self, stored):
        """Codes as grey levels (0 black, num_codes - 1 white), uint8 [N,H,W,3]."""
        grey = np.round(np.asarray(stored, np.float64) * 255.0 / (self.num_codes - 1)).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=-1)

    def log_prob(self, values, params):
        """log softmax(params)[code] of each position [B,H,W]."""
        return -tf.nn.sparse_softmax_cross_entropy_with_logits(labels=values, logits=params)

    def noise(self, count, height, width, seed, start=0):
        (shape,) = self.noise_shapes.values()
        return (uniform_noise([count, height, width, *shape], seed, start),)

    def draw(self, params, noise, quantize=True):
        """Codes [B] drawn by the Gumbel-max trick from logits [B,K] and uniforms [B,K]."""
        (u,) = noise
        return tf.argmax(params - tf.math.log(-tf.math.log(u)), axis=-1, output_type=tf.int32)

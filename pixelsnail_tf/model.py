"""PixelSNAIL: causal convolutions interleaved with causal self-attention (Chen et al. 2017).

    x [B,H,W,3] in [-1,1]
    stem:   ul = down_shift(conv_1x3(x_pad)) + right_shift(conv_2x1(x_pad))     (u stream: `model` only)
    blocks: nr_resnet x gated residual layers (2x2 down-right-shifted convs)
            -> attention block (keys/values from [x, ul, background], strictly causal mask)
    head:   nin(elu(ul)) -> 10*M parameters of a discretized mixture of M logistics per pixel

x_pad = [x, 1] carries a ones channel so the convolutions tell the image from its zero padding.
"""

import keras
import tensorflow as tf

from pixelsnail_tf import images as image_checks
from pixelsnail_tf.config import ModelConfig
from pixelsnail_tf.layers.attention import CausalAttentionBlock
from pixelsnail_tf.layers.gated_resnet import GatedResnet
from pixelsnail_tf.layers.kernels import check_kernels
from pixelsnail_tf.layers.shifts import (DownRightShiftedConv2D, DownShiftedConv2D, down_shift,
                                         right_shift)
from pixelsnail_tf.layers.weight_norm import WeightNormDense
from pixelsnail_tf.logistic_mixture import bits_per_dim, discretized_mix_logistic_log_prob


@keras.saving.register_keras_serializable(package="pixelsnail_tf")
class PixelSNAIL(keras.Model):
    """The PixelSNAIL model family of the original code, one class for every supported variant.

    Call it on float32 images in [-1, 1] to get the mixture parameters [B,H,W,10*M] (float32).
    `log_prob` / `bits_per_dim` take uint8 [0,255] or float32 [-1,1] images and check them.
    `initialize(images)` runs the original's data-dependent initialization once.

    `dtype="mixed_bfloat16"` (a Keras dtype policy): the layers compute in bfloat16 from float32
    weights (normalized in float32, then cast); the attention softmax, the output layer, the mixture
    and the data-dependent init stay float32. Checkpoints do not depend on it.

    `kernels="fast"` (default) computes the 2x2 and 2x3 causal convolutions by Winograd F(2x2, k) and
    fuses the gated layers' elementwise chains with XLA (layers/kernels.py: the same math, ~1.25x
    faster on CPU); "reference" uses TensorFlow's own ops, as the original. Checkpoints do not
    depend on it either.
    """

    def __init__(self, config=None, kernels="fast", **kwargs):
        kwargs.setdefault("autocast", False)  # the compute dtype is applied in `call`, explicitly
        super().__init__(**kwargs)
        if isinstance(config, dict):
            config = ModelConfig(**config)
        self.config = config or ModelConfig()
        c = self.config
        self.kernels = check_kernels(kernels)
        conv = dict(kernels=kernels)
        resnet = dict(nonlinearity=c.resnet_nonlinearity, dropout_p=c.dropout_p, kernels=kernels)
        vertical = c.variant.vertical_stream
        # Layers are created in the original's order (see weight_norm_layers).
        self.u_stem = (DownShiftedConv2D(c.nr_filters, (2, 3), name="u_stem", **conv) if vertical
                       else None)
        self.ul_stem_down = DownShiftedConv2D(c.nr_filters, (1, 3), name="ul_stem_down", **conv)
        self.ul_stem_right = DownRightShiftedConv2D(c.nr_filters, (2, 1), name="ul_stem_right", **conv)
        self.u_resnets, self.ul_resnets, self.attention = [], [], []
        for b in range(c.num_blocks):
            self.u_resnets.append([GatedResnet("down_shifted", name=f"u_resnet_{b}_{r}", **resnet)
                                   for r in range(c.nr_resnet)] if vertical else [])
            self.ul_resnets.append([GatedResnet("down_right_shifted", name=f"ul_resnet_{b}_{r}",
                                                **resnet) for r in range(c.nr_resnet)])
            self.attention.append(CausalAttentionBlock(
                c.key_size, c.value_size, c.variant.att_downsample, name=f"attention_{b}", **resnet))
        self.head = WeightNormDense(10 * c.nr_logistic_mix, name="head")
        self._log_prob_fn = tf.function(self._log_prob_float)  # one trace per image shape

    def weight_norm_layers(self):
        """All weight-normalized layers in the original's creation order (its variable order)."""
        layers = [self.u_stem] if self.u_stem is not None else []
        layers += [self.ul_stem_down, self.ul_stem_right]
        for u_resnets, ul_resnets, attention in zip(self.u_resnets, self.ul_resnets, self.attention):
            for r, ul_resnet in enumerate(ul_resnets):
                if u_resnets:
                    layers += u_resnets[r].weight_norm_layers()
                layers += ul_resnet.weight_norm_layers()
            layers += attention.weight_norm_layers()
        return layers + [self.head]

    def build(self, input_shape):
        # All weights are independent of the image size: one pass on a tiny image creates them.
        if not self.built:
            with tf.init_scope():
                labels = tf.zeros([1], tf.int32) if self.config.num_classes else None
                self.call(tf.zeros([1, 2, 2, 3]), labels)
        self.built = True

    def call(self, x, labels=None, training=False, init=False, dropout_seed=None):
        """Mixture parameters [B,H,W,10*nr_logistic_mix] of images x in [-1, 1]. With `training`,
        dropout (dropout_seed: int [2], the masks' seed; None: the layers' own seed generators)."""
        c = self.config
        x = tf.cast(x, tf.float32 if init else self.compute_dtype)
        h = tf.one_hot(labels, c.num_classes, dtype=x.dtype) if c.num_classes else None
        ones = tf.ones_like(x[..., :1])
        x_pad = tf.concat([x, ones], axis=-1)
        ul = (down_shift(self.ul_stem_down(x_pad, init=init))
              + right_shift(self.ul_stem_right(x_pad, init=init)))
        u = down_shift(self.u_stem(x_pad, init=init)) if self.u_stem is not None else None
        gated = dict(h=h, training=training, init=init)
        seeds = _SeedsPerLayer(dropout_seed)
        for u_resnets, ul_resnets, attention in zip(self.u_resnets, self.ul_resnets, self.attention):
            for r, ul_resnet in enumerate(ul_resnets):
                if u_resnets:
                    u = u_resnets[r](u, dropout_seed=seeds.next(), **gated)
                ul = ul_resnet(ul, a=u, dropout_seed=seeds.next(), **gated)
            ul = attention(ul, x, dropout_seed=seeds.next(), **gated)
        return self.head(tf.cast(tf.nn.elu(ul), tf.float32), init=init)  # mixture parameters in float32

    def initialize(self, images, labels=None, dropout_seed=None):
        """The original's data-dependent init on one batch: sets every g and b, keeps V as drawn.

        Dropout is active during this pass when dropout_p > 0, as in the original.
        Returns the mixture parameters of that pass (equal to the initialized model's output).
        """
        x = image_checks.check_images(images)
        labels = image_checks.check_labels(labels, x.shape[0], self.config.num_classes)
        self.build(x.shape)
        return self.call(x, labels, training=self.config.dropout_p > 0, init=True,
                         dropout_seed=dropout_seed)

    def _log_prob_float(self, x, labels):
        return discretized_mix_logistic_log_prob(x, self(x, labels))

    def log_prob(self, images, labels=None):
        """Per-image log-likelihood in nats [B] of uint8 [0,255] or float32 [-1,1] images."""
        x = image_checks.check_images(images)
        labels = image_checks.check_labels(labels, x.shape[0], self.config.num_classes)
        return self._log_prob_fn(x, labels)

    def bits_per_dim(self, images, labels=None):
        """Per-image bits per sub-pixel [B] (negative log2-likelihood / (H*W*3))."""
        x = image_checks.check_images(images)
        return bits_per_dim(self.log_prob(x, labels), x.shape[1] * x.shape[2] * 3)

    def get_config(self):
        return {"config": self.config.to_dict(), "name": self.name, "dtype": self.dtype_policy.name,
                "kernels": self.kernels}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class _SeedsPerLayer:
    """Seeds of the layers in call order, each folded from one model seed (None: all None)."""

    def __init__(self, seed):
        self.seed, self.index = seed, 0

    def next(self):
        if self.seed is None:
            return None
        self.index += 1
        return tf.random.experimental.stateless_fold_in(self.seed, self.index)

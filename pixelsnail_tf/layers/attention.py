"""The attention block of PixelSNAIL (its math: causal_attention.py; its steps: attention_steps.py)."""

import keras
import tensorflow as tf

from pixelsnail_tf.layers.attention_steps import AttentionPixelSteps, initial_cache
from pixelsnail_tf.layers.causal_attention import causal_attention, positional_background
from pixelsnail_tf.layers.gated_resnet import GatedResnet
from pixelsnail_tf.layers.weight_norm import WeightNormDense


class CausalAttentionBlock(keras.layers.Layer):
    """The attention block of the PixelSNAIL models (the original's `_base_noup_smallkey_spec` family).

    keys/values from a gated 1x1 layer on [x, ul, background], queries from one on [ul, background];
    the attention result enters a last gated 1x1 layer on ul as its auxiliary input. `kernels` goes
    to the gated layers (layers/kernels.py).
    x is the current image itself (unshifted): legal because the mask is strict.
    """

    def __init__(self, key_size, value_size, downsample=1, nonlinearity="elu", dropout_p=0.0,
                 kernels="fast", **kwargs):
        kwargs.setdefault("autocast", False)  # computes in its input's dtype
        super().__init__(**kwargs)
        self.key_size = int(key_size)
        self.value_size = int(value_size)
        self.downsample = int(downsample)
        self.nonlinearity = nonlinearity
        self.dropout_p = float(dropout_p)
        self.kernels = kernels
        gated = dict(conv="nin", nonlinearity=nonlinearity, dropout_p=dropout_p, kernels=kernels)
        # Created in the original's order.
        self.kv_resnet = GatedResnet(name="kv_resnet", **gated)
        self.kv_projection = WeightNormDense(self.key_size + self.value_size, name="kv_projection")
        self.query_resnet = GatedResnet(name="query_resnet", **gated)
        self.query_projection = WeightNormDense(self.key_size, name="query_projection")
        self.out_resnet = GatedResnet(name="out_resnet", **gated)

    def build(self, ul_shape, x_shape=None, h_shape=None):
        pass  # sublayers build on first call from their input shapes

    def weight_norm_layers(self):
        return (self.kv_resnet.weight_norm_layers() + [self.kv_projection]
                + self.query_resnet.weight_norm_layers() + [self.query_projection]
                + self.out_resnet.weight_norm_layers())

    def call(self, ul, x, h=None, training=False, init=False, dropout_seed=None):
        background = positional_background(ul)
        gated = dict(h=h, training=training, init=init)
        seeds = ([None] * 3 if dropout_seed is None
                 else tf.unstack(tf.random.experimental.stateless_split(dropout_seed, 3)))
        kv = self.kv_projection(self.kv_resnet(tf.concat([x, ul, background], axis=-1),
                                               dropout_seed=seeds[0], **gated), init=init)
        key, value = kv[..., :self.key_size], kv[..., self.key_size:]
        query = self.query_projection(self.query_resnet(tf.concat([ul, background], axis=-1),
                                                        dropout_seed=seeds[1], **gated), init=init)
        mixed = causal_attention(key, value, query, self.downsample)
        return self.out_resnet(ul, a=mixed, dropout_seed=seeds[2], **gated)

    def initial_cache(self, batch, height, width, dtype):
        """The cache of its pixel steps before row 0 (values in `dtype`, the dtype it computes in)."""
        return initial_cache(self, batch, height, width, dtype)

    def pixel_steps(self, height, width, dtype):
        """The block a pixel at a time from its cache (attention_steps.py), weights prepared in `dtype`."""
        return AttentionPixelSteps(self, height, width, dtype)

    def get_config(self):
        config = super().get_config()
        config.update(key_size=self.key_size, value_size=self.value_size,
                      downsample=self.downsample, nonlinearity=self.nonlinearity,
                      dropout_p=self.dropout_p, kernels=self.kernels)
        return config

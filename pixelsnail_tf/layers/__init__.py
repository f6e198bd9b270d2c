"""Keras 3 layers of PixelSNAIL, each usable on its own."""

from pixelsnail_tf.layers.attention import CausalAttentionBlock
from pixelsnail_tf.layers.causal_attention import causal_attention, causal_mask
from pixelsnail_tf.layers.gated_resnet import GatedResnet
from pixelsnail_tf.layers.nonlinearities import concat_elu
from pixelsnail_tf.layers.shifts import (DownRightShiftedConv2D, DownRightShiftedConv2DTranspose,
                                         DownShift, DownShiftedConv2D, DownShiftedConv2DTranspose,
                                         RightShift, down_shift, right_shift)
from pixelsnail_tf.layers.weight_norm import (WeightNormConv2D, WeightNormConv2DTranspose,
                                              WeightNormDense)

__all__ = ["CausalAttentionBlock", "causal_attention", "causal_mask", "GatedResnet", "concat_elu",
           "DownRightShiftedConv2D", "DownRightShiftedConv2DTranspose", "DownShift",
           "DownShiftedConv2D", "DownShiftedConv2DTranspose", "RightShift", "down_shift",
           "right_shift", "WeightNormConv2D", "WeightNormConv2DTranspose", "WeightNormDense"]

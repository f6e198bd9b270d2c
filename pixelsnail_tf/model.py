"""PixelSNAIL: causal convolutions interleaved with causal self-attention (Chen et al. 2017).

    x [B,H,W,3] in [-1,1], x_pad = [x, 1]
    stem:   ul = down_shift(conv_1x3(x_pad)) + right_shift(conv_2x1(x_pad))     (u stream: `model` only)
    blocks: nr_resnet x gated residual layers (2x2 down-right-shifted convs)
            -> attention block (keys/values from [x, ul, background], strictly causal mask)
    head:   nin(elu(ul)) -> 10*M parameters of a discretized mixture of M logistics per pixel

`build_model(config)` builds any variant of the original: this class, or PixelCNNPP (pixelcnn_pp.py).
"""

import keras

from pixelsnail_tf import hardware
from pixelsnail_tf.config import ModelConfig
from pixelsnail_tf.image_model import ImageModel
from pixelsnail_tf.layers.attention import CausalAttentionBlock
from pixelsnail_tf.layers.gated_resnet import GatedResnet
from pixelsnail_tf.layers.shifts import (DownRightShiftedConv2D, DownShiftedConv2D, down_shift,
                                         right_shift)
from pixelsnail_tf.pixelcnn_pp import PixelCNNPP
from pixelsnail_tf.pixelsnail_steps import PixelSNAILSteps


@keras.saving.register_keras_serializable(package="pixelsnail_tf")
class PixelSNAIL(ImageModel):
    """The attention models of the original (every `--model` but pxpp); see ImageModel for the API."""

    architecture = "pixelsnail"
    default_model = "h12_noup_smallkey"
    steps_class = PixelSNAILSteps

    def __init__(self, config=None, kernels="fast", **kwargs):
        super().__init__(config, kernels, **kwargs)
        c = self.config
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
        self.head = self._make_head()

    def weight_norm_layers(self):
        layers = [self.u_stem] if self.u_stem is not None else []
        layers += [self.ul_stem_down, self.ul_stem_right]
        for u_resnets, ul_resnets, attention in zip(self.u_resnets, self.ul_resnets, self.attention):
            for r, ul_resnet in enumerate(ul_resnets):
                if u_resnets:
                    layers += u_resnets[r].weight_norm_layers()
                layers += ul_resnet.weight_norm_layers()
            layers += attention.weight_norm_layers()
        return layers + [self.head]

    def features(self, x, x_pad, h, seeds, training, init):
        ul = (down_shift(self.ul_stem_down(x_pad, init=init))
              + right_shift(self.ul_stem_right(x_pad, init=init)))
        u = down_shift(self.u_stem(x_pad, init=init)) if self.u_stem is not None else None
        gated = dict(h=h, training=training, init=init)
        for u_resnets, ul_resnets, attention in zip(self.u_resnets, self.ul_resnets, self.attention):
            block_seeds = [seeds.next() for _ in range(len(u_resnets) + len(ul_resnets) + 1)]

            def block(ul, *u, u_resnets=u_resnets, ul_resnets=ul_resnets, attention=attention,
                      block_seeds=block_seeds):
                u, block_seeds = (u[0] if u else None), iter(block_seeds)
                for r, ul_resnet in enumerate(ul_resnets):
                    if u_resnets:
                        u = u_resnets[r](u, dropout_seed=next(block_seeds), **gated)
                    ul = ul_resnet(ul, a=u, dropout_seed=next(block_seeds), **gated)
                ul = attention(ul, x, dropout_seed=next(block_seeds), **gated)
                return (ul, u) if u is not None else ul

            outputs = self.checkpointed(block, init)(ul, *([u] if u is not None else []))
            ul, u = outputs if u is not None else (outputs, None)
        return ul


__all__ = ["ARCHITECTURES", "PixelCNNPP", "PixelSNAIL", "build_model"]

# Variant.architecture -> the class that builds it.
ARCHITECTURES = {"pixelsnail": PixelSNAIL, "pixelcnn_pp": PixelCNNPP}


def build_model(config=None, allow_tf32=False, **options):
    """The model of any `--model` of the original (options: kernels, dtype, name). TensorFloat-32 is
    switched off for the process (on GPUs that have it, float32 would otherwise not be float32)
    unless allow_tf32."""
    if isinstance(config, dict):
        config = ModelConfig(**config)
    config = config or ModelConfig()
    hardware.set_tf32(allow_tf32)
    return ARCHITECTURES[config.variant.architecture](config, **options)

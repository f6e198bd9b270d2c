"""PixelSNAIL: causal convolutions interleaved with causal self-attention (Chen et al. 2017).

    x [B,H,W,3] in [-1,1], x_pad = [x, 1]
    stem:   ul = down_shift(conv_1x3(x_pad)) + right_shift(conv_2x1(x_pad))     (u stream: `model` only)
    blocks: nr_resnet x gated residual layers (2x2 down-right-shifted convs)
            -> attention block (keys/values from [x, ul, background], strictly causal mask)
    head:   nin(elu(ul)) -> 10*M parameters of a discretized mixture of M logistics per pixel

`build_model(config)` builds any variant of the original: this class, or PixelCNNPP (pixelcnn_pp.py).
"""

import functools

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
from pixelsnail_tf.repeated_unit import RepeatedUnit


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
        for u_resnets, ul_resnets, attention in self.block_layers():
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
        blocks = self.block_layers()
        block = functools.partial(self.block, training=training, init=init)
        # With recomputation, one function body for all blocks (repeated_unit.py): a far smaller graph.
        # Without it the body would have to return every intermediate its backward pass reads, which
        # took more memory than the blocks inline keep (benchmarks/README.md).
        # Not in the data-dependent init (it assigns weights) nor under dropout from the layers' own
        # seed generators, whose state a body run on weights given as inputs could not advance.
        if self.recompute and not init and (seeds.seed is not None or not training
                                            or self.config.dropout_p == 0):
            block = RepeatedUnit(block, blocks[0], recompute=True)
        for layers in blocks:
            block_seeds = [seeds.next() for _ in range(len(layers[0]) + len(layers[1]) + 1)]
            outputs = block(layers, ul, u, x, h, *block_seeds)
            ul, u = outputs if u is not None else (outputs[0], None)
        return ul

    def block_layers(self):
        """Each block's layers, (u_resnets, ul_resnets, attention): what `block` takes."""
        return list(zip(self.u_resnets, self.ul_resnets, self.attention))

    def block(self, layers, ul, u, x, h, *seeds, training=False, init=False):
        """One block: its gated residual layers (u and ul streams), then its attention block.
        layers: (u_resnets, ul_resnets, attention) of the block; seeds: one per layer, in call order."""
        u_resnets, ul_resnets, attention = layers
        gated = dict(h=h, training=training, init=init)
        seeds = iter(seeds)
        for r, ul_resnet in enumerate(ul_resnets):
            if u_resnets:
                u = u_resnets[r](u, dropout_seed=next(seeds), **gated)
            ul = ul_resnet(ul, a=u, dropout_seed=next(seeds), **gated)
        ul = attention(ul, x, dropout_seed=next(seeds), **gated)
        return (ul, u) if u is not None else (ul,)


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

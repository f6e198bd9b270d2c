"""PixelCNN++ (Salimans et al. 2017), the original's `pxpp` baseline: a U-net of two causal streams.

    u  (vertical: sees the rows above)      ul (sees the rows above and the pixels to the left)
    stem   u = down_shift(conv_2x3(x_pad))  ul = down_shift(conv_1x3(x_pad)) + right_shift(conv_2x1(x_pad))
    up     3 resolutions (H, H/2, H/4), nr_resnet gated layers each (ul's take u as auxiliary input),
           a stride-2 shifted convolution of each stream between them; every output is kept
    down   H/4: nr_resnet layers, then H/2 and H: nr_resnet + 1 layers each, after a stride-2 shifted
           transposed convolution; each layer takes a kept output of the up pass as auxiliary input
           (u: u's, ul: [u, ul's]), the latest first
    head   nin(elu(ul)) -> 10*M mixture parameters per pixel

No attention. Image sides must be multiples of 4.
"""

import keras
import tensorflow as tf

from pixelsnail_tf.image_model import ImageModel
from pixelsnail_tf.layers.gated_resnet import GatedResnet
from pixelsnail_tf.layers.shifts import (DownRightShiftedConv2D, DownRightShiftedConv2DTranspose,
                                         DownShiftedConv2D, DownShiftedConv2DTranspose, down_shift,
                                         right_shift)
from pixelsnail_tf.pixelcnn_pp_steps import PixelCNNPPSteps

RESOLUTIONS = 3


@keras.saving.register_keras_serializable(package="pixelsnail_tf")
class PixelCNNPP(ImageModel):
    """`--model=pxpp`; see ImageModel for the API."""

    architecture = "pixelcnn_pp"
    default_model = "pxpp"
    side_multiple = 2 ** (RESOLUTIONS - 1)
    # Its u stream sees only the rows above: with one row at H/4 it sees nothing there but padding.
    min_init_height = 2 * side_multiple
    steps_class = PixelCNNPPSteps

    def __init__(self, config=None, kernels="fast", **kwargs):
        super().__init__(config, kernels, **kwargs)
        c = self.config
        f = c.nr_filters
        resnet = dict(nonlinearity=c.resnet_nonlinearity, dropout_p=c.dropout_p, kernels=kernels)

        def pairs(stage, count):
            """(u, ul) gated layers of one stage, created u first as in the original."""
            return [(GatedResnet("down_shifted", name=f"u_{stage}_{r}", **resnet),
                     GatedResnet("down_right_shifted", name=f"ul_{stage}_{r}", **resnet))
                    for r in range(count)]

        # Layers are created in the original's order (see weight_norm_layers).
        self.u_stem = DownShiftedConv2D(f, (2, 3), name="u_stem", kernels=kernels)
        self.ul_stem_down = DownShiftedConv2D(f, (1, 3), name="ul_stem_down", kernels=kernels)
        self.ul_stem_right = DownRightShiftedConv2D(f, (2, 1), name="ul_stem_right", kernels=kernels)
        self.up, self.downsample = [], []
        for s in range(RESOLUTIONS):
            self.up.append(pairs(f"up_{s}", c.nr_resnet))
            if s < RESOLUTIONS - 1:
                self.downsample.append(
                    (DownShiftedConv2D(f, (2, 3), strides=2, name=f"u_downsample_{s}", kernels=kernels),
                     DownRightShiftedConv2D(f, (2, 2), strides=2, name=f"ul_downsample_{s}",
                                            kernels=kernels)))
        self.down, self.upsample = [], []
        for s in range(RESOLUTIONS):
            self.down.append(pairs(f"down_{s}", c.nr_resnet + (s > 0)))
            if s < RESOLUTIONS - 1:
                self.upsample.append((DownShiftedConv2DTranspose(f, name=f"u_upsample_{s}"),
                                      DownRightShiftedConv2DTranspose(f, name=f"ul_upsample_{s}")))
        self.head = self._make_head()

    def weight_norm_layers(self):
        layers = [self.u_stem, self.ul_stem_down, self.ul_stem_right]
        for stages, resamplers in ((self.up, self.downsample), (self.down, self.upsample)):
            for s, stage in enumerate(stages):
                for u_resnet, ul_resnet in stage:
                    layers += u_resnet.weight_norm_layers() + ul_resnet.weight_norm_layers()
                if s < len(resamplers):
                    layers += list(resamplers[s])
        return layers + [self.head]

    def features(self, x, x_pad, h, seeds, training, init):
        gated = dict(h=h, training=training, init=init)
        us = [down_shift(self.u_stem(x_pad, init=init))]
        uls = [down_shift(self.ul_stem_down(x_pad, init=init))
               + right_shift(self.ul_stem_right(x_pad, init=init))]
        for s, stage in enumerate(self.up):
            for u_resnet, ul_resnet in stage:
                seed_u, seed_ul = seeds.next(), seeds.next()

                def up(u, ul, u_resnet=u_resnet, ul_resnet=ul_resnet, seed_u=seed_u, seed_ul=seed_ul):
                    u = u_resnet(u, dropout_seed=seed_u, **gated)
                    return u, ul_resnet(ul, a=u, dropout_seed=seed_ul, **gated)

                u, ul = self.checkpointed(up, init)(us[-1], uls[-1])
                us.append(u)
                uls.append(ul)
            if s < len(self.downsample):
                u_conv, ul_conv = self.downsample[s]
                us.append(u_conv(us[-1], init=init))
                uls.append(ul_conv(uls[-1], init=init))
        u, ul = us.pop(), uls.pop()
        for s, stage in enumerate(self.down):
            for u_resnet, ul_resnet in stage:
                seed_u, seed_ul = seeds.next(), seeds.next()

                def down(u, ul, u_kept, ul_kept, u_resnet=u_resnet, ul_resnet=ul_resnet, seed_u=seed_u,
                         seed_ul=seed_ul):
                    u = u_resnet(u, a=u_kept, dropout_seed=seed_u, **gated)
                    return u, ul_resnet(ul, a=tf.concat([u, ul_kept], axis=-1), dropout_seed=seed_ul,
                                        **gated)

                u, ul = self.checkpointed(down, init)(u, ul, us.pop(), uls.pop())
            if s < len(self.upsample):
                u_deconv, ul_deconv = self.upsample[s]
                u, ul = u_deconv(u, init=init), ul_deconv(ul, init=init)
        return ul

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

from pixelsnail_tf.layers.gated_resnet import GatedResnet
from pixelsnail_tf.layers.shifts import (DownRightShiftedConv2D, DownRightShiftedConv2DTranspose,
                                         DownShiftedConv2D, DownShiftedConv2DTranspose, down_shift,
                                         right_shift)

RESOLUTIONS = 3
from pixelsnail_tf.models.base import ImageModel, swap_leading, with_ones


@keras.saving.register_keras_serializable(package="pixelsnail_tf")
class PixelCNNPP(ImageModel):
    """`--model=pxpp`; see ImageModel for the API."""

    architecture = "pixelcnn_pp"
    default_model = "pxpp"
    side_multiple = 2 ** (RESOLUTIONS - 1)
    # Its u stream sees only the rows above: with one row at H/4 it sees nothing there but padding.
    min_init_height = 2 * side_multiple

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



def _layers(model, stream):
    """{key: (layer, level of its input)} of the u (stream 0) or ul (stream 1) stream: the stem term
    that runs with the stream's steps, every gated layer, each downsampling convolution."""
    layers = {"stem": (model.u_stem if stream == 0 else model.ul_stem_right, 0)}
    levels = len(model.up)
    for level in range(levels):
        for pair in model.up[level] + model.down[levels - 1 - level]:
            layers[pair[stream].name] = (pair[stream], level)
        if level < levels - 1:
            layers[f"downsample_{level}"] = (model.downsample[level][stream], level)
    return layers


def _from_level(layers, level):
    """The keys of the layers whose input is at `level` or below."""
    return [key for key, (_, at) in layers.items() if at >= level]


class PixelCNNPPSteps:
    """PixelCNN++ a row and a pixel at a time (ImageModel.steps; the fast sampler's): every resolution
    computes only its new cells, each layer with its own steps (layers/incremental.py).

    The U-net runs at levels 0, 1, 2 (H, H/2, H/4). Cell (i, j) of level L covers the pixels of rows
    2^L i .. and columns 2^L j ..; the up pass of its ul stream reads only pixels before (2^L i, 2^L j), so it
    is computed at that pixel's step, and its down pass with it (from the upsampled cell of the level
    below, computed at the same step or earlier). The u stream, which sees only rows above, runs a row at a
    time. One pixel row r:

      row start  the u stream of every level whose row starts here (r a multiple of 2^L), for the whole row:
                 up pass of levels 0, 1, 2, then down pass 2, 1, 0; a level's upsampled row pair is kept for
                 the two rows of the level above it covers.
      pixel c    level 0's ul up pass; where r and c are multiples of 2, level 1's cell (r/2, c/2): its up
                 pass, [where multiples of 4, level 2's cell, up and down pass, upsampled into the 2x2 block
                 of level-1 cells it covers], its down pass, upsampled into its 2x2 block of pixels; level
                 0's down pass from that block; the head; `choose` gives the pixel.
      row end    each level whose row was computed stores its inputs as the rows above.

    Layers compute in the model's compute dtype, the head in float32, as in the model.

    The PixelCNN++ model as row and pixel steps, its weights prepared once when built (inside the
    traced function that runs `row`).
    """

    def __init__(self, model, height, width):
        self.model, self.height, self.width = model, height, width
        self.levels = len(model.up)
        self.dtype = dtype = tf.as_dtype(model.compute_dtype)
        self.u_layers, self.ul_layers = _layers(model, 0), _layers(model, 1)
        self.u_steps = {key: layer.row_steps(dtype) for key, (layer, _) in self.u_layers.items()}
        self.ul_steps = {key: layer.pixel_steps(dtype) for key, (layer, _) in self.ul_layers.items()}
        self.ul_stem_down = model.ul_stem_down.row_steps(dtype)
        self.head = model.head.linear(tf.float32)

    @staticmethod
    def initial_state(model, batch, height, width):
        """The state before row 0 (needs the model's shapes only, not its weights)."""
        dtype = tf.as_dtype(model.compute_dtype)
        f = model.config.nr_filters

        def above(layers):
            return {key: layer.initial_rows(batch, width >> level, dtype)
                    for key, (layer, level) in layers.items()}
        return {
            # x_pad of the row above
            "x_above": tf.zeros([batch, 1, width, model.distribution.input_channels + 1], dtype),
            "u": above(_layers(model, 0)),
            "ul": above(_layers(model, 1)),
            # level L's u rows 2i, 2i+1, upsampled from level L+1's row i
            "u_upsampled": [tf.zeros([batch, 2, width >> level, f], dtype) for level in range(2)],
            # per cell of level L+1: the 2x2 block of level-L cells it upsamples to
            "ul_upsampled": [tf.zeros([width >> (level + 1), batch, 2, 2, f], dtype) for level in range(2)],
        }

    # --- the u stream, a row at a time ---------------------------------------------------------------

    def _u_level(self, level, r, u, states, upsampled, h):
        """Level `level`'s u row r (its input row u [B,1,W,F]) through the up pass, the levels below
        and the down pass. Returns (states, upsampled, rows) with rows[level'] = (u after each up
        layer, u after each down layer) as [W, B, F] columns, for every level' >= level."""
        m, last = self.model, self.levels - 1
        states = dict(states)

        def step(layer, x, a=None):
            key = layer.name
            out, states[key] = self.u_steps[key](states[key], x, a=a, h=h)
            return out

        skips, ups = [u], []
        for resnet, _ in m.up[level]:
            u = step(resnet, u)
            skips.append(u)
            ups.append(u)
        rows = {}
        if level < last:
            below = f"downsample_{level}"
            down_in, states[below] = self.u_steps[below](states[below], u)  # kept on every row
            keys = _from_level(self.u_layers, level + 1)

            def compute():
                return self._u_level(level + 1, r // 2, down_in, {k: states[k] for k in keys}, upsampled, h)

            def keep():
                return ({k: states[k] for k in keys}, upsampled,
                        self._empty_rows(level + 1, tf.shape(u)[0]))
            inner, upsampled, rows = tf.cond(r % 2 == 0, compute, keep)
            states.update(inner)
            u = upsampled[level][:, r % 2][:, None]
        else:
            u = skips.pop()
        downs = []
        for resnet, _ in m.down[last - level]:
            u = step(resnet, u, a=skips.pop())
            downs.append(u)
        if level > 0:
            upsampled = list(upsampled)
            upsampled[level - 1] = m.upsample[last - level][0](u)
        columns = [tf.transpose(t[:, 0], [1, 0, 2]) for t in ups + downs]
        rows[level] = (columns[:len(ups)], columns[len(ups):])
        return states, upsampled, rows

    def _empty_rows(self, level, batch):
        """Zeros shaped as _u_level's rows from `level` down (what a level without a new row returns)."""
        f, rows = self.model.config.nr_filters, {}
        for at in range(level, self.levels):
            zeros = tf.zeros([self.width >> at, batch, f], self.dtype)
            rows[at] = ([zeros] * len(self.model.up[at]),
                        [zeros] * len(self.model.down[self.levels - 1 - at]))
        return rows

    # --- the ul stream, a cell at a time -------------------------------------------------------------

    def _ul_level(self, level, r, j, ul, cells, above, upsampled, u_rows, h):
        """Level `level`'s cell (r, j) of the ul stream (its input ul [B,F]): up pass, the cell of the
        level below where one starts here, down pass. Returns (cells, upsampled, ul after the down
        pass) with the row states of the layers at `level` and below."""
        m, last = self.model, self.levels - 1
        cells = dict(cells)

        def step(key, x, **gated):
            out, cells[key] = self.ul_steps[key](cells[key], above[key], j, x, **gated)
            return out

        ups, downs = u_rows[level]
        skips = [ul]
        for k, (_, resnet) in enumerate(m.up[level]):
            ul = step(resnet.name, ul, a=ups[k][j], h=h)
            skips.append(ul)
        if level < last:
            below = f"downsample_{level}"
            down_in = step(below, ul)
            keys = _from_level(self.ul_layers, level + 1)

            def compute():
                inner, new_up, _ = self._ul_level(level + 1, r // 2, j // 2, down_in,
                                                  {k: cells[k] for k in keys}, above, upsampled,
                                                  u_rows, h)
                return inner, new_up

            def keep():
                return {k: cells[k] for k in keys}, upsampled
            inner, upsampled = tf.cond(tf.logical_and(r % 2 == 0, j % 2 == 0), compute, keep)
            cells.update(inner)
            ul = tf.gather(upsampled[level], j // 2)[:, r % 2, j % 2]
        else:
            ul = skips.pop()
        for k, (_, resnet) in enumerate(m.down[last - level]):
            ul = step(resnet.name, ul, a=tf.concat([downs[k][j], skips.pop()], axis=-1), h=h)
        if level > 0:
            upsampled = list(upsampled)
            block = m.upsample[last - level][1](ul[:, None, None])  # [B, 2, 2, F]
            upsampled[level - 1] = tf.tensor_scatter_nd_update(upsampled[level - 1], [[j]], block[None])
        return cells, upsampled, ul

    # --- one row ---------------------------------------------------------------------------------------

    def row(self, r, state, choose, labels=None, keep_params=False):
        """Row r of every image, as PixelSNAILSteps.row (pixelsnail.py)."""
        m, width, dtype = self.model, self.width, self.dtype
        batch = tf.shape(state["x_above"])[0]
        h = tf.one_hot(labels, m.config.num_classes, dtype=dtype) if m.config.num_classes else None
        shown = tf.cast(r > 0, dtype)  # down_shift: row 0 sees nothing above
        u_states = dict(state["u"])
        u_stem, u_states["stem"] = self.u_steps["stem"](u_states["stem"], state["x_above"])
        u_states, u_upsampled, u_rows = self._u_level(0, r, u_stem * shown, u_states,
                                                      state["u_upsampled"], h)
        ul_down = tf.transpose(self.ul_stem_down.apply(state["x_above"])[:, 0] * shown, [1, 0, 2])
        above = {key: steps.row_start(state["ul"][key]) for key, steps in self.ul_steps.items()}

        def pixel(c, cells, upsampled, right, pixels, params_so_far):
            """Pixel (r, c) of every image: both passes, the head, the pixel; caches updated."""
            cells, upsampled, ul = self._ul_level(0, r, c, ul_down[c] + right, cells, above, upsampled,
                                                  u_rows, h)
            params = self.head(tf.cast(tf.nn.elu(ul), tf.float32))
            x = choose(c, params)
            x_in = m.network_input(x, dtype)  # what the network reads of the drawn value
            cells = dict(cells)
            right, cells["stem"] = self.ul_steps["stem"](cells["stem"], above["stem"], c,
                                                         with_ones(x_in))
            if keep_params:
                params_so_far = params_so_far.write(c, params)
            return c + 1, cells, upsampled, right, pixels.write(c, x), params_so_far

        cells = {key: steps.empty_row(batch, width >> self.ul_layers[key][1])
                 for key, steps in self.ul_steps.items()}
        right = tf.zeros([batch, m.ul_stem_right.units], dtype)
        _, cells, ul_upsampled, _, pixels, params = tf.while_loop(
            lambda c, *_: c < width, pixel,
            [tf.constant(0), cells, state["ul_upsampled"], right,
             tf.TensorArray(m.distribution.value_dtype, size=width),
             tf.TensorArray(tf.float32, size=width) if keep_params else tf.constant(0)])
        ul_states = {}
        for key, steps in self.ul_steps.items():
            level = self.ul_layers[key][1]
            ul_states[key] = tf.cond(r % (2 ** level) == 0,
                                     lambda steps=steps, key=key: steps.row_end(state["ul"][key], cells[key]),
                                     lambda key=key: state["ul"][key])
        new_state = {
            "x_above": self.ul_steps["stem"].row_inputs(cells["stem"])[:, None],
            "u": u_states,
            "ul": ul_states,
            "u_upsampled": u_upsampled,
            "ul_upsampled": ul_upsampled,
        }
        return (new_state, swap_leading(pixels.stack()),  # [W,B,...] -> [B,W,...]
                swap_leading(params.stack()) if keep_params else None)


PixelCNNPP.steps_class = PixelCNNPPSteps

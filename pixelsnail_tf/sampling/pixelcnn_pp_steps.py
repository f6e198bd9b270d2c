"""PixelCNN++'s steps for the fast sampler (cached.py): every resolution computes only its new cells.

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
             0's down pass from that block; the head; the draw.
  row end    each level whose row was computed stores its inputs as the rows above.

Layers compute in the model's compute dtype, the head and the draw in float32, as in the model.
"""

import tensorflow as tf

from pixelsnail_tf.images import round_to_levels
from pixelsnail_tf.layers.nonlinearities import apply_activation
from pixelsnail_tf.logistic_mixture import sample_discretized_mix_logistic
from pixelsnail_tf.pixelcnn_pp import RESOLUTIONS
from pixelsnail_tf.sampling.convolution_steps import ELEMENTWISE, PixelConv, RowConv, rows_above


def _convolutions(model, stream):
    """{key: (convolution, level of its input)} of the u (stream 0) or ul (stream 1) stream: the stem
    term that runs with the stream's steps, every gated layer's two, each downsampling one."""
    convs = {"stem": (model.u_stem if stream == 0 else model.ul_stem_right, 0)}
    for level in range(RESOLUTIONS):
        for pair in model.up[level] + model.down[RESOLUTIONS - 1 - level]:
            resnet = pair[stream]
            convs[resnet.name + "/in"] = (resnet.conv_in, level)
            convs[resnet.name + "/out"] = (resnet.conv_out, level)
        if level < RESOLUTIONS - 1:
            convs[f"downsample_{level}"] = (model.downsample[level][stream], level)
    return convs


def _from_level(convs, level):
    """The keys of the convolutions whose input is at `level` or below."""
    return [key for key, (_, at) in convs.items() if at >= level]


class PixelCNNPPSteps:
    """The PixelCNN++ model as row and pixel steps, its weights prepared once when built (inside the
    traced function that runs `row`)."""

    def __init__(self, model, height, width, quantize=True):
        self.model, self.height, self.width, self.quantize = model, height, width, quantize
        self.dtype = dtype = tf.as_dtype(model.compute_dtype)
        self.u_convs, self.ul_convs = _convolutions(model, 0), _convolutions(model, 1)
        self.row_convs = {key: RowConv(layer, dtype) for key, (layer, _) in self.u_convs.items()}
        self.pixel_convs = {key: PixelConv(layer, dtype) for key, (layer, _) in self.ul_convs.items()}
        self.ul_stem_down = RowConv(model.ul_stem_down, dtype)
        self.aux = {r.name: r.aux.linear(dtype) for stage in model.up + model.down for pair in stage
                    for r in pair if r.aux is not None}
        self.head = model.head.linear(tf.float32)

    @staticmethod
    def initial_state(model, batch, height, width):
        """The state before row 0 (needs the model's shapes only, not its weights)."""
        dtype = tf.as_dtype(model.compute_dtype)
        f = model.config.nr_filters

        def above(convs):
            return {key: rows_above(layer, batch, width >> level, dtype)
                    for key, (layer, level) in convs.items()}
        return {
            "canvas": tf.zeros([height, batch, width, 3]),  # rows first
            "x_above": tf.zeros([batch, 1, width, 4], dtype),  # x_pad of the row above
            "u": above(_convolutions(model, 0)),
            "ul": above(_convolutions(model, 1)),
            # level L's u rows 2i, 2i+1, upsampled from level L+1's row i
            "u_upsampled": [tf.zeros([batch, 2, width >> level, f], dtype) for level in range(2)],
            # per cell of level L+1: the 2x2 block of level-L cells it upsamples to
            "ul_upsampled": [tf.zeros([width >> (level + 1), batch, 2, 2, f], dtype) for level in range(2)],
        }

    @staticmethod
    def images(state):
        return tf.transpose(state["canvas"], [1, 0, 2, 3])

    # --- the u stream, a row at a time ---------------------------------------------------------------

    def _u_level(self, level, r, u, states, upsampled, h):
        """Level `level`'s u row r (its input row u [B,1,W,F]) through the up pass, the levels below
        and the down pass. Returns (states, upsampled, rows) with rows[level'] = (u after each up
        layer, u after each down layer) as [W, B, F] columns, for every level' >= level."""
        m = self.model
        states = dict(states)

        def conv(key):
            def apply(t, f=None):
                out, states[key] = self.row_convs[key](states[key], apply_activation(t, f))
                return out
            return apply

        skips, ups = [u], []
        for resnet, _ in m.up[level]:
            u = resnet.residual(u, conv(resnet.name + "/in"), conv(resnet.name + "/out"), h=h,
                                elementwise=ELEMENTWISE)
            skips.append(u)
            ups.append(u)
        rows = {}
        if level < RESOLUTIONS - 1:
            below = f"downsample_{level}"
            down_in, states[below] = self.row_convs[below](states[below], u)  # kept on every row
            keys = _from_level(self.u_convs, level + 1)

            def compute():
                inner, new_up, new_rows = self._u_level(
                    level + 1, r // 2, down_in, {k: states[k] for k in keys}, upsampled, h)
                return inner, new_up, new_rows

            def keep():
                return ({k: states[k] for k in keys}, upsampled,
                        self._empty_rows(level + 1, tf.shape(u)[0]))
            inner, upsampled, rows = tf.cond(r % 2 == 0, compute, keep)
            states.update(inner)
            u = upsampled[level][:, r % 2][:, None]
        else:
            u = skips.pop()
        downs = []
        for resnet, _ in m.down[RESOLUTIONS - 1 - level]:
            # (the layer itself: it flattens the row to a matrix, whereas a rank-4 matmul against the
            # kernel lets oneDNN's batched matmul corrupt memory, seen on TF 2.21)
            u = resnet.residual(u, conv(resnet.name + "/in"), conv(resnet.name + "/out"), resnet.aux,
                                a=skips.pop(), h=h, elementwise=ELEMENTWISE)
            downs.append(u)
        if level > 0:
            upsampled = list(upsampled)
            upsampled[level - 1] = m.upsample[RESOLUTIONS - 1 - level][0](u)
        columns = [tf.transpose(t[:, 0], [1, 0, 2]) for t in ups + downs]
        rows[level] = (columns[:len(ups)], columns[len(ups):])
        return states, upsampled, rows

    def _empty_rows(self, level, batch):
        """Zeros shaped as _u_level's rows from `level` down (what a level without a new row returns)."""
        f, rows = self.model.config.nr_filters, {}
        for at in range(level, RESOLUTIONS):
            zeros = tf.zeros([self.width >> at, batch, f], self.dtype)
            rows[at] = ([zeros] * len(self.model.up[at]),
                        [zeros] * len(self.model.down[RESOLUTIONS - 1 - at]))
        return rows

    # --- the ul stream, a cell at a time -------------------------------------------------------------

    def _ul_level(self, level, r, j, ul, cells, above, upsampled, u_rows, h):
        """Level `level`'s cell (r, j) of the ul stream (its input ul [B,F]): up pass, the cell of the
        level below where one starts here, down pass. Returns (cells, upsampled, ul after the down
        pass) with the row states of the convolutions at `level` and below."""
        m = self.model
        cells = dict(cells)

        def conv(key):
            def apply(t, f=None):
                out, cells[key] = self.pixel_convs[key].step(cells[key], above[key], j,
                                                             apply_activation(t, f))
                return out
            return apply

        ups, downs = u_rows[level]
        skips = [ul]
        for k, (_, resnet) in enumerate(m.up[level]):
            ul = resnet.residual(ul, conv(resnet.name + "/in"), conv(resnet.name + "/out"),
                                 self.aux[resnet.name], a=ups[k][j], h=h, elementwise=ELEMENTWISE)
            skips.append(ul)
        if level < RESOLUTIONS - 1:
            below = f"downsample_{level}"
            down_in, cells[below] = self.pixel_convs[below].step(cells[below], above[below], j, ul)
            keys = _from_level(self.ul_convs, level + 1)

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
        for k, (_, resnet) in enumerate(m.down[RESOLUTIONS - 1 - level]):
            a = tf.concat([downs[k][j], skips.pop()], axis=-1)
            ul = resnet.residual(ul, conv(resnet.name + "/in"), conv(resnet.name + "/out"),
                                 self.aux[resnet.name], a=a, h=h, elementwise=ELEMENTWISE)
        if level > 0:
            upsampled = list(upsampled)
            block = m.upsample[RESOLUTIONS - 1 - level][1](ul[:, None, None])  # [B, 2, 2, F]
            upsampled[level - 1] = tf.tensor_scatter_nd_update(upsampled[level - 1], [[j]], block[None])
        return cells, upsampled, ul

    # --- one row ---------------------------------------------------------------------------------------

    def row(self, r, state, u_mix, u_logistic, labels=None):
        """The state after drawing row r (a tensor) of every image from its noise u_mix [B,W,M],
        u_logistic [B,W,3]."""
        m, width = self.model, self.width
        batch = tf.shape(u_mix)[0]
        h = tf.one_hot(labels, m.config.num_classes, dtype=self.dtype) if m.config.num_classes else None
        shown = tf.cast(r > 0, self.dtype)  # down_shift: row 0 sees nothing above
        u_states = dict(state["u"])
        u_stem, u_states["stem"] = self.row_convs["stem"](u_states["stem"], state["x_above"])
        u_states, u_upsampled, u_rows = self._u_level(0, r, u_stem * shown, u_states,
                                                      state["u_upsampled"], h)
        ul_down = tf.transpose(self.ul_stem_down.apply(state["x_above"])[:, 0] * shown, [1, 0, 2])
        above = {key: conv.row_start(state["ul"][key]) for key, conv in self.pixel_convs.items()}

        def pixel(c, cells, upsampled, right, drawn):
            """Pixel (r, c) of every image: both passes, the head, the draw; caches updated."""
            cells, upsampled, ul = self._ul_level(0, r, c, ul_down[c] + right, cells, above, upsampled,
                                                  u_rows, h)
            params = self.head(tf.cast(tf.nn.elu(ul), tf.float32))
            x = sample_discretized_mix_logistic(params, u_mix[:, c], u_logistic[:, c])
            if self.quantize:
                x = round_to_levels(x)
            x_pad = tf.cast(tf.concat([x, tf.ones_like(x[:, :1])], axis=-1), self.dtype)
            cells = dict(cells)
            right, cells["stem"] = self.pixel_convs["stem"].step(cells["stem"], above["stem"], c, x_pad)
            return c + 1, cells, upsampled, right, tf.tensor_scatter_nd_update(drawn, [[c]], x[None])

        cells = {key: conv.empty_row(batch, width >> self.ul_convs[key][1])
                 for key, conv in self.pixel_convs.items()}
        right = tf.zeros([batch, m.ul_stem_right.units], self.dtype)
        _, cells, ul_upsampled, _, drawn = tf.while_loop(
            lambda c, *_: c < width, pixel,
            [tf.constant(0), cells, state["ul_upsampled"], right, tf.zeros([width, batch, 3])])
        ul_states = {}
        for key, conv in self.pixel_convs.items():
            level = self.ul_convs[key][1]
            ul_states[key] = tf.cond(r % (2 ** level) == 0,
                                     lambda conv=conv, key=key: conv.row_end(state["ul"][key], cells[key]),
                                     lambda key=key: state["ul"][key])
        drawn = tf.transpose(drawn, [1, 0, 2])  # [B, W, 3], float32
        return {
            "canvas": tf.tensor_scatter_nd_update(state["canvas"], [[r]], drawn[None]),
            "x_above": PixelConv.row_inputs(cells["stem"])[:, None],
            "u": u_states,
            "ul": ul_states,
            "u_upsampled": u_upsampled,
            "ul_upsampled": ul_upsampled,
        }

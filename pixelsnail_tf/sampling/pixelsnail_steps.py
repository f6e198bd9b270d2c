"""PixelSNAIL's steps for the fast sampler (cached.py): each layer computes only what a new pixel changes.

  row start  every shifted convolution of the ul stream gets the contribution of the rows above
             (final by now) for the whole row in one batched convolution; the vertical `u` stream
             (`model` variant), which sees only rows above, is computed for the whole row.
  pixel c    each ul convolution multiplies only its taps in the current row (the pixel and the
             kw-1 cached ones to its left); each attention block's query reads the cached keys and
             values of the earlier pixels (same mask and softmax as the full model); the head gives
             the mixture, the pixel is drawn, and its keys and values go into the caches.
  row end    the current row becomes the rows above.

Layers compute in the model's compute dtype (bfloat16 under mixed precision) as in the model; the
attention softmax, the output layer and the draw stay float32.
"""

import tensorflow as tf

from pixelsnail_tf.images import round_to_levels
from pixelsnail_tf.layers.attention import last_pixel_of_key_cells, masked_softmax, positional_background
from pixelsnail_tf.layers.nonlinearities import apply_activation
from pixelsnail_tf.logistic_mixture import sample_discretized_mix_logistic
from pixelsnail_tf.sampling.convolution_steps import (ELEMENTWISE, PixelConv, RowConv, dense_resnet,
                                                      rows_above)


def _conv_layers(model):
    """The model's shifted convolutions in the order of the state's lists: those of the u stream
    (run a row at a time), those of the ul stream (run a pixel at a time)."""
    def resnet_convs(blocks):
        return [conv for block in blocks for resnet in block for conv in (resnet.conv_in, resnet.conv_out)]
    row = ([model.u_stem] if model.u_stem is not None else []) + resnet_convs(model.u_resnets)
    return row, [model.ul_stem_right] + resnet_convs(model.ul_resnets)


class _AttentionCache:
    """Keys and values of the pixels drawn so far for one attention block: keys float32, values in the
    model's compute dtype `dtype` (as the values the full model attends to; not the block's own
    compute_dtype, which stays float32 when the model alone carries the mixed policy).

    Two parts. The key cells of the finished cell rows, [B, cells, size] (zeros beyond them): every
    later pixel may read all of them. The cells of the current cell row, [B, cells per row, size]:
    written pixel by pixel and read under the mask. A pixel's write thus copies one row of cells,
    not the whole cache, and its query reads only the finished rows plus one.
    With downsample d a key cell is the max over a d x d block: it is set by the block's first
    pixel and maxed by the others; the mask lets a query read a cell only once it is complete (until
    then a cell of the current row may hold a value of the row before: masked, it weighs exactly 0).
    """

    def __init__(self, block, height, width, dtype):
        self.block, self.dtype = block, dtype
        self.cells_per_row = -(-width // block.downsample)
        self.num_cells = -(-height // block.downsample) * self.cells_per_row
        last_pixel = last_pixel_of_key_cells(height, width, block.downsample)
        self.last_pixel = tf.constant(last_pixel.reshape(-1, self.cells_per_row), tf.int32)  # by cell row

    def initial_state(self, batch):
        """(keys, values) of the finished cell rows, then of the current one."""
        block = self.block
        return (tf.zeros([batch, self.num_cells, block.key_size]),
                tf.zeros([batch, self.num_cells, block.value_size], self.dtype),
                tf.zeros([batch, self.cells_per_row, block.key_size]),
                tf.zeros([batch, self.cells_per_row, block.value_size], self.dtype))

    def finished(self, state, r):
        """What the pixels of row r read of the finished cell rows, fixed during the row: their keys
        and values [B, n, size], a mask of n ones (all readable), and the last pixel of each cell of
        row r's own cell row (a pixel reads those that precede it)."""
        n = (r // self.block.downsample) * self.cells_per_row
        return state[0][:, :n], state[1][:, :n], tf.ones([n]), self.last_pixel[r // self.block.downsample]

    def attend(self, query, finished, current, p):
        """The original's masked softmax attention of pixel p over the finished cells and those of
        the current cell row (readable once complete). query [B, key_size]."""
        (keys, values, readable, row_last_pixel), (row_keys, row_values) = finished, current
        q = tf.cast(query[:, None], tf.float32)
        logits = tf.concat([tf.matmul(q, keys, transpose_b=True),
                            tf.matmul(q, row_keys, transpose_b=True)], axis=-1)
        mask = tf.concat([readable, tf.cast(row_last_pixel < p, tf.float32)], axis=0)[None]
        weights = tf.cast(masked_softmax(logits, mask, self.block.key_size), values.dtype)
        n = tf.shape(keys)[1]
        return (tf.matmul(weights[..., :n], values) + tf.matmul(weights[..., n:], row_values))[:, 0]

    def write(self, current, r, c, new):
        """The current cell row's (keys or values) with pixel (r, c)'s new [B, size] in its cell."""
        d = self.block.downsample
        cell = c // d
        if d > 1:
            first = tf.logical_and(tf.equal(r % d, 0), tf.equal(c % d, 0))
            new = tf.where(first, new, tf.maximum(tf.gather(current, cell, axis=1), new))
        batch = tf.shape(current)[0]
        index = tf.stack([tf.range(batch), tf.fill([batch], cell)], axis=1)
        return tf.tensor_scatter_nd_update(current, index, tf.cast(new, current.dtype))

    def row_end(self, state, current, r):
        """The state after pixel row r: the current cell row's cells stored among the finished ones
        (final once its last pixel row is done; until then they are not read from there)."""
        batch, per_row = tf.shape(current[0])[0], self.cells_per_row
        cells = (r // self.block.downsample) * per_row + tf.range(per_row)
        index = tf.reshape(tf.stack(tf.meshgrid(tf.range(batch), cells, indexing="ij"), axis=-1), [-1, 2])
        stored = [tf.tensor_scatter_nd_update(full, index, tf.reshape(row, [-1, row.shape[-1]]))
                  for full, row in zip(state[:2], current)]
        return (*stored, *current)


class _AttentionStep:
    """One attention block at one pixel: query against the caches; the drawn pixel's key and value."""

    def __init__(self, block, height, width, dtype):
        self.block = block
        self.cache = _AttentionCache(block, height, width, dtype)
        self.kv_resnet = dense_resnet(block.kv_resnet, dtype)
        self.query_resnet = dense_resnet(block.query_resnet, dtype)
        self.out_resnet = dense_resnet(block.out_resnet, dtype)
        self.kv_projection = block.kv_projection.linear(dtype)
        self.query_projection = block.query_projection.linear(dtype)

    def __call__(self, finished, current, ul, background, p, h):
        block = self.block
        query = self.query_projection(block.query_resnet.residual(
            tf.concat([ul, background], axis=-1), *self.query_resnet, h=h, elementwise=ELEMENTWISE))
        mixed = self.cache.attend(query, finished, current, p)
        return block.out_resnet.residual(ul, *self.out_resnet, a=tf.cast(mixed, ul.dtype), h=h,
                                         elementwise=ELEMENTWISE)

    def store(self, current, x, ul, background, r, c, h):
        """The current cell row's caches with the key and value of pixel (r, c), from its drawn x and
        the block's input ul."""
        block = self.block
        kv = self.kv_projection(block.kv_resnet.residual(
            tf.concat([tf.cast(x, ul.dtype), ul, background], axis=-1), *self.kv_resnet, h=h,
            elementwise=ELEMENTWISE))
        row_keys, row_values = current
        return (self.cache.write(row_keys, r, c, kv[:, :block.key_size]),
                self.cache.write(row_values, r, c, kv[:, block.key_size:]))


class PixelSNAILSteps:
    """The model as row and pixel steps, with its current weights (normalized once, when built).

    Build it inside the traced function that runs `row`, so that it reads the variables there.
    """

    def __init__(self, model, height, width, quantize=True):
        self.model, self.height, self.width, self.quantize = model, height, width, quantize
        self.dtype = dtype = tf.as_dtype(model.compute_dtype)
        self.background = positional_background(tf.zeros([1, height, width, 1], dtype))[0]  # [H, W, 6]
        self.ul_stem_down = RowConv(model.ul_stem_down, dtype)
        # In the order of the state's lists: [u stem,] conv_in and conv_out of every u resnet; the
        # right stem, conv_in and conv_out of every ul resnet.
        row_layers, pixel_layers = _conv_layers(model)
        self.row_convs = [RowConv(layer, dtype) for layer in row_layers]
        self.pixel_convs = [PixelConv(layer, dtype) for layer in pixel_layers]
        self.ul_aux = [[r.aux and r.aux.linear(dtype) for r in block] for block in model.ul_resnets]
        self.attention = [_AttentionStep(block, height, width, dtype) for block in model.attention]
        self.head = model.head.linear(tf.float32)

    @staticmethod
    def initial_state(model, batch, height, width):
        """The state before row 0 (needs the model's shapes only, not its weights)."""
        dtype = tf.as_dtype(model.compute_dtype)
        row_layers, pixel_layers = _conv_layers(model)
        return {
            "canvas": tf.zeros([height, batch, width, 3]),  # rows first
            "x_above": tf.zeros([batch, 1, width, 4], dtype),  # x_pad of the row above
            "row_convs": [rows_above(layer, batch, width, dtype) for layer in row_layers],
            "pixel_convs": [rows_above(layer, batch, width, dtype) for layer in pixel_layers],
            "attention": [_AttentionCache(block, height, width, dtype).initial_state(batch)
                          for block in model.attention],
        }

    @staticmethod
    def images(state):
        """The canvas of a state as images [B,H,W,3]."""
        return tf.transpose(state["canvas"], [1, 0, 2, 3])

    def _vertical_stream(self, r, state, h):
        """u of row r for every u layer ([[W,B,F] per resnet] per block) and the next row states."""
        if self.model.u_stem is None:
            return [[] for _ in self.model.u_resnets], state["row_convs"]
        states = list(state["row_convs"])

        def row_conv(i):
            def apply(t, f=None):
                out, states[i] = self.row_convs[i](states[i], apply_activation(t, f))
                return out
            return apply

        u = row_conv(0)(state["x_above"]) * tf.cast(r > 0, self.dtype)  # u stem; down_shift
        i = 1
        rows = []
        for resnets in self.model.u_resnets:
            rows.append([])
            for resnet in resnets:
                u = resnet.residual(u, row_conv(i), row_conv(i + 1), h=h, elementwise=ELEMENTWISE)
                i += 2
                rows[-1].append(tf.transpose(u[:, 0], [1, 0, 2]))
        return rows, states

    def row(self, r, state, u_mix, u_logistic, labels=None):
        """The state after drawing row r (a tensor) of every image from its noise u_mix [B,W,M],
        u_logistic [B,W,3]."""
        m, width = self.model, self.width
        batch = tf.shape(u_mix)[0]
        h = tf.one_hot(labels, m.config.num_classes, dtype=self.dtype) if m.config.num_classes else None
        u_rows, row_conv_states = self._vertical_stream(r, state, h)
        # the stem's down_shift term: the row above through its 1x3 conv (row 0: nothing above)
        ul_down = self.ul_stem_down.apply(state["x_above"])[:, 0] * tf.cast(r > 0, self.dtype)
        ul_down = tf.transpose(ul_down, [1, 0, 2])
        convs = self.pixel_convs
        above = [conv.row_start(s) for conv, s in zip(convs, state["pixel_convs"])]
        background = self.background[r]
        finished = [step.cache.finished(s, r) for step, s in zip(self.attention, state["attention"])]

        def pixel(c, rows, attention, right, drawn):
            """Pixel (r, c) of every image: the ul stream, attention, draw; caches updated."""
            p = r * width + c
            bg = tf.broadcast_to(background[c], [batch, 6])
            new_rows = list(rows)

            def pixel_conv(i):
                def apply(t, f=None):
                    out, new_rows[i] = convs[i].step(rows[i], above[i], c, apply_activation(t, f))
                    return out
                return apply

            ul = ul_down[c] + right  # right: the stem's right_shift term, computed at pixel c-1
            i = 1
            block_inputs = []
            for b, (resnets, auxes, step) in enumerate(zip(m.ul_resnets, self.ul_aux, self.attention)):
                for k, (resnet, aux) in enumerate(zip(resnets, auxes)):
                    a = u_rows[b][k][c] if u_rows[b] else None
                    ul = resnet.residual(ul, pixel_conv(i), pixel_conv(i + 1), aux, a=a, h=h,
                                          elementwise=ELEMENTWISE)
                    i += 2
                block_inputs.append(ul)
                ul = step(finished[b], attention[b], ul, bg, p, h)
            params = self.head(tf.cast(tf.nn.elu(ul), tf.float32))
            x = sample_discretized_mix_logistic(params, u_mix[:, c], u_logistic[:, c])
            if self.quantize:
                x = round_to_levels(x)
            attention = [step.store(s, x, ul_b, bg, r, c, h)
                         for step, s, ul_b in zip(self.attention, attention, block_inputs)]
            x_pad = tf.cast(tf.concat([x, tf.ones_like(x[:, :1])], axis=-1), self.dtype)
            right, new_rows[0] = convs[0].step(rows[0], above[0], c, x_pad)
            return c + 1, new_rows, attention, right, tf.tensor_scatter_nd_update(drawn, [[c]], x[None])

        rows = [conv.empty_row(batch, width) for conv in convs]
        right = tf.zeros([batch, m.ul_stem_right.units], self.dtype)
        drawn = tf.zeros([width, batch, 3])
        current = [s[2:] for s in state["attention"]]  # the current cell rows' caches
        _, rows, current, _, drawn = tf.while_loop(
            lambda c, *_: c < width, pixel, [tf.constant(0), rows, current, right, drawn])
        x_pad = convs[0].row_inputs(rows[0])  # the right stem's inputs: x_pad of row r
        drawn = tf.transpose(drawn, [1, 0, 2])  # [B, W, 3], float32
        return {
            "canvas": tf.tensor_scatter_nd_update(state["canvas"], [[r]], drawn[None]),
            "x_above": x_pad[:, None],
            "row_convs": row_conv_states,
            "pixel_convs": [conv.row_end(s, row) for conv, s, row in zip(convs, state["pixel_convs"], rows)],
            "attention": [step.cache.row_end(s, row, r)
                          for step, s, row in zip(self.attention, state["attention"], current)],
        }

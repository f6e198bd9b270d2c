"""PixelSNAIL: causal convolutions interleaved with causal self-attention (Chen et al. 2017).

    x [B,H,W,3] in [-1,1], x_pad = [x, 1]
    stem:   ul = down_shift(conv_1x3(x_pad)) + right_shift(conv_2x1(x_pad))     (u stream: `model` only)
    blocks: nr_resnet x gated residual layers (2x2 down-right-shifted convs)
            -> attention block (keys/values from [x, ul, background], strictly causal mask)
    head:   nin(elu(ul)) -> 10*M parameters of a discretized mixture of M logistics per pixel

Below the model, PixelSNAILSteps: the same wiring a row and a pixel at a time (the fast sampler's).
"""

import functools

import keras
import tensorflow as tf

from pixelsnail_tf.layers.attention import CausalAttentionBlock
from pixelsnail_tf.layers.gated_resnet import GatedResnet
from pixelsnail_tf.layers.shifts import (DownRightShiftedConv2D, DownShiftedConv2D, down_shift,
                                         right_shift)
from pixelsnail_tf.models.base import ImageModel, swap_leading, with_ones
from pixelsnail_tf.models.repeated_unit import RepeatedUnit


@keras.saving.register_keras_serializable(package="pixelsnail_tf")
class PixelSNAIL(ImageModel):
    """The attention models of the original (every `--model` but pxpp); see ImageModel for the API."""

    architecture = "pixelsnail"
    default_model = "h12_noup_smallkey"

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
        # took more memory than the blocks inline keep (docs/speed.md).
        # Not in the data-dependent init (it assigns weights). Dropout masks come from the seeds given.
        if self.recompute and not init:
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


class PixelSNAILSteps:
    """PixelSNAIL a row and a pixel at a time (ImageModel.steps; the fast sampler's): each layer computes only
    what a new pixel changes, with its own steps (layers/incremental.py, layers/attention_steps.py).

      row start  every shifted convolution of the ul stream gets the contribution of the rows above
                 (final by now) for the whole row in one batched convolution; the vertical `u` stream
                 (`model` variant), which sees only rows above, is computed for the whole row.
      pixel c    each ul convolution multiplies only its taps in the current row (the pixel and the
                 kw-1 cached ones to its left); each attention block's query reads the cached keys and
                 values of the earlier pixels (same mask and softmax as the full model); the head gives
                 the distribution's parameters, `choose` gives the pixel (its value), and its keys and
                 values go into the caches.
      row end    the current row becomes the rows above.

    Layers compute in the model's compute dtype (bfloat16 under mixed precision) as in the model; the
    attention softmax and the output layer stay float32.

    The model as row and pixel steps, with its current weights (prepared once, when built).

    Build it inside the traced function that runs `row`, so that it reads the variables there.
    """

    def __init__(self, model, height, width):
        self.model, self.height, self.width = model, height, width
        self.dtype = dtype = tf.as_dtype(model.compute_dtype)
        self.u_stem = model.u_stem.row_steps(dtype) if model.u_stem is not None else None
        self.u_resnets = [[resnet.row_steps(dtype) for resnet in block] for block in model.u_resnets]
        self.ul_stem_down = model.ul_stem_down.row_steps(dtype)
        self.ul_stem_right = model.ul_stem_right.pixel_steps(dtype)
        self.ul_resnets = [[resnet.pixel_steps(dtype) for resnet in block] for block in model.ul_resnets]
        self.attention = [block.pixel_steps(height, width, dtype) for block in model.attention]
        self.head = model.head.linear(tf.float32)

    @staticmethod
    def initial_state(model, batch, height, width):
        """The state before row 0 (needs the model's shapes only, not its weights)."""
        dtype = tf.as_dtype(model.compute_dtype)

        def rows(layers):
            return [[layer.initial_rows(batch, width, dtype) for layer in block] for block in layers]
        return {
            # x_pad of the row above
            "x_above": tf.zeros([batch, 1, width, model.distribution.input_channels + 1], dtype),
            "u_stem": model.u_stem.initial_rows(batch, width, dtype) if model.u_stem is not None else (),
            "u_resnets": rows(model.u_resnets),
            "ul_stem_right": model.ul_stem_right.initial_rows(batch, width, dtype),
            "ul_resnets": rows(model.ul_resnets),
            "attention": [block.initial_cache(batch, height, width, dtype) for block in model.attention],
        }

    def _vertical_stream(self, r, state, h):
        """u of row r after every u layer ([[W,B,F] per resnet] per block) and the u layers' states."""
        if self.u_stem is None:
            return [[] for _ in self.u_resnets], (), state["u_resnets"]
        u, stem_state = self.u_stem(state["u_stem"], state["x_above"])
        u = u * tf.cast(r > 0, self.dtype)  # down_shift: row 0 sees nothing above
        columns, states = [], []
        for steps, block_states in zip(self.u_resnets, state["u_resnets"]):
            columns.append([])
            states.append([])
            for resnet, resnet_state in zip(steps, block_states):
                u, resnet_state = resnet(resnet_state, u, h=h)
                columns[-1].append(tf.transpose(u[:, 0], [1, 0, 2]))
                states[-1].append(resnet_state)
        return columns, stem_state, states

    def row(self, r, state, choose, labels=None, keep_params=False):
        """Row r (a tensor) of every image: (the state after it, its values [B,W,...] (pixels float32
        [B,W,3] or codes int32 [B,W]: model.distribution's), and with keep_params the parameters
        [B,W,P] of their distributions, else None). choose(c, params [B,P]) gives the values at column
        c (drawn by a sampler, or given) from their parameters."""
        m, width, dtype = self.model, self.width, self.dtype
        batch = tf.shape(state["x_above"])[0]
        h = tf.one_hot(labels, m.config.num_classes, dtype=dtype) if m.config.num_classes else None
        u_columns, u_stem_state, u_states = self._vertical_stream(r, state, h)
        # the ul layers' projections of u, for the whole row at once ([W,B,C] each)
        u_aux = [[resnet.row_aux(u) for resnet, u in zip(block, columns)]
                 for block, columns in zip(self.ul_resnets, u_columns)]
        # the stem's down_shift term: the row above through its 1x3 conv (row 0: nothing above)
        ul_down = self.ul_stem_down.apply(state["x_above"])[:, 0] * tf.cast(r > 0, dtype)
        ul_down = tf.transpose(ul_down, [1, 0, 2])
        ul_above = [[resnet.row_start(s) for resnet, s in zip(block, states)]
                    for block, states in zip(self.ul_resnets, state["ul_resnets"])]
        stem_above = self.ul_stem_right.row_start(state["ul_stem_right"])
        finished = [block.row_start(cache, r, batch)
                    for block, cache in zip(self.attention, state["attention"])]

        def pixel(c, stem_row, rows, current, right, pixels, params_so_far):
            """Pixel (r, c) of every image: the ul stream, attention, the pixel; caches updated."""
            ul = ul_down[c] + right  # right: the stem's right_shift term, computed at pixel c-1
            new_rows, block_inputs = [], []
            for b, (resnets, attention) in enumerate(zip(self.ul_resnets, self.attention)):
                new_rows.append([])
                for k, resnet in enumerate(resnets):
                    aux_term = u_aux[b][k][c] if u_aux[b] else None
                    ul, row = resnet(rows[b][k], ul_above[b][k], c, ul, h=h, aux_term=aux_term)
                    new_rows[-1].append(row)
                block_inputs.append(ul)
                ul = attention(finished[b], current[b], ul, r, c, h)
            params = self.head(tf.cast(tf.nn.elu(ul), tf.float32))
            x = choose(c, params)
            x_in = m.network_input(x, dtype)  # what the network reads of the drawn value
            current = [attention.store(f, cache, x_in, ul_b, r, c, h) for attention, f, cache, ul_b
                       in zip(self.attention, finished, current, block_inputs)]
            right, stem_row = self.ul_stem_right(stem_row, stem_above, c, with_ones(x_in))
            if keep_params:
                params_so_far = params_so_far.write(c, params)
            return c + 1, stem_row, new_rows, current, right, pixels.write(c, x), params_so_far

        loop = [tf.constant(0),
                self.ul_stem_right.empty_row(batch, width),
                [[resnet.empty_row(batch, width) for resnet in block] for block in self.ul_resnets],
                [attention.current(cache) for attention, cache in zip(self.attention, state["attention"])],
                tf.zeros([batch, m.ul_stem_right.units], dtype),
                tf.TensorArray(m.distribution.value_dtype, size=width),
                tf.TensorArray(tf.float32, size=width) if keep_params else tf.constant(0)]
        _, stem_row, rows, current, _, pixels, params = tf.while_loop(lambda c, *_: c < width, pixel, loop)
        new_state = {
            "x_above": self.ul_stem_right.row_inputs(stem_row)[:, None],  # x_pad of row r
            "u_stem": u_stem_state,
            "u_resnets": u_states,
            "ul_stem_right": self.ul_stem_right.row_end(state["ul_stem_right"], stem_row),
            "ul_resnets": [[resnet.row_end(s, row) for resnet, s, row in zip(*block)]
                           for block in zip(self.ul_resnets, state["ul_resnets"], rows)],
            "attention": [attention.row_end(cache, row, r) for attention, cache, row
                          in zip(self.attention, state["attention"], current)],
        }
        return (new_state, swap_leading(pixels.stack()),  # [W,B,...] -> [B,W,...]
                swap_leading(params.stack()) if keep_params else None)


PixelSNAIL.steps_class = PixelSNAILSteps

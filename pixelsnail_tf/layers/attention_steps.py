"""The causal attention block one pixel at a time, from caches of the keys and values drawn so far.

The cache of a block (a tuple of tensors, made by CausalAttentionBlock.initial_cache) has two parts. The
key cells of the finished cell rows, [B, cells, size] (zeros beyond them): every later pixel may read
all of them. The cells of the current cell row, [B, cells per row, size]: written pixel by pixel and
read under the mask. A pixel's write thus copies one row of cells, not the whole cache, and its query
reads only the finished rows plus one. Keys are float32; values are in the dtype the block computes in
(as the values the full block attends to).

With downsample d a key cell is the max over a d x d block: it is set by the block's first pixel and
maxed by the others; the mask lets a query read a cell only once it is complete (until then a cell of
the current row may hold a value of the row before: masked, it weighs exactly 0).
"""

import tensorflow as tf

from pixelsnail_tf.layers.causal_attention import (last_pixel_of_key_cells, masked_softmax,
                                                   positional_background)


def _cells(block, height, width):
    """(key cells per cell row, key cells in all)."""
    per_row = -(-width // block.downsample)
    return per_row, -(-height // block.downsample) * per_row


def initial_cache(block, batch, height, width, dtype):
    """(keys, values) of the finished cell rows, then of the current one, before row 0."""
    per_row, cells = _cells(block, height, width)
    return (tf.zeros([batch, cells, block.key_size]), tf.zeros([batch, cells, block.value_size], dtype),
            tf.zeros([batch, per_row, block.key_size]), tf.zeros([batch, per_row, block.value_size], dtype))


class AttentionPixelSteps:
    """One attention block at pixel (r, c) of an H x W image: the query against the caches, and the key
    and value of the drawn pixel into them. Per row: `row_start` (what the row reads of the finished
    cell rows), then per pixel `__call__` and `store` on the current cell row's caches (`current`),
    then `row_end`."""

    def __init__(self, block, height, width, dtype):
        self.block, self.width = block, width
        self.cells_per_row, self.num_cells = _cells(block, height, width)
        self.cell_index = tf.range(self.cells_per_row)[:, None]  # [cells per row, 1]: a row's cells
        last_pixel = last_pixel_of_key_cells(height, width, block.downsample)
        self.last_pixel = tf.constant(last_pixel.reshape(-1, self.cells_per_row), tf.int32)  # by cell row
        self.background = positional_background(tf.zeros([1, height, width, 1], dtype))[0]  # [H, W, 6]
        self.kv_resnet = block.kv_resnet.dense_steps(dtype)
        self.query_resnet = block.query_resnet.dense_steps(dtype)
        self.out_resnet = block.out_resnet.dense_steps(dtype)
        self.kv_projection = block.kv_projection.linear(dtype)
        self.query_projection = block.query_projection.linear(dtype)

    @staticmethod
    def current(cache):
        """The current cell row's (keys, values)."""
        return cache[2:]

    def row_start(self, cache, r, batch):
        """What the pixels of row r read, fixed during the row: the keys and values of the finished cell
        rows [B, n, size], a mask of n ones (all readable), the last pixel of each cell of row r's own
        cell row (a pixel reads those that precede it), and the row's background [W, B, 6]."""
        d = self.block.downsample
        n = (r // d) * self.cells_per_row
        background = tf.broadcast_to(self.background[r][:, None], [self.width, batch, 6])
        return cache[0][:, :n], cache[1][:, :n], tf.ones([n]), self.last_pixel[r // d], background

    def __call__(self, finished, current, ul, r, c, h=None):
        """The block's output [B, C] at pixel (r, c) from its input ul there."""
        block = self.block
        (keys, values, readable, row_last_pixel, background), (row_keys, row_values) = finished, current
        query = self.query_projection(self.query_resnet(tf.concat([ul, background[c]], axis=-1), h=h))
        # the original's masked softmax over the finished cells and those of the current cell row
        # (readable once complete)
        q = tf.cast(query[:, None], tf.float32)
        logits = tf.concat([tf.matmul(q, keys, transpose_b=True),
                            tf.matmul(q, row_keys, transpose_b=True)], axis=-1)
        mask = tf.concat([readable, tf.cast(row_last_pixel < r * self.width + c, tf.float32)], axis=0)[None]
        weights = tf.cast(masked_softmax(logits, mask, block.key_size), values.dtype)
        n = tf.shape(keys)[1]
        mixed = (tf.matmul(weights[..., :n], values) + tf.matmul(weights[..., n:], row_values))[:, 0]
        return self.out_resnet(ul, a=tf.cast(mixed, ul.dtype), h=h)

    def store(self, finished, current, x, ul, r, c, h=None):
        """The current cell row's caches with the key and value of pixel (r, c), from x [B,C] (what the
        network reads of its drawn value) and the block's input ul there."""
        block = self.block
        kv = self.kv_projection(self.kv_resnet(
            tf.concat([tf.cast(x, ul.dtype), ul, finished[4][c]], axis=-1), h=h))
        row_keys, row_values = current
        return (self._write(row_keys, r, c, kv[:, :block.key_size]),
                self._write(row_values, r, c, kv[:, block.key_size:]))

    def _write(self, current, r, c, new):
        """The current cell row's (keys or values) with pixel (r, c)'s new [B, size] in its cell: one
        select of the row (half the time of a scatter into it on CPU: docs/speed.md)."""
        d = self.block.downsample
        cell, new = c // d, tf.cast(new, current.dtype)
        if d > 1:
            first = tf.logical_and(tf.equal(r % d, 0), tf.equal(c % d, 0))
            new = tf.where(first, new, tf.maximum(tf.gather(current, cell, axis=1), new))
        return tf.where(tf.equal(self.cell_index, cell), new[:, None], current)

    def row_end(self, cache, current, r):
        """The cache after pixel row r: the current cell row's cells stored among the finished ones
        (final once its last pixel row is done; until then they are not read from there)."""
        batch, per_row = tf.shape(current[0])[0], self.cells_per_row
        cells = (r // self.block.downsample) * per_row + tf.range(per_row)
        index = tf.reshape(tf.stack(tf.meshgrid(tf.range(batch), cells, indexing="ij"), axis=-1), [-1, 2])
        stored = [tf.tensor_scatter_nd_update(full, index, tf.reshape(row, [-1, row.shape[-1]]))
                  for full, row in zip(cache[:2], current)]
        return (*stored, *current)

"""Causal self-attention with the original's numerics: the mask, the softmax, the positional background."""

import functools

import numpy as np
import tensorflow as tf


# The original's softmax constants: masked logits get -1e10 before the row max is taken, and the
# normalizer gets +1e-6, so a row without any allowed key yields exactly zero weights (not NaN).
MASKED_LOGIT_OFFSET = 1e10
NORMALIZER_EPSILON = 1e-6
# Queries are processed in this many bands, each against only the keys it may read: the same
# numbers as the full [queries x keys] product (masked entries are exact zeros there), 44%
# less work at 32x32. 1 computes the full product as the original.
QUERY_CHUNKS = 8


def spatial_size(x):
    """(height, width) of an NHWC tensor, which must be known when the model is traced."""
    height, width = x.shape[1], x.shape[2]
    if height is None or width is None:
        raise ValueError(f"image height and width must be static, got shape {tuple(x.shape)}")
    return height, width


def last_pixel_of_key_cells(height, width, downsample):
    """Raster index of the last pixel of each key cell (d x d blocks clipped at the border)."""
    last_row = np.minimum((np.arange(-(-height // downsample)) + 1) * downsample - 1, height - 1)
    last_col = np.minimum((np.arange(-(-width // downsample)) + 1) * downsample - 1, width - 1)
    return (last_row[:, None] * width + last_col[None, :]).reshape(-1)


@functools.lru_cache(maxsize=64)
def causal_mask(height, width, downsample=1):
    """[H*W, Hk*Wk] float32 mask: query pixel i may read key cell j iff all of j's pixels precede i.

    Raster order. With downsample 1 this is j < i (strict: a pixel never reads itself, which is
    what makes feeding the current pixel into keys and values legal). With downsample d a key cell
    is a d x d block (clipped at the image border, as SAME pooling) and is allowed only when its
    last pixel in raster order comes before i: the original's min-pooled mask.
    """
    last_pixel = last_pixel_of_key_cells(height, width, downsample)
    mask = (last_pixel[None, :] < np.arange(height * width)[:, None]).astype(np.float32)
    mask.setflags(write=False)  # shared by every caller through the cache
    return mask


def masked_softmax(logits, mask, key_size):
    """The original's attention weights (float32) from logits [..., n, m] under mask [n, m]:
    logits - (1-mask)*1e10, minus the row max, divided by sqrt(key_size) inside exp, times the mask,
    over (row sum + 1e-6)."""
    logits = logits - (1.0 - mask) * MASKED_LOGIT_OFFSET
    logits = logits - tf.reduce_max(logits, axis=-1, keepdims=True)
    weights = tf.exp(logits / np.float32(np.sqrt(key_size))) * mask
    return weights / (tf.reduce_sum(weights, axis=-1, keepdims=True) + NORMALIZER_EPSILON)


def attend(q, k, v, mask):
    """The original's masked softmax attention of q [B,n,dk] over k, v [B,m,*] with mask [n,m].

    q and k float32; the weights meet v in v's dtype (bfloat16 under mixed precision)."""
    weights = masked_softmax(tf.matmul(q, k, transpose_b=True), mask, q.shape[-1])
    return tf.matmul(tf.cast(weights, v.dtype), v)


def causal_attention(key, value, query, downsample=1, query_chunks=QUERY_CHUNKS):
    """Masked dot-product attention with the original's numerics.

    key [B,H,W,dk], value [B,H,W,dv], query [B,H,W,dk] -> [B,H,W,dv]. Keys and values are max-pooled
    by `downsample` first. Softmax as the original: logits - (1-mask)*1e10, minus the row max, then
    divided by sqrt(dk) inside exp, times the mask, over (row sum + 1e-6).

    The keys a query may read are a prefix of the key cells (raster order), so the queries are cut
    into `query_chunks` bands, each computed against the longest prefix any of its queries reads:
    the skipped entries are exact zeros in the full computation, and a band without any readable
    key gives zeros, as the full computation does. Computed in float32 whatever the inputs' dtype
    (the masked softmax needs it), except the product of the weights with the values, in the values'
    dtype (bfloat16 under mixed precision, as Keras' attention layers); the result has the query's dtype.
    """
    out_dtype = query.dtype
    key, query = tf.cast(key, tf.float32), tf.cast(query, tf.float32)
    height, width = spatial_size(query)
    if downsample > 1:
        pool = [1, downsample, downsample, 1]
        key = tf.nn.max_pool2d(key, pool, pool, "SAME")
        value = tf.nn.max_pool2d(value, pool, pool, "SAME")
    mask = causal_mask(height, width, downsample)
    batch, value_size = tf.shape(query)[0], value.shape[-1]
    q = tf.reshape(query, [batch, height * width, query.shape[-1]])
    k = tf.reshape(key, [batch, -1, key.shape[-1]])
    v = tf.reshape(value, [batch, -1, value_size])
    bounds = np.unique(np.linspace(0, height * width, query_chunks + 1).astype(int))
    bands = []
    for start, stop in zip(bounds[:-1], bounds[1:]):
        readable = int(mask[stop - 1].sum())  # the band's last query reads the longest prefix
        if readable == 0:
            bands.append(tf.zeros([batch, stop - start, value_size], value.dtype))
        else:
            bands.append(attend(q[:, start:stop], k[:, :readable], v[:, :readable],
                                 mask[start:stop, :readable]))
    return tf.cast(tf.reshape(tf.concat(bands, axis=1), [batch, height, width, value_size]), out_dtype)


def positional_background(x):
    """[B,H,W,6] constant channels [r, r, r, c, c, c] with r = (i - H/2)/H and c = (j - W/2)/W, x's dtype.

    The original adds each coordinate map to 0*x (3 channels), hence three copies of each.
    """
    batch = tf.shape(x)[0]
    height, width = spatial_size(x)
    rows = (tf.range(height, dtype=tf.float32) - height / 2) / height
    cols = (tf.range(width, dtype=tf.float32) - width / 2) / width
    rows = tf.broadcast_to(rows[None, :, None, None], [batch, height, width, 3])
    cols = tf.broadcast_to(cols[None, None, :, None], [batch, height, width, 3])
    return tf.cast(tf.concat([rows, cols], axis=-1), x.dtype)

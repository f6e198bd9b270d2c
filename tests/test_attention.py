"""Causal attention: the mask, the original's softmax numerics, background channels."""

import numpy as np
import pytest
import tensorflow as tf

from pixelsnail_tf.layers import CausalAttentionBlock, causal_attention, causal_mask
from pixelsnail_tf.layers.causal_attention import positional_background

pytestmark = pytest.mark.paths

RNG = np.random.default_rng(1)


def original_mask(height, width, rate):
    """The original's construction: strict lower-triangular mask, each row min-pooled as an image."""
    n = height * width
    mask = np.tril(np.ones((n, n), np.float32), -1)
    if rate == 1:
        return mask
    rows = -(-height // rate) * rate
    cols = -(-width // rate) * rate
    # SAME pooling of a stride-rate, size-rate window pads only at the end; padding never wins a min
    padded = np.full((n, rows, cols), np.inf, np.float32)
    padded[:, :height, :width] = mask.reshape(n, height, width)
    pooled = padded.reshape(n, rows // rate, rate, cols // rate, rate).min(axis=(2, 4))
    return pooled.reshape(n, -1)


@pytest.mark.parametrize("height, width, rate",
                         [(4, 4, 1), (3, 5, 1), (8, 8, 2), (5, 7, 2), (6, 4, 2)])
def test_mask_equals_the_original_construction(height, width, rate):
    expected = original_mask(height, width, rate)
    np.testing.assert_array_equal(causal_mask(height, width, rate), expected)


def test_mask_is_strictly_causal():
    mask = causal_mask(4, 5)
    np.testing.assert_array_equal(mask, np.tril(np.ones((20, 20)), -1))


def test_pool2_rows_without_keys_at_32x32():
    # the whole first row plus pixels (1,0) and (1,1): 34 positions (the original's get_causal_mask)
    assert int(np.sum(causal_mask(32, 32, 2).sum(axis=1) == 0)) == 34


def numpy_attention(key, value, query, rate):
    """The original formula in float64, for comparison."""
    if rate > 1:
        key, value = (tf.nn.max_pool2d(t, rate, rate, "SAME").numpy() for t in (key, value))
    b, h, w, dk = query.shape
    mask = original_mask(h, w, rate).astype(np.float64)
    logits = np.einsum("bqc,bkc->bqk", query.reshape(b, h * w, dk).astype(np.float64),
                       key.reshape(b, -1, dk)) - (1 - mask) * 1e10
    logits -= logits.max(axis=-1, keepdims=True)
    e = np.exp(logits / np.sqrt(dk)) * mask
    p = e / (e.sum(-1, keepdims=True) + 1e-6)
    return np.einsum("bqk,bkc->bqc", p, value.reshape(b, -1, value.shape[-1])).reshape(b, h, w, -1)


@pytest.mark.parametrize("height, width, rate", [(4, 6, 1), (6, 6, 2), (5, 7, 2), (1, 3, 1)])
@pytest.mark.parametrize("chunks", [1, 4, 7])
def test_attention_matches_the_original_formula(height, width, rate, chunks):
    key = RNG.normal(size=(2, height, width, 4)).astype(np.float32)
    query = RNG.normal(size=(2, height, width, 4)).astype(np.float32)
    value = RNG.normal(size=(2, height, width, 3)).astype(np.float32)
    out = causal_attention(key, value, query, rate, query_chunks=chunks).numpy()
    np.testing.assert_allclose(out, numpy_attention(key, value, query, rate), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("rate", [1, 2])
def test_query_bands_equal_the_full_product_with_gradients(rate):
    """The fast path (bands of queries against readable key prefixes) == the original's full one."""
    inputs = [tf.constant(RNG.normal(size=(2, 16, 12, c)), tf.float32) for c in (8, 5, 8)]
    results = []
    for chunks in (1, 4):
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            out = causal_attention(*inputs, downsample=rate, query_chunks=chunks)
            loss = tf.reduce_sum(out * tf.sin(out))
        results.append([out] + tape.gradient(loss, inputs))
    # the same terms, summed by other matmul shapes: ~sqrt(n) * 6e-8 relative for rows of n <= 192
    # keys, and 2e-6 absolute for the gradients' entries near 0 (sums that cancel)
    for full, banded in zip(*results):
        np.testing.assert_allclose(banded.numpy(), full.numpy(), rtol=1e-5, atol=2e-6)


@pytest.mark.parametrize("rate", [1, 2])
@pytest.mark.parametrize("chunks", [1, 4])
def test_rows_without_keys_give_exact_zeros_without_nan(rate, chunks):
    shape = (2, 32, 32, 16)
    key, query = (tf.constant(RNG.normal(size=shape) * 10, tf.float32) for _ in range(2))
    value = tf.constant(RNG.normal(size=shape), tf.float32)
    with tf.GradientTape() as tape:
        tape.watch([key, query, value])
        out = causal_attention(key, value, query, rate, query_chunks=chunks)
        loss = tf.reduce_sum(out)
    grads = tape.gradient(loss, [key, query, value])
    empty = causal_mask(32, 32, rate).sum(axis=1) == 0
    flat = out.numpy().reshape(2, 32 * 32, 16)
    assert empty.sum() == (1 if rate == 1 else 34)
    assert np.all(flat[:, empty] == 0.0)
    assert np.all(np.abs(flat[:, ~empty]).sum(-1) > 0)
    assert all(np.all(np.isfinite(g.numpy())) for g in grads)


def test_background_channels():
    bg = positional_background(tf.zeros([2, 32, 16, 5])).numpy()
    assert bg.shape == (2, 32, 16, 6)
    rows = (np.arange(32) - 16) / 32
    cols = (np.arange(16) - 8) / 16
    for c in range(3):
        np.testing.assert_array_equal(bg[1, :, 3, c], rows.astype(np.float32))
        np.testing.assert_array_equal(bg[0, 5, :, 3 + c], cols.astype(np.float32))
    assert bg[0, 0, 0, 0] == -0.5 and bg[0, 31, 0, 0] == 0.46875


def test_attention_block_shapes_and_config():
    block = CausalAttentionBlock(key_size=16, value_size=4, downsample=2, dropout_p=0.1)
    ul, x = tf.random.normal([2, 6, 5, 8]), tf.random.normal([2, 6, 5, 3])
    assert block(ul, x).shape == (2, 6, 5, 8)
    assert block.kv_resnet.conv_in.V.shape == (8 + 9, 8 + 9)  # [x, ul, 6 background channels]
    assert block.kv_projection.V.shape == (17, 20)
    assert block.query_resnet.conv_in.V.shape == (8 + 6, 8 + 6)
    assert block.query_projection.V.shape == (14, 16)
    assert block.out_resnet.aux.V.shape == (4, 8)
    clone = CausalAttentionBlock.from_config(block.get_config())
    clone(ul, x)
    clone.set_weights(block.get_weights())
    np.testing.assert_array_equal(clone(ul, x).numpy(), block(ul, x).numpy())

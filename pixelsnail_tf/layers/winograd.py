"""Winograd convolution F(2x2, kh x kw) (Lavin & Gray 2016): a VALID stride-1 conv2d in fewer multiplies.

Each 2x2 block of outputs is computed from an (1+kh) x (1+kw) tile of input: the tile is transformed
(B^T d B), multiplied channel-wise by the transformed kernel (G g G^T), one matmul per tile position,
and transformed back (A^T m A). For the 2x2 kernels of the gated residual layers that is 9 products
per 4 outputs instead of 16. The F(2, r) transforms here have coefficients 0, +-1 (+-1/2 in G for
r=3): the result is as accurate as tf.nn.conv2d's against a float64 convolution (tests/test_kernels.py).

The transforms are elementwise, compiled by XLA into one pass each, in float32 whatever the input's
dtype (XLA's bfloat16 arithmetic is slow on CPU); the matmuls between them are TensorFlow's, the
fastest on CPU, in the input's dtype. The input transform also computes what comes before the
convolution (a nonlinearity, the zero padding) and the output transform adds the bias, so that
neither is another pass over memory (timings: docs/speed.md).
"""

import functools

import numpy as np
import tensorflow as tf

from pixelsnail_tf.layers.kernels import xla_fused

# F(2, r) for a 1-D kernel of size r: (B^T [n,n], G [n,r], A^T [2,n]), n = r + 1 tile inputs.
_TRANSFORMS = {
    2: (np.array([[1, -1, 0], [0, 1, 0], [0, -1, 1]]),
        np.array([[1, 0], [1, 1], [0, 1]]),
        np.array([[1, 1, 0], [0, 1, 1]])),
    3: (np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]),
        np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]]),
        np.array([[1, 1, 1, 0], [0, 1, -1, -1]])),
}
SUPPORTED_KERNEL_SIZES = tuple((kh, kw) for kh in _TRANSFORMS for kw in _TRANSFORMS)


def _combine(coefficients, tensors):
    """sum_i c_i t_i, skipping zeros and multiplying only where |c_i| != 1."""
    total = None
    for c, t in zip(coefficients, tensors):
        if c == 0:
            continue
        term = t if c == 1 else -t if c == -1 else t * float(c)
        total = term if total is None else total + term
    return total


# Each transform is one XLA computation. They return (and take) one tensor per tile position rather
# than one stacked tensor: XLA's CPU code for a stack is slower than the arithmetic itself.


@functools.lru_cache(maxsize=None)
def _input_transform(kh, kw, padding, activation):
    """XLA-fused x [B, H, W, C] -> (kh+1)(kw+1) x [B*Ty*Tx, C]: B^T d B of every tile d of
    activation(x) padded by ((top, bottom), (left, right)) = `padding` (Ty = ceil(output height / 2)).

    Computed in float32 (XLA's bfloat16 arithmetic is slow on CPU), returned in x's dtype; the
    gradient recomputes it from x. An odd output size gets one zero row (column) more, computed and
    cropped by _transform_output.
    """
    (top, bottom), (left, right) = padding

    def transform(x):
        if activation is not None:
            x = activation(x)
        height, width = x.shape[1] + top + bottom - kh + 1, x.shape[2] + left + right - kw + 1
        x = tf.pad(x, [[0, 0], [top, bottom + height % 2], [left, right + width % 2], [0, 0]])
        bt_y, bt_x = _TRANSFORMS[kh][0], _TRANSFORMS[kw][0]
        rows = [x[:, a:a + height + height % 2:2] for a in range(kh + 1)]  # row a of every tile
        tiles = []
        for row in (_combine(bt_y[t], rows) for t in range(kh + 1)):
            columns = [row[:, :, b:b + width + width % 2:2] for b in range(kw + 1)]
            tiles += [tf.reshape(_combine(bt_x[s], columns), [-1, x.shape[3]]) for s in range(kw + 1)]
        return tiles

    return xla_fused(transform)


@tf.function(jit_compile=True)
def _transform_kernel(kernel, dtype):
    """kernel [kh, kw, in, out] -> (kh+1)(kw+1) x [in, out] of `dtype`: G g G^T in float32, in the
    order of the tiles."""
    kh, kw = kernel.shape[:2]
    g_y, g_x = _TRANSFORMS[kh][1], _TRANSFORMS[kw][1]
    taps = [[kernel[i, j] for j in range(kw)] for i in range(kh)]
    by_rows = [[_combine(g_y[t], [taps[i][j] for i in range(kh)]) for j in range(kw)]
               for t in range(kh + 1)]
    return [tf.cast(_combine(g_x[s], row), dtype) for row in by_rows for s in range(kw + 1)]


@tf.function(jit_compile=True)
def _transform_output(products, bias, height, width, kh, kw):
    """(kh+1)(kw+1) x [B*Ty*Tx, C] -> [B, H, W, C]: A^T m A of every tile, plus the bias."""
    at_y, at_x = _TRANSFORMS[kh][2], _TRANSFORMS[kw][2]
    tiles_y, tiles_x, channels = (height + 1) // 2, (width + 1) // 2, products[0].shape[-1]
    m = [[tf.reshape(tf.cast(products[t * (kw + 1) + s], tf.float32), [-1, tiles_y, tiles_x, channels])
          for s in range(kw + 1)] for t in range(kh + 1)]
    by_rows = [[_combine(at_y[p], [m[t][s] for t in range(kh + 1)]) for s in range(kw + 1)]
               for p in range(2)]
    blocks = tf.stack([tf.stack([_combine(at_x[q], row) for q in range(2)]) for row in by_rows])
    # [2 (row in block), 2 (column in block), B, Ty, Tx, C] -> [B, 2Ty, 2Tx, C]
    blocks = tf.transpose(blocks, [2, 3, 0, 4, 1, 5])
    out = tf.reshape(blocks, [-1, 2 * tiles_y, 2 * tiles_x, channels])[:, :height, :width]
    return tf.cast(out, bias.dtype) + bias


def winograd_conv2d(x, kernel, bias, padding=((0, 0), (0, 0)), activation=None):
    """tf.nn.conv2d(pad(activation(x)), kernel, 1, "VALID") + bias, by F(2x2, kh x kw) Winograd.

    x [B, H, W, in] with static H, W; kernel [kh, kw, in, out] float32 with kh, kw in {2, 3};
    bias [out]; padding ((top, bottom), (left, right)) zeros; activation None or an elementwise
    function of float32 tensors (such as a fused nonlinearity's `.fn`). The activation and the
    padding are computed within the input transform's single pass over x. The matmuls run in x's
    dtype (the kernel is transformed in float32, then cast).
    """
    kh, kw = kernel.shape[:2]
    padding = tuple(tuple(int(p) for p in pair) for pair in padding)
    tiles = _input_transform(kh, kw, padding, activation)(x)
    products = [tf.matmul(t, k) for t, k in zip(tiles, _transform_kernel(kernel, x.dtype))]
    (top, bottom), (left, right) = padding
    return _transform_output(products, tf.cast(bias, x.dtype), x.shape[1] + top + bottom - kh + 1,
                             x.shape[2] + left + right - kw + 1, kh, kw)

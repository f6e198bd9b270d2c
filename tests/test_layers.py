"""Weight-normalized layers, shifts, shifted convolutions, nonlinearities, gated residual layer."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from pixelsnail_tf.layers import (DownRightShiftedConv2D, DownRightShiftedConv2DTranspose, DownShift,
                                  DownShiftedConv2D, DownShiftedConv2DTranspose, GatedResnet,
                                  RightShift, WeightNormConv2D, WeightNormConv2DTranspose,
                                  WeightNormDense, concat_elu, down_shift, right_shift)

pytestmark = pytest.mark.paths

RNG = np.random.default_rng(0)


def random(*shape):
    return RNG.normal(size=shape).astype(np.float32)


def numpy_conv_valid(x, w):
    kh, kw = w.shape[:2]
    out = np.zeros((x.shape[0], x.shape[1] - kh + 1, x.shape[2] - kw + 1, w.shape[-1]))
    for i in range(out.shape[1]):
        for j in range(out.shape[2]):
            out[:, i, j] = np.einsum("bhwc,hwcd->bd", x[:, i:i + kh, j:j + kw], w)
    return out


def set_weights(layer, v, g, b):
    layer.V.assign(v), layer.g.assign(g), layer.b.assign(b)


@pytest.mark.parametrize("kernels", ["fast", "reference"])
def test_weight_norm_conv_matches_numpy(kernels):
    layer = WeightNormConv2D(4, (2, 3), kernels=kernels)
    x = random(2, 5, 6, 3)
    layer.build(x.shape)
    v, g, b = random(2, 3, 3, 4), random(4), random(4)
    set_weights(layer, v, g, b)
    w = g * v / np.sqrt(np.sum(v.astype(np.float64) ** 2, axis=(0, 1, 2)))
    np.testing.assert_allclose(layer(x).numpy(), numpy_conv_valid(x, w) + b, rtol=1e-5, atol=1e-5)


def test_weight_norm_dense_matches_numpy_on_any_rank():
    layer = WeightNormDense(5)
    x = random(2, 3, 4, 6)
    layer.build(x.shape)
    v, g, b = random(6, 5), random(5), random(5)
    set_weights(layer, v, g, b)
    expected = x @ v * (g / np.sqrt(np.sum(v.astype(np.float64) ** 2, axis=0))) + b
    np.testing.assert_allclose(layer(x).numpy(), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("layer, x", [
    (WeightNormConv2D(6, (2, 2), init_scale=0.1), random(4, 5, 5, 3) * 3 + 1),
    (WeightNormDense(6, init_scale=1.0), random(4, 5, 5, 3) * 3 + 1),
    (WeightNormConv2D(6, (2, 3), strides=2), random(4, 6, 6, 3) * 3 + 1),
    (WeightNormConv2DTranspose(6, (2, 3), init_scale=0.1), random(4, 3, 3, 3) * 3 + 1),
])
def test_data_dependent_init_normalizes_the_output(layer, x):
    out = layer(x, init=True).numpy()
    v_before = layer.V.numpy().copy()
    axes = (0, 1, 2)
    np.testing.assert_allclose(out.mean(axis=axes), 0.0, atol=1e-5)
    np.testing.assert_allclose(out.std(axis=axes), layer.init_scale, rtol=1e-4)
    # the initialized layer computes what the init pass returned; V is left as drawn
    np.testing.assert_allclose(layer(x).numpy(), out, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(layer.V.numpy(), v_before)


def test_shifts():
    x = random(1, 3, 4, 2)
    expected_down = np.concatenate([np.zeros((1, 1, 4, 2)), x[:, :-1]], axis=1)
    expected_right = np.concatenate([np.zeros((1, 3, 1, 2)), x[:, :, :-1]], axis=2)
    np.testing.assert_array_equal(down_shift(x).numpy(), expected_down)
    np.testing.assert_array_equal(right_shift(x).numpy(), expected_right)
    np.testing.assert_array_equal(DownShift()(x).numpy(), expected_down)
    np.testing.assert_array_equal(RightShift()(x).numpy(), expected_right)


def receptive_field(layer, height=6, width=7, at=(3, 3)):
    """Input pixels (row, col offsets from `at`) that the output at `at` depends on."""
    x = tf.constant(random(1, height, width, 2))
    layer.build(x.shape)
    layer.g.assign(np.ones(layer.g.shape))
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = tf.reduce_sum(layer(x)[0, at[0], at[1]])
    grad = np.abs(tape.gradient(y, x).numpy()[0]).sum(-1)
    return {(int(i) - at[0], int(j) - at[1]) for i, j in zip(*np.nonzero(grad))}


@pytest.mark.slow
def test_shifted_convolution_receptive_fields():
    assert DownShiftedConv2D(3).kernel_size == (2, 3)
    assert DownRightShiftedConv2D(3).kernel_size == (2, 2)
    assert receptive_field(DownShiftedConv2D(3)) == {(r, c) for r in (-1, 0) for c in (-1, 0, 1)}
    assert receptive_field(DownShiftedConv2D(3, (1, 3))) == {(0, -1), (0, 0), (0, 1)}
    assert receptive_field(DownRightShiftedConv2D(3)) == {(r, c) for r in (-1, 0) for c in (-1, 0)}
    assert receptive_field(DownRightShiftedConv2D(3, (2, 1))) == {(-1, 0), (0, 0)}


def test_shifted_convolutions_keep_the_image_size():
    x = random(2, 5, 3, 4)
    assert DownShiftedConv2D(6)(x).shape == (2, 5, 3, 6)
    assert DownRightShiftedConv2D(6)(x).shape == (2, 5, 3, 6)


def test_strided_shifted_convolutions_halve_the_image():
    x = random(2, 8, 6, 3)
    assert DownShiftedConv2D(4, strides=2)(x).shape == (2, 4, 3, 4)
    assert DownRightShiftedConv2D(4, strides=2)(x).shape == (2, 4, 3, 4)
    # output (1, 1) reads the input rows 2i-1..2i, columns 2j-1..2j+1 (down) or 2j-1..2j (down-right)
    assert receptive_field(DownShiftedConv2D(3, strides=2), at=(1, 1)) == {
        (r, c) for r in (0, 1) for c in (0, 1, 2)}
    assert receptive_field(DownRightShiftedConv2D(3, strides=2), at=(1, 1)) == {
        (r, c) for r in (0, 1) for c in (0, 1)}


def input_cells(layer, x, at):
    """The input cells (row, col) that output pixel `at` of `layer` depends on."""
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = tf.reduce_sum(layer(x)[0, at[0], at[1]])
    grad = np.abs(tape.gradient(y, x).numpy()[0]).sum(-1)
    return {(int(i), int(j)) for i, j in zip(*np.nonzero(grad))}


def test_shifted_transposed_convolutions_double_the_image_causally():
    x = random(1, 3, 4, 2)
    down, down_right = DownShiftedConv2DTranspose(5), DownRightShiftedConv2DTranspose(5)
    assert down(x).shape == down_right(x).shape == (1, 6, 8, 5)
    assert down.V.shape == (2, 3, 5, 2) and down_right.V.shape == (2, 2, 5, 2)  # [kh, kw, out, in]
    for r in range(6):
        for c in range(8):
            # down-right: each input cell becomes the 2x2 block it covers, nothing else
            assert input_cells(down_right, x, (r, c)) == {(r // 2, c // 2)}
            # down: the cell's own row, centred: the cell under it, and its right neighbour too in odd columns
            expected = {(r // 2, c // 2)} | ({(r // 2, c // 2 + 1)} if c % 2 and c // 2 + 1 < 4 else set())
            assert input_cells(down, x, (r, c)) == expected


def test_weight_norm_transposed_convolution_matches_numpy():
    layer = WeightNormConv2DTranspose(4, (2, 3), strides=2)
    x = random(2, 3, 3, 5)
    layer.build(x.shape)
    v, g, b = random(2, 3, 4, 5), random(4), random(4)
    set_weights(layer, v, g, b)
    w = g[None, None, :, None] * v / np.sqrt((v ** 2).sum(axis=(0, 1, 3), keepdims=True))
    expected = np.zeros((2, 3 * 2 + 1, 3 * 2 + 2, 4)) + b
    for i in range(3):
        for j in range(3):  # input cell (i, j) spreads over the 2x3 patch at (2i, 2j)
            expected[:, 2 * i:2 * i + 2, 2 * j:2 * j + 3] += np.einsum("bc,hwoc->bhwo", x[:, i, j], w)
    np.testing.assert_allclose(layer(x).numpy(), expected, rtol=1e-5, atol=1e-5)


def test_concat_elu():
    x = random(2, 3)
    elu = lambda v: np.where(v > 0, v, np.expm1(v))  # noqa: E731
    np.testing.assert_allclose(concat_elu(x).numpy(), np.concatenate([elu(x), elu(-x)], -1), rtol=1e-6)


def test_gated_resnet_matches_its_formula():
    layer = GatedResnet(conv="nin", nonlinearity="concat_elu")
    x, a, h = random(2, 3, 3, 4), random(2, 3, 3, 5), random(2, 7)
    out = layer(x, a=a, h=h).numpy()
    assert layer.hw.shape == (7, 8) and layer.aux.V.shape == (10, 4) and layer.conv_in.V.shape == (8, 4)
    f = lambda v: concat_elu(v).numpy()  # noqa: E731
    c = layer.conv_in(f(x)).numpy() + layer.aux(f(a)).numpy()
    c = layer.conv_out(f(c)).numpy() + (h @ layer.hw.numpy())[:, None, None, :]
    expected = x + c[..., :4] / (1 + np.exp(-c[..., 4:]))
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    assert layer.conv_out.init_scale == 0.1 and layer.conv_in.init_scale == 1.0


def test_gated_resnet_dropout_only_in_training():
    layer = GatedResnet(dropout_p=0.5)
    x = random(2, 4, 4, 3)
    np.testing.assert_array_equal(layer(x).numpy(), layer(x, training=False).numpy())
    assert not np.allclose(layer(x, training=True).numpy(), layer(x).numpy())
    no_dropout = GatedResnet(dropout_p=0.0)
    np.testing.assert_array_equal(no_dropout(x, training=True).numpy(), no_dropout(x).numpy())


def test_gated_resnet_dropout_masks_are_a_function_of_the_seed():
    layer = GatedResnet(dropout_p=0.5)
    x = random(2, 4, 4, 3)
    seed = tf.constant([7, 3], tf.int64)
    first = layer(x, training=True, dropout_seed=seed).numpy()
    np.testing.assert_array_equal(layer(x, training=True, dropout_seed=seed).numpy(), first)
    assert not np.allclose(layer(x, training=True, dropout_seed=seed + [0, 1]).numpy(), first)
    # without a seed: the layer's own generator, another mask on every call
    assert not np.allclose(layer(x, training=True).numpy(), layer(x, training=True).numpy())


@pytest.mark.parametrize("make, args", [
    (lambda: WeightNormConv2D(4, (2, 3), init_scale=0.1, padding="SAME"), (random(2, 5, 5, 3),)),
    (lambda: WeightNormDense(4), (random(2, 5, 3),)),
    (lambda: DownShiftedConv2D(4, (1, 3)), (random(2, 5, 5, 3),)),
    (lambda: DownRightShiftedConv2D(4, (2, 1)), (random(2, 5, 5, 3),)),
    (lambda: DownRightShiftedConv2D(4, kernels="reference"), (random(2, 5, 5, 3),)),
    (lambda: DownShiftedConv2D(4, strides=2), (random(2, 6, 6, 3),)),
    (lambda: DownShiftedConv2DTranspose(4), (random(2, 3, 3, 5),)),
    (lambda: DownRightShiftedConv2DTranspose(4), (random(2, 3, 3, 5),)),
    (lambda: GatedResnet("down_shifted", "concat_elu", 0.3), (random(2, 5, 5, 3), random(2, 5, 5, 2))),
    (lambda: GatedResnet(kernels="reference"), (random(2, 5, 5, 3),)),
])
def test_config_round_trip(make, args):
    layer = make()
    out = layer(*args).numpy()
    clone = layer.__class__.from_config(layer.get_config())
    clone(*args)
    clone.set_weights(layer.get_weights())
    np.testing.assert_array_equal(clone(*args).numpy(), out)
    assert clone.get_config() == layer.get_config()
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(restored) is type(layer)

"""The fast kernels compute the reference ones' numbers: Winograd F(2x2, k) convolutions (values and
gradients), the XLA-fused nonlinearities and gate, and whole models."""

import numpy as np
import pytest
import tensorflow as tf

from conftest import REPORT, small_config
from tolerances import NETWORK_RTOL
from pixelsnail_tf.layers import GatedResnet, WeightNormConv2D
from pixelsnail_tf.layers.gated_resnet import GATED_SUM
from pixelsnail_tf.layers.nonlinearities import NONLINEARITIES, get_nonlinearity
from pixelsnail_tf.layers.winograd import SUPPORTED_KERNEL_SIZES, winograd_conv2d
from pixelsnail_tf.models import PixelSNAIL
from test_layers import numpy_conv_valid

pytestmark = pytest.mark.paths

RNG = np.random.default_rng(0)


def conv_float64(x, kernel, bias):
    return numpy_conv_valid(x.astype(np.float64), kernel.astype(np.float64)) + bias


def operands(kernel_size, out_height, out_width, channels=(5, 7)):
    kh, kw = kernel_size
    x = RNG.normal(size=(2, out_height + kh - 1, out_width + kw - 1, channels[0])).astype(np.float32)
    kernel = RNG.normal(size=(kh, kw) + channels).astype(np.float32)
    return x, kernel, RNG.normal(size=channels[1]).astype(np.float32)


@pytest.mark.parametrize("kernel_size", SUPPORTED_KERNEL_SIZES)
@pytest.mark.parametrize("out_size", [(4, 6), (3, 5), (1, 1)])  # odd sizes: one tile is cropped
def test_equals_the_convolution_in_float64(kernel_size, out_size):
    x, kernel, bias = operands(kernel_size, *out_size)
    out = winograd_conv2d(tf.constant(x), tf.constant(kernel), tf.constant(bias)).numpy()
    assert out.shape == (2,) + out_size + (7,)
    np.testing.assert_allclose(out, conv_float64(x, kernel, bias), rtol=0, atol=2e-5)


@pytest.mark.parametrize("kernel_size", SUPPORTED_KERNEL_SIZES)
def test_gradients_equal_the_direct_convolution(kernel_size):
    x, kernel, bias = (tf.constant(t) for t in operands(kernel_size, 4, 5))
    weights = tf.constant(RNG.normal(size=(2, 4, 5, 7)).astype(np.float32))

    def gradients(conv):
        with tf.GradientTape() as tape:
            tape.watch([x, kernel, bias])
            loss = tf.reduce_sum(tf.sin(conv(x, kernel, bias)) * weights)
        return tape.gradient(loss, [x, kernel, bias])

    direct = gradients(lambda x, k, b: tf.nn.conv2d(x, k, 1, "VALID") + b)
    for ours, expected in zip(gradients(winograd_conv2d), direct):
        np.testing.assert_allclose(ours.numpy(), expected.numpy(), rtol=0,
                                   atol=NETWORK_RTOL * np.abs(expected.numpy()).max())


@pytest.mark.bfloat16
def test_bfloat16_inputs_compute_in_bfloat16():
    x, kernel, bias = operands((2, 2), 6, 6, channels=(64, 8))
    out = winograd_conv2d(tf.cast(x, tf.bfloat16), tf.constant(kernel), tf.constant(bias, tf.bfloat16))
    assert out.dtype == tf.bfloat16
    expected = conv_float64(x, kernel, bias)
    error = np.abs(tf.cast(out, tf.float32).numpy() - expected).max() / np.abs(expected).max()
    assert error < 2e-2  # bfloat16 keeps 8 significant bits


@pytest.mark.parametrize("make", [lambda: WeightNormConv2D(4, (2, 2), kernels="xla"),
                                  lambda: GatedResnet(kernels="xla"),
                                  lambda: get_nonlinearity("elu", kernels="xla")])
def test_kernels_are_checked(make):
    with pytest.raises(ValueError, match="unknown kernels 'xla'; choose one of fast, reference"):
        make()


@pytest.mark.parametrize("name", sorted(NONLINEARITIES))
def test_fused_nonlinearities_equal_the_reference(name):
    # unit-scale values, and tiny negative ones, where exp(x) - 1 (TensorFlow's elu) and expm1(x)
    # (XLA's) differ most; XLA's exp itself may differ from TensorFlow's by an ulp of 1 (1.2e-7)
    values = np.concatenate([RNG.normal(size=100) * 3, -np.logspace(-9, -1, 20)])
    x = tf.constant(values.astype(np.float32).reshape(2, 3, 4, 5))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        fused, reference = get_nonlinearity(name, "fast")(x), get_nonlinearity(name, "reference")(x)
    np.testing.assert_allclose(fused.numpy(), reference.numpy(), rtol=1e-6, atol=1.2e-7)
    np.testing.assert_allclose(tape.gradient(fused, x).numpy(), tape.gradient(reference, x).numpy(),
                               rtol=1e-6, atol=1.2e-7)
    in_bfloat16 = get_nonlinearity(name, "fast")(tf.cast(x, tf.bfloat16))
    assert in_bfloat16.dtype == tf.bfloat16
    np.testing.assert_allclose(tf.cast(in_bfloat16, tf.float32).numpy(), reference.numpy(), rtol=1e-2,
                               atol=1e-2)


def test_fused_gated_sum_equals_the_reference():
    x = tf.constant(RNG.normal(size=(2, 3, 4, 5)).astype(np.float32))
    c = tf.constant(RNG.normal(size=(2, 3, 4, 10)).astype(np.float32) * 3)
    fused = GATED_SUM["fast"](x, c).numpy()
    np.testing.assert_allclose(fused, x + c[..., :5] / (1 + np.exp(-c[..., 5:])), rtol=1e-6, atol=1e-6)
    # terms up to ~10 (c is N(0, 9)): float32 rounds them to ~1e-6, and the sum may cancel
    np.testing.assert_allclose(fused, GATED_SUM["reference"](x, c).numpy(), rtol=1e-6, atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["h12_noup_smallkey", "model"])  # 2x2 convs; 2x2 and 2x3 convs
def test_model_outputs_and_gradients_equal_the_reference_model(variant):
    config = small_config(variant, num_classes=3)
    models = {a: PixelSNAIL(config, kernels=a) for a in ("fast", "reference")}
    images = tf.constant(RNG.uniform(-1, 1, (2, 6, 5, 3)).astype(np.float32))
    labels = tf.constant([0, 2])
    for model in models.values():
        model.build(images.shape)
    models["reference"].set_weights(models["fast"].get_weights())
    results = {}
    for name, model in models.items():
        with tf.GradientTape() as tape:
            params = model(images, labels)
            loss = tf.reduce_sum(tf.sin(params))
        results[name] = [params] + tape.gradient(loss, model.trainable_weights)
    for ours, direct in zip(results["fast"], results["reference"]):
        np.testing.assert_allclose(ours.numpy(), direct.numpy(), rtol=0,
                                   atol=NETWORK_RTOL * np.abs(direct.numpy()).max())


# The full model's convolutions: the gated layers' 2x2 (and `model`'s 2x3) convolutions, 256 -> 256 and
# 256 -> 512 channels, and odd channel counts (265 and 262, as the attention blocks' inputs).
FULL_SIZE = [((2, 2), (256, 256)), ((2, 2), (256, 512)), ((2, 3), (256, 256)), ((2, 2), (265, 16)),
             ((2, 3), (262, 16))]
# Winograd's error against float64 (root mean square over the outputs) within a multiple of the direct
# convolution's own error on the same operands. float32: the transforms add a few float32 sums of up
# to 4 tile values before and after the channel sums; measured ratios 0.7-1.0 (oneDNN), 1.6-2.0
# (Eigen, whose direct convolution is more exact). bfloat16: the direct convolution rounds only its
# output to bfloat16, Winograd also rounds the transformed input tile and kernel before the matmul and
# its output transform adds up to 4 (2x3: 6) such products: about sqrt(1 + 2 * 4) = 3 times the error;
# measured 2.5-3.2. A wrong transform is off by the outputs' own size (~30), 10^3 times more.
WINOGRAD_ERROR_FACTOR = {"float32": 3.0, "bfloat16": 4.0}


@pytest.mark.parametrize("kernel_size, channels", FULL_SIZE)
@pytest.mark.parametrize("dtype", ["float32", pytest.param("bfloat16", marks=pytest.mark.bfloat16)])
def test_full_size_convolutions_are_as_accurate_as_the_direct_one(kernel_size, channels, dtype):
    x, kernel, bias = operands(kernel_size, 6, 6, channels)
    dtype = tf.as_dtype(dtype)
    # the operands as the dtype holds them, so that both convolutions start from the same numbers
    x, kernel, bias = (tf.cast(tf.cast(t, dtype), tf.float32).numpy() for t in (x, kernel, bias))
    expected = conv_float64(x, kernel, bias)
    cast = [tf.constant(t, dtype) for t in (x, kernel, bias)]
    direct = tf.nn.bias_add(tf.nn.conv2d(cast[0], cast[1], 1, "VALID"), cast[2])
    ours = winograd_conv2d(cast[0], tf.constant(kernel), cast[2])

    def error(out):  # root mean square over the outputs: the max of a few thousand is a noisy statistic
        return np.sqrt(np.mean((tf.cast(out, tf.float64).numpy() - expected) ** 2))
    REPORT.append(f"winograd {kernel_size} {channels} {dtype.name}: error {error(ours):.2e}, "
                  f"direct {error(direct):.2e}")
    assert error(ours) <= WINOGRAD_ERROR_FACTOR[dtype.name] * error(direct)

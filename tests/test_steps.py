"""Incremental computation (the fast sampler's steps) against the layers' and the model's `call` on the
whole image: every layer's row or pixel steps, run over an image from its initial state, and the model's
steps fed the image's own pixels (teacher forcing), which must give the mixture parameters of every pixel.

Errors are measured relative to the output's largest magnitude (an element near zero has no useful
relative error): float32 within 1e-5.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import small_config
from pixelsnail_tf.config import VARIANTS
from pixelsnail_tf.layers import CausalAttentionBlock, DownRightShiftedConv2D, DownShiftedConv2D, GatedResnet
from pixelsnail_tf.models import build_model

pytestmark = pytest.mark.paths

RTOL = 1e-5
BATCH, HEIGHT, WIDTH, CHANNELS = 2, 4, 6, 5


def relative_error(actual, expected):
    expected = np.asarray(expected, np.float64)
    return np.max(np.abs(np.asarray(actual, np.float64) - expected)) / np.max(np.abs(expected))


def random(*shape, seed=0):
    return tf.constant(np.random.default_rng(seed).normal(size=shape).astype(np.float32))


def run_rows(layer, steps, x, **inputs):
    """The layer's row steps over x [B,H,W,C] (inputs: a, h as call takes them) -> [B,H',W',out]:
    the output rows of a layer with stride s are those of the input rows r = s*i."""
    state, rows = layer.initial_rows(BATCH, x.shape[2], tf.float32), []
    stride = getattr(layer, "strides", 1)
    for r in range(x.shape[1]):
        a = {"a": inputs["a"][:, r:r + 1]} if "a" in inputs else {}
        out, state = steps(state, x[:, r:r + 1], **a, **({"h": inputs["h"]} if "h" in inputs else {}))
        if r % stride == 0:
            rows.append(out)
    return tf.concat(rows, axis=1)


def run_pixels(layer, steps, x, **inputs):
    """The layer's pixel steps over x in raster order -> [B,H',W',out] (stride s: cell (i, j) is the
    output at pixel (s*i, s*j), where its last input arrives)."""
    state, stride, rows = layer.initial_rows(BATCH, x.shape[2], tf.float32), getattr(layer, "strides", 1), []
    for r in range(x.shape[1]):
        above, row, outputs = steps.row_start(state), steps.empty_row(BATCH, x.shape[2]), []
        for c in range(x.shape[2]):
            extra = {"a": inputs["a"][:, r, c]} if "a" in inputs else {}
            if "h" in inputs:
                extra["h"] = inputs["h"]
            out, row = steps(row, above, c, x[:, r, c], **extra)
            if c % stride == 0:
                outputs.append(out)
        state = steps.row_end(state, row)
        if r % stride == 0:
            rows.append(tf.stack(outputs, axis=1))
    return tf.stack(rows, axis=1)


@pytest.mark.parametrize("kernel_size,strides", [((2, 3), 1), ((1, 3), 1), ((2, 3), 2)])
def test_down_shifted_convolution_row_steps(kernel_size, strides):
    layer = DownShiftedConv2D(7, kernel_size, strides=strides, kernels="reference")
    x = random(BATCH, HEIGHT, WIDTH, CHANNELS)
    expected = layer(x)
    layer.b.assign(random(7, seed=1))  # a bias, so that the steps must add it exactly once
    expected = layer(x)
    assert relative_error(run_rows(layer, layer.row_steps(tf.float32), x), expected) <= RTOL


@pytest.mark.parametrize("kernel_size,strides", [((2, 2), 1), ((2, 1), 1), ((2, 2), 2)])
def test_down_right_shifted_convolution_pixel_steps(kernel_size, strides):
    layer = DownRightShiftedConv2D(7, kernel_size, strides=strides, kernels="reference")
    x = random(BATCH, HEIGHT, WIDTH, CHANNELS)
    layer(x)
    layer.b.assign(random(7, seed=1))
    expected = layer(x)
    assert relative_error(run_pixels(layer, layer.pixel_steps(tf.float32), x), expected) <= RTOL
    # and a row at a time
    assert relative_error(run_rows(layer, layer.row_steps(tf.float32), x), expected) <= RTOL


def gated_inputs(nonlinearity):
    x, a = random(BATCH, HEIGHT, WIDTH, CHANNELS, seed=2), random(BATCH, HEIGHT, WIDTH, 3, seed=3)
    h = tf.one_hot([1, 0], 2)
    return x, dict(a=a, h=h), nonlinearity


@pytest.mark.parametrize("nonlinearity", ["concat_elu", "elu"])
def test_gated_layer_row_and_pixel_steps(nonlinearity):
    x, inputs, _ = gated_inputs(nonlinearity)
    for conv, by in (("down_shifted", "row"), ("down_right_shifted", "pixel"), ("down_right_shifted", "row")):
        resnet = GatedResnet(conv, nonlinearity=nonlinearity, kernels="reference")
        expected = resnet(x, **inputs)
        if by == "row":
            actual = run_rows(resnet, resnet.row_steps(tf.float32), x, **inputs)
        else:
            actual = run_pixels(resnet, resnet.pixel_steps(tf.float32), x, **inputs)
        assert relative_error(actual, expected) <= RTOL, (conv, by)


def test_gated_dense_layer_steps():
    x, inputs, _ = gated_inputs("concat_elu")
    resnet = GatedResnet("nin", nonlinearity="concat_elu", kernels="reference")
    expected = resnet(x, **inputs)
    step = resnet.dense_steps(tf.float32)
    actual = [[step(x[:, r, c], a=inputs["a"][:, r, c], h=inputs["h"]) for c in range(WIDTH)]
              for r in range(HEIGHT)]
    assert relative_error(tf.stack([tf.stack(row, 1) for row in actual], 1), expected) <= RTOL


@pytest.mark.parametrize("downsample,height,width", [(1, 4, 6), (2, 3, 5)])
def test_attention_block_pixel_steps(downsample, height, width):
    """Keys and values from the drawn pixels x and the block's input ul, the query's mask and softmax
    from the caches; odd sides: pooled key cells clipped at the border."""
    keras.utils.set_random_seed(0)
    block = CausalAttentionBlock(4, 6, downsample, kernels="reference")
    ul, x, h = (random(BATCH, height, width, CHANNELS, seed=4), random(BATCH, height, width, 3, seed=5),
                tf.one_hot([0, 1], 2))
    expected = block(ul, x, h=h)
    steps, cache = block.pixel_steps(height, width, tf.float32), block.initial_cache(BATCH, height, width,
                                                                                     tf.float32)
    rows = []
    for r in range(height):
        finished, current, outputs = steps.row_start(cache, r, BATCH), steps.current(cache), []
        for c in range(width):
            outputs.append(steps(finished, current, ul[:, r, c], r, c, h))
            current = steps.store(finished, current, x[:, r, c], ul[:, r, c], r, c, h)
        cache = steps.row_end(cache, current, r)
        rows.append(tf.stack(outputs, axis=1))
    actual = tf.stack(rows, axis=1)
    assert relative_error(actual, expected) <= RTOL
    # the attention matters here: without it (out_resnet of ul alone) the outputs differ
    assert relative_error(block.out_resnet(ul, a=tf.zeros([BATCH, height, width, 6]), h=h), expected) > 1e-2


def teacher_forced_parameters(model, images, labels=None):
    """The mixture parameters [B,H,W,10*M] the model's steps give each pixel when fed the images' own
    pixels (one traced function per row)."""
    batch, height, width = images.shape[:3]

    @tf.function
    def row(r, state):
        def given(c, params):
            return tf.gather(images, r, axis=1)[:, c]
        state, _, params = model.steps(height, width).row(r, state, given, labels, keep_params=True)
        return state, params

    state, rows = model.initial_steps_state(batch, height, width), []
    for r in range(height):
        state, params = row(tf.constant(r), state)
        rows.append(params)
    return tf.stack(rows, axis=1)


def initialized_model(variant, num_classes=0, dtype=None, seed=0, output="logistic_mixture"):
    """A model of the variant after data-dependent init on random images, and 3 images of its size (code
    maps, for output="categorical")."""
    codes = output == "categorical"
    config = small_config(model=variant, nr_resnet=2, num_classes=num_classes, output=output,
                          num_codes=5 if codes else 0)
    side = 8 if variant == "pxpp" else 4  # pxpp: its H/4 level needs more than one cell for the init
    keras.utils.set_random_seed(seed)
    model = build_model(config, **({"dtype": dtype} if dtype else {}))
    rng = np.random.default_rng(seed)
    labels = tf.constant(np.arange(3) % num_classes) if num_classes else None

    def draw():
        if codes:
            return rng.integers(0, 5, (3, side, side + 4))
        return np.round(rng.uniform(-1, 1, (3, side, side + 4, 3)) * 127.5) / 127.5

    model.initialize(draw().astype(np.int32 if codes else np.float32), labels)
    images = tf.constant(draw(), tf.int32 if codes else tf.float32)
    return model, images, labels


@pytest.mark.slow
@pytest.mark.parametrize("output", ["logistic_mixture", "categorical"])
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_model_steps_give_every_pixels_parameters(variant, output):
    """The model's steps (the fast sampler's wiring, written beside the model's own) give every pixel the
    parameters of the whole-image call: fails when one of the two wirings changes without the other."""
    model, images, labels = initialized_model(variant, num_classes=2, output=output)
    expected = model(images, labels)
    assert relative_error(teacher_forced_parameters(model, images, labels), expected) <= RTOL


@pytest.mark.slow
@pytest.mark.bfloat16
@pytest.mark.parametrize("variant", ["h12_pool2_smallkey", "model", "pxpp"])
def test_model_steps_in_bfloat16_are_as_accurate_as_the_model(variant):
    """In bfloat16 the steps and the full model round differently (other summation orders, other
    shapes), so they cannot agree to float32 precision; they compute the same math at the same
    precision, so the steps must be as close to the float32 model as the bfloat16 model is: RMS error
    within 1.5x of the full bfloat16 model's (and far below the scale of the parameters)."""
    reference, images, labels = initialized_model(variant, num_classes=2)
    model, _, _ = initialized_model(variant, num_classes=2, dtype="mixed_bfloat16")
    model.set_weights(reference.get_weights())
    exact = reference(images, labels).numpy().astype(np.float64)

    def rms_error(params):
        return np.sqrt(np.mean((params.numpy().astype(np.float64) - exact) ** 2))
    full, steps = rms_error(model(images, labels)), rms_error(teacher_forced_parameters(model, images, labels))
    assert 0 < steps <= 1.5 * full, (steps, full)
    assert full < 0.05 * np.sqrt(np.mean(exact ** 2))

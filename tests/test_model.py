"""The model: causality of every variant, published parameter counts, round trips, input checks."""

import numpy as np
import pytest
import tensorflow as tf

from conftest import small_config
from tolerances import NETWORK_RTOL
from pixelsnail_tf import checkpoints
from pixelsnail_tf.config import PRESETS, VARIANTS
from pixelsnail_tf.distributions.logistic_mixture import discretized_mix_logistic_pixel_log_prob
from pixelsnail_tf.models import PixelCNNPP, PixelSNAIL, build_model

RNG = np.random.default_rng(2)


def initialized_model(config, height=5, width=7):
    model = build_model(config)
    labels = np.arange(4) % config.num_classes if config.num_classes else None
    model.initialize(RNG.uniform(-1, 1, size=(4, height, width, 3)).astype(np.float32), labels)
    return model


@pytest.mark.slow
@pytest.mark.parametrize("model_name", sorted(VARIANTS))
def test_every_variant_is_causal(model_name):
    """d output(i) / d x(j) == 0 exactly for every j >= i (raster order); > 0 for some j < i."""
    height, width = (8, 4) if model_name == "pxpp" else (5, 7)  # pxpp: sides that are multiples of 4
    model = initialized_model(small_config(model_name), height, width)
    x = tf.constant(RNG.uniform(-1, 1, size=(1, height, width, 3)).astype(np.float32))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        out = tf.reduce_sum(model(x), axis=-1)[0]  # [H, W]
    jacobian = tape.jacobian(out, x, experimental_use_pfor=False).numpy()  # [H,W,1,H,W,3]
    influence = np.abs(jacobian).sum(axis=(2, 5)).reshape(height * width, height * width)
    assert np.all(np.isfinite(influence))
    np.testing.assert_array_equal(np.triu(influence), 0.0)
    # and it is not vacuous: every pixel sees its left neighbour and the pixel above it
    index = np.arange(height * width).reshape(height, width)
    assert np.all(influence[index[:, 1:], index[:, :-1]] > 0)
    assert np.all(influence[index[1:], index[:-1]] > 0)


@pytest.mark.slow
def test_per_pixel_log_likelihood_sums_to_the_images_and_each_term_is_causal():
    """A pixel's term depends on that pixel and the earlier ones only; the terms sum to log_prob."""
    height, width = 3, 4
    model = initialized_model(small_config("h12_pool2_smallkey", num_classes=2), height, width)
    images, labels = RNG.integers(0, 256, size=(2, height, width, 3), dtype=np.uint8), np.array([1, 0])
    per_pixel = model.per_pixel_log_prob(images, labels).numpy()
    assert per_pixel.shape == (2, height, width) and np.all(per_pixel < 0)
    np.testing.assert_allclose(per_pixel.sum(axis=(1, 2)), model.log_prob(images, labels).numpy(), rtol=1e-5)
    x = tf.constant(images[:1].astype(np.float32) / 127.5 - 1)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        terms = discretized_mix_logistic_pixel_log_prob(x, model(x, labels[:1]))[0]  # [H, W]
    jacobian = tape.jacobian(terms, x, experimental_use_pfor=False).numpy()  # [H,W,1,H,W,3]
    influence = np.abs(jacobian).sum(axis=(2, 5)).reshape(height * width, height * width)
    np.testing.assert_array_equal(np.triu(influence, k=1), 0.0)
    assert np.all(np.diag(influence) > 0)  # a pixel's term is its own likelihood
    index = np.arange(height * width).reshape(height, width)
    assert np.all(influence[index[:, 1:], index[:, :-1]] > 0)  # and on the pixel to its left


@pytest.mark.slow
@pytest.mark.parametrize("name, preset, count", [
    ("h12_noup_smallkey", "cifar10", 46_180_788),
    ("h12_pool2_smallkey", "cifar10_pool2", 46_180_788),
    ("h12_noup_smallkey", "imagenet32", 46_237_548),
])
def test_published_configs_have_the_original_parameter_counts(name, preset, count):
    model = PixelSNAIL(PRESETS[preset])
    model.build((None, 32, 32, 3))
    assert model.config.model == name
    assert model.count_params() == count
    entries = checkpoints.tf1_name_map(model)
    assert len(entries) == 621
    shapes = {e.name: list(e.variable.shape) for e in entries}
    assert sum(n.endswith("/V") and "conv2d" in n for n in shapes) == 98
    assert sum(n.endswith("/V") and "dense" in n for n in shapes) == 109
    mixtures = PRESETS[preset].nr_logistic_mix
    # the original's creation order and shapes of one block (b = 11) and the head
    b = 11
    assert shapes["model/conv2d_0/V"] == [1, 3, 4, 256] and shapes["model/conv2d_1/V"] == [2, 1, 4, 256]
    assert shapes[f"model/conv2d_{2 + 8 * b + 7}/V"] == [2, 2, 256, 512]
    expected_block = [[265, 265], [265, 530], [265, 144], [262, 262], [262, 524], [262, 16],
                      [256, 256], [128, 256], [256, 512]]
    assert [shapes[f"model/dense_{9 * b + k}/V"] for k in range(9)] == expected_block
    assert shapes["model/dense_108/V"] == [256, 10 * mixtures]
    assert entries[0].second_moment == "Variable_1" and entries[-1].first_moment == "Variable_1242"


@pytest.mark.slow
@pytest.mark.parametrize("changes, count", [
    (dict(model="h8_noup_smallkey"), 30_797_840),
    (dict(resnet_nonlinearity="concat_elu"), 91_681_320),
    (dict(nr_resnet=5), 55_636_404),
])
def test_other_parameter_counts(changes, count):
    model = PixelSNAIL(PRESETS["cifar10"].replace(**changes))
    model.build((None, 32, 32, 3))
    assert model.count_params() == count


def test_tf1_order_of_the_model_with_a_vertical_stream():
    model = PixelSNAIL(small_config("model", nr_resnet=2, attn_rep=1))
    model.build((None, 4, 4, 3))
    shapes = [list(e.variable.shape) for e in checkpoints.tf1_name_map(model)][::3]
    f = 8
    assert shapes[:3] == [[2, 3, 4, f], [1, 3, 4, f], [2, 1, 4, f]]  # u stem first
    # r = 0: u layer (2x3 convs), ul layer (2x2 conv, aux dense, 2x2 conv)
    assert shapes[3:8] == [[2, 3, f, f], [2, 3, f, 2 * f], [2, 2, f, f], [f, f], [2, 2, f, 2 * f]]
    assert shapes[13 + 2] == [f + 9, 2 * f]  # full key: key and value of F channels each


def test_pxpp_is_a_pixelcnn_pp_of_three_resolutions():
    model = build_model(small_config("pxpp"))
    assert isinstance(model, PixelCNNPP)
    model.build(None)
    assert [len(stage) for stage in model.up] == [1, 1, 1] and [len(s) for s in model.down] == [1, 2, 2]
    with pytest.raises(ValueError, match="model=pxpp has no attention blocks"):
        small_config("pxpp", attn_rep=2)
    with pytest.raises(ValueError, match="--model=pxpp is not a PixelSNAIL; build it with "):
        PixelSNAIL(small_config("pxpp"))
    with pytest.raises(ValueError, match="a pxpp model initializes on images of at least 8 rows"):
        model.initialize(np.zeros([2, 4, 8, 3], np.float32))
    with pytest.raises(ValueError, match="a pxpp model needs image sides that are multiples of 4, got 6x8"):
        model.log_prob(np.zeros((1, 6, 8, 3), np.uint8))



@pytest.mark.slow
@pytest.mark.paths
def test_any_image_size_and_batch_size():
    model = initialized_model(small_config())
    for shape in [(1, 1, 1, 3), (3, 6, 4, 3), (2, 9, 11, 3)]:
        images = RNG.integers(0, 256, size=shape, dtype=np.uint8)
        ll = model.log_prob(images).numpy()
        assert ll.shape == (shape[0],) and np.all(np.isfinite(ll)) and np.all(ll < 0)
        # per-image values do not depend on the rest of the batch (up to kernels blocked by batch size)
        np.testing.assert_allclose(model.log_prob(images[:1]).numpy(), ll[:1], rtol=NETWORK_RTOL)


@pytest.mark.slow
def test_class_conditioning_changes_the_likelihood():
    model = initialized_model(small_config(num_classes=3))
    images = RNG.integers(0, 256, size=(2, 4, 4, 3), dtype=np.uint8)
    a = model.log_prob(images, np.array([0, 0])).numpy()
    b = model.log_prob(images, np.array([2, 2])).numpy()
    assert not np.allclose(a, b)
    # a conditioning matrix in every gated layer: 1 residual + 3 in attention, 2 blocks
    assert sum("hw" in w.path for w in model.trainable_weights) == 2 * (1 + 3)


@pytest.mark.slow
@pytest.mark.parametrize("config", [small_config("h12_pool2_smallkey", num_classes=2, dropout_p=0.5),
                                    small_config("pxpp", num_classes=2, dropout_p=0.5)])
def test_config_and_keras_save_round_trips(tmp_path, config):
    model = initialized_model(config, 8, 8)
    x = RNG.uniform(-1, 1, size=(2, 8, 8, 3)).astype(np.float32)
    labels = np.array([0, 1])
    out = model(x, labels).numpy()
    clone = type(model).from_config(model.get_config())
    clone.build(x.shape)
    clone.set_weights(model.get_weights())
    np.testing.assert_array_equal(clone(x, labels).numpy(), out)
    path = str(tmp_path / "model.keras")
    model.save(path)
    import keras
    loaded = keras.saving.load_model(path)
    assert loaded.config == model.config
    np.testing.assert_array_equal(loaded(x, labels).numpy(), out)


@pytest.mark.parametrize("images, message", [
    (np.zeros((4, 4, 3), np.uint8), r"shape \[batch, height, width, 3\].*\(4, 4, 3\)"),
    (np.zeros((1, 4, 4, 1), np.uint8), r"\(RGB\), got shape \(1, 4, 4, 1\)"),
    (np.zeros((1, 4, 4, 4), np.uint8), r"\(RGB\), got shape \(1, 4, 4, 4\)"),
    (np.zeros((1, 4, 4, 3), np.int32), "uint8 in \\[0, 255\\] or float32 in \\[-1, 1\\], got dtype int32"),
    (np.zeros((1, 4, 4, 3), np.float64), "got dtype float64"),
    (np.full((1, 4, 4, 3), 1.5, np.float32),
     r"float images must lie in \[-1, 1\], got values in \[1.5, 1.5\]"),
    (np.full((1, 4, 4, 3), 255, np.float32), r"must lie in \[-1, 1\]"),
    (np.full((1, 4, 4, 3), np.nan, np.float32), "got NaN/Inf values"),
])
def test_bad_images_are_refused_with_one_line(images, message):
    model = PixelSNAIL(small_config())
    for call in (model.log_prob, model.bits_per_dim, model.initialize):
        with pytest.raises(ValueError, match=message) as error:
            call(images)
        assert "\n" not in str(error.value)


@pytest.mark.parametrize("num_classes, labels, message", [
    (0, [0], "not class-conditional"),
    (3, None, "labels are required"),
    (3, [0.5], "must be integers of shape \\(1,\\)"),
    (3, [[1]], "must be integers of shape \\(1,\\)"),
    (3, [3], r"must lie in \[0, 3\)"),
])
def test_bad_labels_are_refused(num_classes, labels, message):
    model = PixelSNAIL(small_config(num_classes=num_classes))
    with pytest.raises(ValueError, match=message):
        model.log_prob(np.zeros((1, 4, 4, 3), np.uint8), labels)


@pytest.mark.slow
@pytest.mark.paths
@pytest.mark.parametrize("model_name", ["h12_pool2_smallkey", "model"])
def test_xla_compiled_forward_equals_the_graph_one(model_name):
    """The layers compile with XLA (jit_compile=True, e.g. for GPUs) and compute the same numbers."""
    model = PixelSNAIL(small_config(model=model_name, num_classes=2))
    images = np.random.default_rng(3).uniform(-1, 1, (2, 5, 6, 3)).astype(np.float32)
    labels = tf.constant([1, 0])
    model.initialize(images, labels)
    graph = tf.function(lambda x: model(x, labels))(images).numpy()
    xla = tf.function(lambda x: model(x, labels), jit_compile=True)(images).numpy()
    np.testing.assert_allclose(xla, graph, rtol=NETWORK_RTOL, atol=NETWORK_RTOL)  # unit-scale outputs
    assert np.abs(graph).max() > 0.1


@pytest.mark.slow
@pytest.mark.parametrize("model_name", ["pxpp", "h12_noup_smallkey", "model"])
def test_recomputation_without_a_dropout_seed_replays_the_forward_masks(model_name):
    """A recomputing model called in training without a dropout seed: its backward pass uses the masks
    of its forward pass, so loss and gradients equal those of the same model without recomputation in
    the same random state (every variable copied, the seed generators' states included)."""
    config = small_config(model_name, dropout_p=0.5)
    plain = initialized_model(config, 8, 8)
    recomputing = build_model(config, recompute=True)
    recomputing.build(None)
    assert [v.shape for v in plain.variables] == [v.shape for v in recomputing.variables]
    for source, target in zip(plain.variables, recomputing.variables):
        target.assign(source)
    x = tf.constant(RNG.uniform(-1, 1, size=(2, 8, 8, 3)).astype(np.float32))
    losses, gradients = [], []
    for model in (plain, recomputing):
        with tf.GradientTape() as tape:
            loss = -tf.reduce_sum(model.distribution.log_prob(x, model(x, training=True)))
        losses.append(float(loss))
        gradients.append(tape.gradient(loss, model.trainable_weights))
    np.testing.assert_allclose(losses[1], losses[0], rtol=NETWORK_RTOL)
    # A gradient sums thousands of float32 terms of both signs: the two paths' roundings differ by up
    # to ~2e-4 of a weight's largest gradient (measured). Masks redrawn in the backward pass moved them
    # by 3.4 times it (pxpp, before the model drew its seeds outside the recomputed units).
    for weight, g_plain, g_recomputed in zip(plain.trainable_weights, *gradients):
        np.testing.assert_allclose(g_recomputed.numpy(), g_plain.numpy(), rtol=1e-3,
                                   atol=1e-3 * float(tf.reduce_max(tf.abs(g_plain))), err_msg=weight.path)

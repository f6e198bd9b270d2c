"""Dropout and concat_elu against the original code's own numbers (fixtures/dropout, made by
benchmarks/original_dropout_bundle.py: the original with resnet_nonlinearity=concat_elu, dropout_p=0.5).

A dropout mask is a random draw, which two programs cannot share; the bundle fixes them instead: the
original's k-th dropout call multiplied by a recorded 0/1 mask (and 1/keep_prob), and here TensorFlow's
stateless dropout, which our gated layers call, is replaced by the same: so the same masks are where the
original put them (between the nonlinearity and the second convolution of every gated layer, in the init
pass too) only if the numbers agree.
"""

import json

import numpy as np
import pytest
import tensorflow as tf

from conftest import FIXTURES
from test_reference import relative_error
from tolerances import NETWORK_RTOL
from test_training import GRADIENT_RTOL
from pixelsnail_tf import checkpoints
from pixelsnail_tf.config import ModelConfig
from pixelsnail_tf.models import build_model

pytestmark = [pytest.mark.paths, pytest.mark.slow]  # ~70 s in all: the fast kernels compile

BUNDLE = FIXTURES / "dropout"
CONFIG = ModelConfig(**json.loads((BUNDLE / "config.json").read_text()))
REFERENCE = dict(np.load(BUNDLE / "reference.npz"))
AFTER_INIT = str(BUNDLE / "after_init" / "model.ckpt")


def recorded_masks(monkeypatch, which):
    """Replaces TensorFlow's stateless dropout by the bundle's masks `which` ("init" or "train"), in call
    order; returns the list of masks not yet used."""
    masks = [REFERENCE[f"mask_{which}/{k}"] for k in range(sum(k.startswith(f"mask_{which}/")
                                                                 for k in REFERENCE))]
    left = list(masks)

    def dropout(x, rate, seed, **unused):
        mask = left.pop(0)
        assert tuple(x.shape) == mask.shape, (x.shape, mask.shape)
        return x * (1.0 / (1.0 - rate)) * mask

    monkeypatch.setattr(tf.nn.experimental, "stateless_dropout", dropout)
    return left


@pytest.fixture(params=["fast", "reference"])
def model(request):
    m = build_model(CONFIG, kernels=request.param)
    m.build((None, 8, 8, 3))
    return m


def training_loss(model, images):
    """The summed negative log-likelihood with dropout on (training=True), as the original's loss."""
    x = model.distribution.check(images)
    params = model(x, training=True, dropout_seed=tf.constant([3, 4], tf.int64))
    return -tf.reduce_sum(model.distribution.log_prob(x, params))


def test_concat_elu_network_equals_the_original(model):
    checkpoints.load_tf1_checkpoint(model, AFTER_INIT, use_ema=False)
    assert relative_error(model(REFERENCE["x_test_u8"].astype(np.float32) / 127.5 - 1).numpy(),
                          REFERENCE["test_out"]) <= NETWORK_RTOL
    np.testing.assert_allclose(-model.log_prob(REFERENCE["x_test_u8"]).numpy().sum(), REFERENCE["test_loss"],
                               rtol=NETWORK_RTOL)


def test_init_with_dropout_equals_the_original_on_its_masks(model, monkeypatch):
    entries = checkpoints.tf1_name_map(model)
    for e in entries:  # the original's draw of V; g and b deliberately wrong
        value = REFERENCE["params_init/" + e.name] if e.name.endswith("/V") else 7.0
        e.variable.assign(np.broadcast_to(np.float32(value), e.variable.shape))
    left = recorded_masks(monkeypatch, "init")
    model.initialize(REFERENCE["x_init_u8"], dropout_seed=tf.constant([1, 2], tf.int64))
    assert not left  # every mask used: dropout acts in the init pass, in every gated layer
    for e in entries:
        expected = REFERENCE["params_init/" + e.name]
        scale = max(np.abs(expected).max(), 0.1 if e.name.endswith("/b") else 0.0)  # as test_reference
        assert np.max(np.abs(e.variable.numpy() - expected)) <= NETWORK_RTOL * scale, e.name


def test_training_gradients_with_dropout_equal_the_original_on_its_masks(model, monkeypatch):
    entries = checkpoints.tf1_name_map(model)
    checkpoints.load_tf1_checkpoint(model, AFTER_INIT, use_ema=False)
    left = recorded_masks(monkeypatch, "train")
    with tf.GradientTape() as tape:
        loss = training_loss(model, REFERENCE["x_train_u8"])
    grads = tape.gradient(loss, [e.variable for e in entries])
    assert not left
    np.testing.assert_allclose(float(loss), REFERENCE["train_loss"], rtol=1e-6)
    for e, g in zip(entries, grads):
        expected = REFERENCE["grads_step1/" + e.name]
        np.testing.assert_allclose(g.numpy(), expected, rtol=0, atol=GRADIENT_RTOL * np.abs(expected).max(),
                                   err_msg=e.name)


def test_without_the_masks_the_numbers_differ(model, monkeypatch):
    """The comparison can fail: masks drawn otherwise (here: all kept) give a loss 100 times further from
    the original's than the tolerance of the comparisons above (at the init the network is near uniform,
    so dropout moves the loss by only ~8e-4 of itself)."""
    checkpoints.load_tf1_checkpoint(model, AFTER_INIT, use_ema=False)
    monkeypatch.setattr(tf.nn.experimental, "stateless_dropout",
                        lambda x, rate, seed, **unused: x * (1.0 / (1.0 - rate)))
    loss = float(training_loss(model, REFERENCE["x_train_u8"]))
    assert abs(loss - float(REFERENCE["train_loss"])) > 100 * 1e-6 * abs(float(REFERENCE["train_loss"]))

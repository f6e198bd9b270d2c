"""Our model on the original code's own weights and data (fixtures/tiny): same numbers."""

import numpy as np
import pytest

from conftest import TINY
from tolerances import NETWORK_RTOL
from pixelsnail_tf import tf1_checkpoint
from pixelsnail_tf.layers.kernels import KERNELS
from pixelsnail_tf.model import PixelSNAIL

pytestmark = pytest.mark.paths

RTOL = NETWORK_RTOL  # the original's TF1 graph and ours: two float32 paths


def relative_error(actual, expected):
    return np.max(np.abs(actual - expected)) / np.max(np.abs(expected))


@pytest.fixture(scope="module", params=KERNELS)
def model(tiny_config, request):
    """Both kernels: fast (the default) and reference (TensorFlow's own ops, as the original)."""
    m = PixelSNAIL(tiny_config, kernels=request.param)
    m.build((None, 8, 8, 3))
    return m


@pytest.mark.parametrize("checkpoint, use_ema, key", [
    ("after_init", False, "raw_after_init"),
    ("trained", False, "raw_final"),
    ("trained", True, "ema_final"),
])
def test_mixture_parameters_and_log_likelihood(model, tiny_reference, checkpoint, use_ema, key):
    tf1_checkpoint.load_tf1_checkpoint(model, str(TINY / checkpoint / "model.ckpt"), use_ema=use_ema)
    out = model(tiny_reference["x_test"]).numpy()
    assert relative_error(out, tiny_reference[f"out_test_{key}"]) <= RTOL
    ll = model.log_prob(tiny_reference["x_test_u8"]).numpy()
    np.testing.assert_allclose(ll, tiny_reference[f"ll_test_{key}"], rtol=RTOL)
    bpd = model.bits_per_dim(tiny_reference["x_test_u8"]).numpy()
    np.testing.assert_allclose(bpd, tiny_reference[f"bpd_test_{key}"], rtol=RTOL)


def test_float_and_uint8_inputs_agree(model, tiny_reference):
    tf1_checkpoint.load_tf1_checkpoint(model, str(TINY / "trained"), use_ema=True)
    np.testing.assert_array_equal(model.log_prob(tiny_reference["x_test_u8"]).numpy(),
                                  model.log_prob(tiny_reference["x_test"]).numpy())


def test_data_dependent_init_reproduces_the_original(model, tiny_reference):
    entries = tf1_checkpoint.tf1_name_map(model)
    for e in entries:  # the original's random draw of V; g and b deliberately wrong
        if e.name.endswith("/V"):
            e.variable.assign(tiny_reference["params_after_init/" + e.name])
        else:
            e.variable.assign(np.full(e.variable.shape, 7.0, np.float32))
    out = model.initialize(tiny_reference["x_init_u8"]).numpy()
    assert relative_error(out, tiny_reference["out_init_pass"]) <= RTOL
    for e in entries:
        expected = tiny_reference["params_after_init/" + e.name]
        assert relative_error(e.variable.numpy(), expected) <= RTOL, e.name
    # the initialized model computes what the init pass returned
    assert relative_error(model(tiny_reference["x_init"]).numpy(), out) <= RTOL


def test_parameter_count_and_order(model, tiny_reference):
    names = [e.name for e in tf1_checkpoint.tf1_name_map(model)]
    assert names == list(tiny_reference["param_names"])
    assert sum(int(np.prod(v.shape)) for v in model.trainable_weights) == 58158

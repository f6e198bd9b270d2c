"""Mixed precision (bfloat16, float16): compute in it, float32 weights, softmax, output layer, likelihood
and training state (float16's loss scaling: test_float16.py)."""

import numpy as np
import pytest
import tensorflow as tf

from conftest import small_config, trained_tiny_model
from pixelsnail_tf.distributions import distribution_of
from pixelsnail_tf.models import PixelSNAIL
from pixelsnail_tf.sampling import CachedSampler, NaiveSampler, draw_noise
from pixelsnail_tf.training import TrainConfig, build_trainer

pytestmark = pytest.mark.paths

MIXED = "mixed_bfloat16"
# The policies, each with the dtype the layers compute in; bfloat16 tests are skipped where the CPU
# cannot run them (conftest.py).
POLICIES = [pytest.param("mixed_bfloat16", "bfloat16", marks=pytest.mark.bfloat16, id="bfloat16"),
            pytest.param("mixed_float16", "float16", id="float16")]


@pytest.mark.slow
@pytest.mark.parametrize("policy, compute", POLICIES)
@pytest.mark.parametrize("use_ema", [True, False])
def test_bits_per_dim_within_half_a_percent_of_float32(tiny_config, tiny_reference, use_ema, policy, compute):
    model = trained_tiny_model(tiny_config, use_ema=use_ema, dtype=policy)
    expected = tiny_reference["bpd_test_ema_final" if use_ema else "bpd_test_raw_final"]
    bpd = model.bits_per_dim(tiny_reference["x_test_u8"]).numpy()
    assert bpd.dtype == np.float32
    np.testing.assert_allclose(bpd, expected, rtol=5e-3)  # per image, the original's float32 numbers
    assert np.abs(bpd - expected).max() > 1e-6  # the low precision was used
    assert model.compute_dtype == compute and all(w.dtype == "float32" for w in model.weights)


@pytest.mark.slow
@pytest.mark.bfloat16
def test_training_step_keeps_float32_state(tiny_config, tiny_reference):
    trainer = build_trainer(tiny_config, TrainConfig(batch_size=4), dtype=MIXED)
    trainer.initialize(tiny_reference["x_init_u8"])
    before = [w.numpy() for w in trainer.model.trainable_weights]
    losses = [float(trainer.train_step(tiny_reference["x_train_u8"][k])) for k in range(3)]
    assert all(np.isfinite(losses))
    reference = build_trainer(tiny_config, TrainConfig(batch_size=4))
    for w, value in zip(reference.model.trainable_weights, before):
        w.assign(value)
    float32_loss = float(reference.train_step(tiny_reference["x_train_u8"][0]))
    np.testing.assert_allclose(losses[0], float32_loss, rtol=5e-3)
    moved = [np.abs(w.numpy() - b).max() for w, b in zip(trainer.model.trainable_weights, before)]
    assert min(moved) > 0  # every weight gets float32 updates from bfloat16 gradients
    for w in trainer.model.trainable_weights:
        assert w.dtype == "float32" and trainer.ema.shadow(w).dtype == tf.float32


@pytest.mark.slow
@pytest.mark.parametrize("policy, compute", POLICIES)
def test_samplers_in_mixed_precision(tiny_config, policy, compute):
    model = trained_tiny_model(tiny_config, dtype=policy)
    assert model.compute_dtype == compute
    u_mix, u_logistic = draw_noise(distribution_of(tiny_config), 2, 5, 6, seed=9)
    naive = NaiveSampler(model)((u_mix, u_logistic)).numpy()
    fast = CachedSampler(model)((u_mix, u_logistic)).numpy()
    assert naive.dtype == fast.dtype == np.float32
    # Both in low precision, summed in different orders: a rare flip of one level changes what follows, so
    # the images agree in most sub-pixels, not all (unrelated samplers agree in ~1%). That the fast
    # sampler's steps give every pixel the parameters the model gives it, as accurately as the
    # low-precision model itself, is tested in test_steps.py; here, that both draw real samples alike.
    assert np.mean(naive == fast) > 0.75
    float32 = CachedSampler(trained_tiny_model(tiny_config))((u_mix, u_logistic)).numpy()
    assert np.mean(float32 == fast) > 0.5


@pytest.mark.bfloat16
def test_config_round_trip_keeps_the_policy():
    model = PixelSNAIL(small_config(), dtype=MIXED)
    clone = PixelSNAIL.from_config(model.get_config())
    assert clone.compute_dtype == "bfloat16" and clone.dtype_policy.name == MIXED

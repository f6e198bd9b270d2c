"""Test-set log-likelihood batch by batch (pixelsnail_tf.evaluation): every image once, in order, whatever
the batch; per pixel sums to per image; bits/dim of the summary."""

import math

import numpy as np
import pytest

from conftest import small_config
from pixelsnail_tf import evaluation
from pixelsnail_tf.models import build_model


@pytest.fixture(scope="module")
def model_and_images():
    model = build_model(small_config(nr_logistic_mix=2), kernels="reference")
    x = np.random.default_rng(3).integers(0, 256, (5, 4, 4, 3), dtype=np.uint8)
    model.initialize(x[:4])
    return model, x


def test_every_image_counts_once_whatever_the_batch(model_and_images):
    model, x = model_and_images
    whole = model.log_prob(x).numpy()
    for batch in (1, 2, 5, 16):  # 2: a last partial batch
        ll = evaluation.log_likelihood(model, x, batch_size=batch, verbose=False)
        # oneDNN blocks a batch's sums by its size: float32 rounding differs by ~1e-6 relative, while a
        # skipped or doubled image would be off by its whole log-likelihood
        np.testing.assert_allclose(ll, whole, rtol=1e-5)
    per_pixel = evaluation.log_likelihood(model, x, batch_size=2, verbose=False, per_pixel=True)
    assert per_pixel.shape == (5, 4, 4)
    np.testing.assert_allclose(per_pixel.sum(axis=(1, 2)), whole, rtol=1e-5)


def test_summary_is_bits_per_dim():
    ll = np.array([-100.0, -300.0])
    result = evaluation.summary(ll, (2, 4, 4, 3))
    assert result["per_image_bpd"] == pytest.approx([100 / (math.log(2) * 48), 300 / (math.log(2) * 48)])
    assert result["bpd"] == pytest.approx(200 / (math.log(2) * 48))
    assert result["per_image_log_likelihood"] == [-100.0, -300.0]


def test_nothing_to_evaluate_is_refused(model_and_images):
    model, x = model_and_images
    with pytest.raises(ValueError, match="no images to evaluate"):
        evaluation.log_likelihood(model, x[:0])
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        evaluation.log_likelihood(model, x, batch_size=0)

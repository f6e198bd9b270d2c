"""The reference (naive) sampler: the original's stored samples, a step-by-step re-implementation,
valid pixel values, the analytic distribution of the first pixel; the sample program end to end."""

import math

import numpy as np
import pytest
import tensorflow as tf

from commands import invoke
from conftest import TINY, TINY_FLAGS, small_config, trained_tiny_model
from draws import EPSILON, assert_same_draws
from pixelsnail_tf.logistic_mixture import sample_discretized_mix_logistic
from pixelsnail_tf.model import PixelSNAIL
from pixelsnail_tf.sampling import CachedSampler
from pixelsnail_tf.commands import sample as sample_command
from pixelsnail_tf.images import float_to_uint8, round_to_levels
from pixelsnail_tf.sampling import NaiveSampler, draw_noise

# Continuous feedback (the original's sampling) carries each step's rounding into the later steps, so
# another summation order (our kernels against the original's graph, oneDNN against Eigen, Winograd,
# XLA's exp and sigmoid) ends up to EPSILON apart, as between our two samplers (draws.py). Measured
# with the reference kernels: below 1e-5 with oneDNN (AVX-512, AVX2), 1.6e-5 with Eigen; the fast ones:
# 1.7e-5 to 2.2e-5.
@pytest.mark.paths
@pytest.mark.parametrize("kernels", ["reference", "fast"])
def test_replays_the_original_samples(bundle, kernels):
    tiny_reference = bundle.reference
    sampler = NaiveSampler(trained_tiny_model(bundle.config, kernels=kernels, directory=bundle.directory),
                           quantize=False)
    x = sampler(tiny_reference["sample_rand_u_mix"], tiny_reference["sample_rand_u_logistic"])
    np.testing.assert_allclose(x.numpy(), tiny_reference["sample_rand_x"], atol=EPSILON)
    # greedy: Gumbel term 0 (u = 1/e) and logistic noise 0 (u = 1/2). Here differences of ~1e-7 in the
    # network output grow ~1000x through 64 continuous steps: measured 3.7e-5 with the reference
    # kernels, up to 1.3e-4 with the fast ones. A wrong step would be off by > 1e-2.
    mix_shape, shape = tiny_reference["sample_rand_u_mix"].shape, tiny_reference["sample_greedy_x"].shape
    x = sampler(np.full(mix_shape, math.exp(-1), np.float32), np.full(shape, 0.5, np.float32))
    np.testing.assert_allclose(x.numpy(), tiny_reference["sample_greedy_x"], atol=3e-4)


@pytest.mark.paths
@pytest.mark.parametrize("quantize", [True, False])
def test_equals_a_plain_step_by_step_implementation(quantize):
    model = PixelSNAIL(small_config(num_classes=3))
    rng = np.random.default_rng(5)
    labels = np.array([0, 2])
    model.initialize(rng.uniform(-1, 1, (2, 3, 5, 3)).astype(np.float32), labels)
    u_mix, u_logistic = draw_noise(2, 3, 5, 2, seed=11)
    canvas = np.zeros((2, 3, 5, 3), np.float32)
    # compiled like the sampler's loop body, so that both see the same graph rewrites
    forward = tf.function(lambda canvas: model(canvas, tf.constant(labels)))
    draw = tf.function(lambda params, u, v: round_to_levels(sample_discretized_mix_logistic(
        params, u, v)) if quantize else sample_discretized_mix_logistic(params, u, v))
    for r in range(3):
        for c in range(5):
            canvas[:, r, c] = draw(forward(canvas)[:, r, c], u_mix[:, r, c], u_logistic[:, r, c])
    result = NaiveSampler(model, quantize=quantize)(u_mix, u_logistic, tf.constant(labels)).numpy()
    np.testing.assert_array_equal(result, canvas)
    if quantize:  # every value is exactly an 8-bit level
        levels = result * 127.5 + 127.5
        np.testing.assert_array_equal(levels, np.round(levels))
        assert levels.min() >= 0 and levels.max() <= 255


def test_first_pixel_follows_the_model_distribution():
    """Chi-square test of the red value of pixel (0,0) against the mixture the network outputs."""
    model = PixelSNAIL(small_config(nr_logistic_mix=3))
    model.initialize(np.random.default_rng(6).uniform(-1, 1, (4, 4, 4, 3)).astype(np.float32))
    params = model(np.zeros((1, 1, 1, 3), np.float32)).numpy()[0, 0, 0].astype(np.float64)
    logits, means, log_scales = params[:3], params[3:6], np.maximum(params[6:9], -7)
    weights = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    x = np.arange(256) * 2 / 255 - 1
    cdf = lambda v: 1 / (1 + np.exp(-(v[:, None] - means) / np.exp(log_scales)))  # noqa: E731
    upper = np.where(x[:, None] > 0.999, 1.0, cdf(x + 1 / 255))
    lower = np.where(x[:, None] < -0.999, 0.0, cdf(x - 1 / 255))
    probs = ((upper - lower) * weights).sum(axis=1)
    assert abs(probs.sum() - 1) < 1e-9
    n = 4000
    u_mix, u_logistic = draw_noise(n, 1, 1, 3, seed=2024)
    red = NaiveSampler(model)(u_mix, u_logistic).numpy()[:, 0, 0, 0]
    counts = np.bincount(np.round(red * 127.5 + 127.5).astype(int), minlength=256)
    observed, expected = [], []
    o = e = 0.0
    for k in range(256):  # merge neighbouring levels until each group expects >= 20 draws
        o, e = o + counts[k], e + n * probs[k]
        if e >= 20:
            observed.append(o), expected.append(e)
            o = e = 0.0
    observed[-1] += o
    expected[-1] += e
    observed, expected = np.array(observed), np.array(expected)
    dof = len(observed) - 1
    assert dof >= 8
    chi2 = ((observed - expected) ** 2 / expected).sum()
    z = 3.09  # 99.9% quantile, Wilson-Hilferty approximation of the chi-square quantile
    assert chi2 < dof * (1 - 2 / (9 * dof) + z * math.sqrt(2 / (9 * dof))) ** 3


def sample_cli(*args):
    return invoke(sample_command, *args)


def test_sample_py(tmp_path, tiny_reference, tiny_config):
    np.savez(tmp_path / "noise.npz", u_mix=tiny_reference["sample_rand_u_mix"],
             u_logistic=tiny_reference["sample_rand_u_logistic"])
    ckpt = f"--checkpoint={TINY / 'trained'}"
    run = sample_cli(ckpt, *TINY_FLAGS, f"--noise_from={tmp_path / 'noise.npz'}", "--original_sampling",
                     "--sampler=naive", "--kernels=reference", f"--out_dir={tmp_path / 'replay'}")
    assert run.returncode == 0, run.stderr
    floats = np.load(tmp_path / "replay" / "samples_float.npy")
    np.testing.assert_allclose(floats, tiny_reference["sample_rand_x"], atol=EPSILON)  # as above
    images = np.load(tmp_path / "replay" / "samples.npy")
    assert images.dtype == np.uint8 and images.shape == (2, 8, 8, 3)
    png = tf.io.decode_png(tf.io.read_file(str(tmp_path / "replay" / "samples_1x.png"))).numpy()
    assert png.shape == (1 + 8 + 1, 1 + 2 * (8 + 1), 3)
    large = tf.io.decode_png(tf.io.read_file(str(tmp_path / "replay" / "samples.png"))).numpy()
    assert large.shape == (10 * 14, 19 * 14, 3)  # 19 pixels wide, 14x to reach 256
    np.testing.assert_array_equal(large[::14, ::14], png)
    np.testing.assert_array_equal(png[1:9, 1:9], images[0])  # true colours, not stretched
    np.testing.assert_array_equal(png[1:9, 10:18], images[1])
    # same seed, same images, whatever the batching and the sampler (fast by default); non-square size
    for out, batch, sampler in (("a", 3, "fast"), ("b", 2, "naive")):
        run = sample_cli(ckpt, *TINY_FLAGS, "--num_samples=3", f"--batch_size={batch}", "--seed=7",
                         "--image_size=4,6", f"--sampler={sampler}", f"--out_dir={tmp_path / out}")
        assert run.returncode == 0, run.stderr
    a, b = np.load(tmp_path / "a" / "samples.npy"), np.load(tmp_path / "b" / "samples.npy")
    assert a.shape == (3, 4, 6, 3)
    u_mix, u_logistic = draw_noise(3, 4, 6, tiny_config.nr_logistic_mix, seed=7)
    assert_same_draws(trained_tiny_model(tiny_config), a, b, u_mix, u_logistic)  # but for rounding flips
    assert not (tmp_path / "a" / "samples_float.npy").exists()
    run = sample_cli(ckpt, *TINY_FLAGS, "--class_label=1", f"--out_dir={tmp_path / 'c'}")
    assert run.returncode == 1
    assert run.stderr.strip().splitlines()[-1] == (
        "error: --class_label given, but the model is not class-conditional")


@pytest.mark.bfloat16
def test_sample_py_in_bfloat16(tmp_path, tiny_config):
    run = sample_cli(f"--checkpoint={TINY / 'trained'}", *TINY_FLAGS, "--num_samples=3", "--seed=7",
                     "--image_size=4,6", "--mixed_precision=bfloat16", f"--out_dir={tmp_path}")
    assert run.returncode == 0, run.stderr
    bf16 = np.load(tmp_path / "samples.npy")
    u_mix, u_logistic = draw_noise(3, 4, 6, tiny_config.nr_logistic_mix, seed=7)
    float32 = float_to_uint8(CachedSampler(trained_tiny_model(tiny_config))(u_mix, u_logistic)).numpy()
    # bfloat16 rounds the network's sums to 8 significant bits: level flips are frequent, and each one
    # changes what follows; the draws still agree far more often than unrelated samples (~1%)
    assert bf16.shape == float32.shape and np.any(bf16 != float32) and np.mean(bf16 == float32) > 0.3

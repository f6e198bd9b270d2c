"""The reference (naive) sampler: the original's stored samples, a step-by-step re-implementation,
valid pixel values, the analytic distribution of the first pixel; the sample program end to end."""

import math

import numpy as np
import pytest
import tensorflow as tf

from commands import invoke
from conftest import TINY, TINY_FLAGS, small_config, trained_tiny_model
from draws import EPSILON, assert_levels_follow, assert_same_draws, red_level_probabilities
from pixelsnail_tf.distributions import distribution_of
from pixelsnail_tf.distributions.logistic_mixture import sample_discretized_mix_logistic
from pixelsnail_tf.models import PixelSNAIL
from pixelsnail_tf.sampling import CachedSampler
from pixelsnail_tf.commands import sample as sample_command
from pixelsnail_tf.images import float_to_uint8, round_to_levels
from pixelsnail_tf.sampling import NaiveSampler, draw_noise

# Continuous feedback (the original's sampling) carries each step's rounding into the later steps, so
# another summation order (our kernels against the original's graph, oneDNN against Eigen, Winograd,
# XLA's exp and sigmoid) ends up to EPSILON apart, as between our two samplers (draws.py). Measured
# with the reference kernels: below 1e-5 with oneDNN (AVX-512, AVX2), 1.6e-5 with Eigen; the fast ones:
# 1.7e-5 to 2.2e-5.
@pytest.mark.slow
@pytest.mark.paths
@pytest.mark.parametrize("kernels", ["reference", "fast"])
def test_replays_the_original_samples(bundle, kernels):
    tiny_reference = bundle.reference
    sampler = NaiveSampler(trained_tiny_model(bundle.config, kernels=kernels, directory=bundle.directory),
                           quantize=False)
    x = sampler((tiny_reference["sample_rand_u_mix"], tiny_reference["sample_rand_u_logistic"]))
    np.testing.assert_allclose(x.numpy(), tiny_reference["sample_rand_x"], atol=EPSILON)
    # greedy: Gumbel term 0 (u = 1/e) and logistic noise 0 (u = 1/2). Here differences of ~1e-7 in the
    # network output grow ~1000x through 64 continuous steps: measured 3.7e-5 with the reference
    # kernels, up to 1.3e-4 with the fast ones. A wrong step would be off by > 1e-2.
    mix_shape, shape = tiny_reference["sample_rand_u_mix"].shape, tiny_reference["sample_greedy_x"].shape
    x = sampler((np.full(mix_shape, math.exp(-1), np.float32), np.full(shape, 0.5, np.float32)))
    np.testing.assert_allclose(x.numpy(), tiny_reference["sample_greedy_x"], atol=3e-4)


@pytest.mark.slow
@pytest.mark.paths
@pytest.mark.parametrize("quantize", [True, False])
def test_equals_a_plain_step_by_step_implementation(quantize):
    model = PixelSNAIL(small_config(num_classes=3))
    rng = np.random.default_rng(5)
    labels = np.array([0, 2])
    model.initialize(rng.uniform(-1, 1, (2, 3, 5, 3)).astype(np.float32), labels)
    u_mix, u_logistic = draw_noise(model.distribution, 2, 3, 5, seed=11)
    canvas = np.zeros((2, 3, 5, 3), np.float32)
    # compiled like the sampler's loop body, so that both see the same graph rewrites
    forward = tf.function(lambda canvas: model(canvas, tf.constant(labels)))
    draw = tf.function(lambda params, u, v: round_to_levels(sample_discretized_mix_logistic(
        params, u, v)) if quantize else sample_discretized_mix_logistic(params, u, v))
    for r in range(3):
        for c in range(5):
            canvas[:, r, c] = draw(forward(canvas)[:, r, c], u_mix[:, r, c], u_logistic[:, r, c])
    result = NaiveSampler(model, quantize=quantize)((u_mix, u_logistic), tf.constant(labels)).numpy()
    np.testing.assert_array_equal(result, canvas)
    if quantize:  # every value is exactly an 8-bit level
        levels = result * 127.5 + 127.5
        np.testing.assert_array_equal(levels, np.round(levels))
        assert levels.min() >= 0 and levels.max() <= 255


def test_first_pixel_follows_the_model_distribution():
    """Chi-square test of the red value of pixel (0,0) against the mixture the network outputs."""
    model = PixelSNAIL(small_config(nr_logistic_mix=3))
    model.initialize(np.random.default_rng(6).uniform(-1, 1, (4, 4, 4, 3)).astype(np.float32))
    params = model(np.zeros((1, 1, 1, 3), np.float32)).numpy()[0, 0, 0]
    u_mix, u_logistic = draw_noise(model.distribution, 4000, 1, 1, seed=2024)
    red = NaiveSampler(model)((u_mix, u_logistic)).numpy()[:, 0, 0, 0]
    assert_levels_follow(np.round(red * 127.5 + 127.5), red_level_probabilities(params, 3))


def sample_cli(*args):
    return invoke(sample_command, *args)


@pytest.mark.slow
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
    u_mix, u_logistic = draw_noise(distribution_of(tiny_config), 3, 4, 6, seed=7)
    assert_same_draws(trained_tiny_model(tiny_config), a, b, u_mix, u_logistic)  # but for rounding flips
    assert not (tmp_path / "a" / "samples_float.npy").exists()
    run = sample_cli(ckpt, *TINY_FLAGS, "--class_label=1", f"--out_dir={tmp_path / 'c'}")
    assert run.returncode == 1
    assert run.stderr.strip().splitlines()[-1] == (
        "error: --class_label given, but the model is not class-conditional")


@pytest.mark.slow
def test_sample_py_completes_images(tmp_path, tiny_reference):
    images = tiny_reference["x_test_u8"][:3]
    np.save(tmp_path / "x.npy", images)
    common = [f"--checkpoint={TINY / 'trained'}", *TINY_FLAGS, f"--complete={tmp_path / 'x.npy'}",
              "--num_samples=2", "--seed=3"]
    run = sample_cli(*common, "--given_rows=4", f"--out_dir={tmp_path / 'rows'}")
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().splitlines()[-1].startswith("wrote 2 completions of each of 3 images")
    out = np.load(tmp_path / "rows" / "samples.npy")
    assert out.shape == (3, 2, 8, 8, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[:, :, :4], np.broadcast_to(images[:, None, :4], (3, 2, 4, 8, 3)))
    png = tf.io.decode_png(tf.io.read_file(str(tmp_path / "rows" / "samples_1x.png"))).numpy()
    assert png.shape == (1 + 3 * 9, 1 + 4 * 9, 3)  # per image: the image, its given part, 2 completions
    np.testing.assert_array_equal(png[10:18, 1:9], images[1])
    np.testing.assert_array_equal(png[10:14, 10:18], images[1, :4])
    assert (png[14:18, 10:18] == 128).all()  # not given: grey
    np.testing.assert_array_equal(png[10:18, 28:36], out[1, 1])
    mask = np.zeros((3, 8, 8), bool)
    mask[:, :4] = True
    np.save(tmp_path / "mask.npy", mask)
    run = sample_cli(*common, f"--given_mask={tmp_path / 'mask.npy'}", "--batch_size=4",
                     f"--out_dir={tmp_path / 'mask'}")
    assert run.returncode == 0, run.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "mask" / "samples.npy"), out)
    mask[2, 7, 7] = True
    np.save(tmp_path / "holes.npy", mask)
    for args, message in (
            ([], "error: --complete needs --given_rows or --given_mask"),
            (["--given_rows=9"], "error: --given_rows=9, but the images have 8 rows"),
            (["--given_rows=2", f"--given_mask={tmp_path / 'mask.npy'}"],
             "error: give --given_rows or --given_mask, not both"),
            ([f"--given_mask={tmp_path / 'holes.npy'}"],
             "error: the given mask of image 2 is not a prefix in raster order (all given pixels must come "
             "before every drawn one, row by row)"),
            ([f"--given_mask={tmp_path / 'x.npy'}"],
             "error: --given_mask must be bool [3,8,8] like the images, got uint8 [3, 8, 8, 3]")):
        run = sample_cli(*common, *args, f"--out_dir={tmp_path / 'bad'}")
        assert run.returncode == 1 and run.stderr.strip().splitlines()[-1] == message
    run = sample_cli(f"--checkpoint={TINY / 'trained'}", *TINY_FLAGS, "--given_rows=2",
                     f"--out_dir={tmp_path / 'bad'}")
    assert run.stderr.strip().splitlines()[-1] == "error: --given_rows and --given_mask go with --complete=FILE.npy"


@pytest.mark.slow
@pytest.mark.bfloat16
def test_sample_py_in_bfloat16(tmp_path, tiny_config):
    run = sample_cli(f"--checkpoint={TINY / 'trained'}", *TINY_FLAGS, "--num_samples=3", "--seed=7",
                     "--image_size=4,6", "--mixed_precision=bfloat16", f"--out_dir={tmp_path}")
    assert run.returncode == 0, run.stderr
    bf16 = np.load(tmp_path / "samples.npy")
    u_mix, u_logistic = draw_noise(distribution_of(tiny_config), 3, 4, 6, seed=7)
    float32 = float_to_uint8(CachedSampler(trained_tiny_model(tiny_config))((u_mix, u_logistic))).numpy()
    # bfloat16 rounds the network's sums to 8 significant bits: level flips are frequent, and each one
    # changes what follows; the draws still agree far more often than unrelated samples (~1%)
    assert bf16.shape == float32.shape and np.any(bf16 != float32) and np.mean(bf16 == float32) > 0.3

"""A model of integer codes (--output=categorical, a VQ-VAE prior): causality, the likelihood against
NumPy, training to a known entropy, both samplers, export."""

import json
import math
import re

import keras
import numpy as np
import pytest
import tensorflow as tf

from commands import invoke
from conftest import initialized_model, small_config
from draws import assert_levels_follow
from pixelsnail_tf import checkpoints
from pixelsnail_tf.commands import convert, evaluate, export, sample, train
from pixelsnail_tf.config import OUTPUTS, VARIANTS, ModelConfig
from pixelsnail_tf.distributions import DISTRIBUTIONS
from pixelsnail_tf.sampling import CachedSampler, NaiveSampler, complete, draw_noise
from pixelsnail_tf.serving import export_saved_model
from pixelsnail_tf.training import TrainConfig, build_trainer

CODES = 5


def codes_config(model="h12_noup_smallkey", **changes):
    return small_config(model, output="categorical", num_codes=CODES, **changes)


def sides(model):
    return (4, 8) if model == "pxpp" else (4, 5)  # pxpp: multiples of 4


def test_config_and_distributions_agree():
    assert set(OUTPUTS) == set(DISTRIBUTIONS)
    with pytest.raises(ValueError, match="needs num_codes >= 2"):
        ModelConfig(output="categorical", num_codes=1)
    with pytest.raises(ValueError, match="num_codes is for output=categorical"):
        ModelConfig(num_codes=8)
    with pytest.raises(ValueError, match="unknown output"):
        ModelConfig(output="gaussian")


@pytest.mark.slow
@pytest.mark.parametrize("model_name", sorted(VARIANTS))
def test_every_variant_is_causal_over_codes(model_name):
    """d logits(i) / d x(j) == 0 exactly for j >= i, x the embedded codes; > 0 for the left and upper
    neighbours. And through the integer codes: changing code j changes no logits at positions <= j."""
    height, width = sides(model_name)
    model = initialized_model(codes_config(model_name), height, width)
    codes = np.random.default_rng(1).integers(0, CODES, (1, height, width))
    x = model.network_input(tf.constant(codes), tf.float32)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        out = tf.reduce_sum(model.network(x), axis=-1)[0]  # [H, W]
    jacobian = tape.jacobian(out, x, experimental_use_pfor=False).numpy()  # [H,W,1,H,W,C]
    influence = np.abs(jacobian).sum(axis=(2, 5)).reshape(height * width, height * width)
    np.testing.assert_array_equal(np.triu(influence), 0.0)
    index = np.arange(height * width).reshape(height, width)
    assert np.all(influence[index[:, 1:], index[:, :-1]] > 0)
    assert np.all(influence[index[1:], index[:-1]] > 0)
    logits = model(codes).numpy().reshape(height * width, -1)
    for j in (0, width + 1, height * width - 1):
        changed = codes.reshape(-1).copy()
        changed[j] = (changed[j] + 1) % CODES
        other = model(changed.reshape(codes.shape)).numpy().reshape(height * width, -1)
        np.testing.assert_array_equal(other[:j + 1], logits[:j + 1])
        assert j == height * width - 1 or np.abs(other[j + 1:] - logits[j + 1:]).max() > 0


@pytest.mark.slow
def test_log_likelihood_is_the_softmax_cross_entropy_of_the_logits():
    model = initialized_model(codes_config(num_classes=2), 4, 5)
    codes, labels = np.random.default_rng(2).integers(0, CODES, (3, 4, 5)), np.array([1, 0, 1])
    logits = model(codes, labels).numpy().astype(np.float64)
    log_softmax = logits - logits.max(-1, keepdims=True)
    log_softmax -= np.log(np.exp(log_softmax).sum(-1, keepdims=True))
    expected = np.take_along_axis(log_softmax, codes[..., None], axis=-1)[..., 0]  # [3, 4, 5]
    np.testing.assert_allclose(model.per_pixel_log_prob(codes, labels).numpy(), expected, rtol=1e-6)
    np.testing.assert_allclose(model.log_prob(codes, labels).numpy(), expected.sum(axis=(1, 2)), rtol=1e-6)
    np.testing.assert_allclose(model.bits_per_dim(codes, labels).numpy(),
                               -expected.sum(axis=(1, 2)) / (20 * math.log(2.0)), rtol=1e-6)


@pytest.mark.parametrize("codes, message", [
    (np.zeros((2, 4, 5, 3), np.int32), "codes must be integers of shape"),
    (np.zeros((2, 4, 5), np.float32), "codes must be integers of shape"),
    (np.full((2, 4, 5), CODES), r"codes must lie in \[0, 5\)"),
    (np.full((2, 4, 5), -1), r"codes must lie in \[0, 5\)"),
])
def test_bad_codes_are_one_line_errors(codes, message):
    model = initialized_model(codes_config(), 4, 5)
    with pytest.raises(ValueError, match=message):
        model.log_prob(codes)


def raster_codes(count, height, width, rng):
    """Code maps whose first code is uniform and each next one (in raster order) the previous + 1
    mod CODES: log2(CODES) bits per map, all in the first code."""
    first = rng.integers(0, CODES, count)
    return ((first[:, None] + np.arange(height * width)) % CODES).reshape(count, height, width)


@pytest.mark.slow
def test_training_drives_bits_per_code_to_the_entropy():
    """The original's recipe (data-dependent init, original Adam) on a toy distribution of known
    entropy: log2(5) / 16 = 0.145 bits per code on 4x4 maps; at the start ~2.3 (log2 5)."""
    height = width = 4
    rng = np.random.default_rng(3)
    trainer = build_trainer(codes_config(nr_filters=16), TrainConfig(learning_rate=3e-3, batch_size=16))
    trainer.initialize(raster_codes(16, height, width, rng))
    test = raster_codes(256, height, width, np.random.default_rng(4))
    before = float(np.mean(trainer.model.bits_per_dim(test)))
    for _ in range(STEPS):
        trainer.train_step(raster_codes(16, height, width, rng))
    entropy = math.log2(CODES) / (height * width)
    after = float(np.mean(trainer.model.bits_per_dim(test)))
    assert before > 1.5
    assert entropy - 0.02 < after < entropy + 0.02, (before, after)  # measured 0.1468


STEPS = 300


@pytest.mark.slow
@pytest.mark.parametrize("model_name", sorted(VARIANTS))
def test_fast_sampler_draws_the_naive_samplers_codes(model_name):
    height, width = sides(model_name)
    model = initialized_model(codes_config(model_name, num_classes=2), height, width)
    noise = draw_noise(model.distribution, 3, height, width, seed=7)
    labels = tf.constant([0, 1, 1])
    naive = NaiveSampler(model)(noise, labels).numpy()
    fast = CachedSampler(model)(noise, labels).numpy()
    assert naive.dtype == np.int32 and naive.shape == (3, height, width)
    np.testing.assert_array_equal(fast, naive)
    assert len(np.unique(naive)) > 1


@pytest.mark.slow
def test_first_code_follows_the_models_softmax():
    """Chi-square test of the code drawn at (0, 0) against the softmax of its logits."""
    model = initialized_model(codes_config(), 4, 4)
    probabilities = tf.nn.softmax(model(np.zeros((1, 1, 1), np.int32))[0, 0, 0]).numpy()
    drawn = NaiveSampler(model)(draw_noise(model.distribution, 4000, 1, 1, seed=2024)).numpy()[:, 0, 0]
    assert_levels_follow(drawn, probabilities, min_dof=CODES - 1)


@pytest.mark.slow
def test_completion_keeps_the_given_codes():
    model = initialized_model(codes_config(), 4, 5)
    codes = np.random.default_rng(5).integers(0, CODES, (2, 4, 5))
    fast = complete(model, codes, given_pixels=[7, 12], num_samples=2, seed=3)
    naive = complete(model, codes, given_pixels=[7, 12], num_samples=2, seed=3, sampler="naive")
    assert fast.dtype == np.int32 and fast.shape == (2, 2, 4, 5)
    np.testing.assert_array_equal(fast, naive)
    for i, count in enumerate((7, 12)):
        np.testing.assert_array_equal(fast[i].reshape(2, -1)[:, :count],
                                      np.broadcast_to(codes[i].reshape(-1)[:count], (2, count)))


@pytest.mark.slow
def test_keras_file_round_trip(tmp_path):
    model = initialized_model(codes_config("model"), 4, 5)
    model.save(tmp_path / "prior.keras")
    loaded = keras.saving.load_model(tmp_path / "prior.keras")
    codes = np.random.default_rng(9).integers(0, CODES, (2, 4, 5))
    assert loaded.config == model.config
    np.testing.assert_allclose(loaded.log_prob(codes).numpy(), model.log_prob(codes).numpy(), rtol=1e-6)


@pytest.mark.slow
def test_saved_model_round_trip(tmp_path):
    model = initialized_model(codes_config(num_classes=2), 4, 5)
    export_saved_model(model, str(tmp_path / "m"), 4, 5)
    loaded = tf.saved_model.load(str(tmp_path / "m"))
    codes, labels = np.random.default_rng(6).integers(0, CODES, (3, 4, 5)).astype(np.int32), [0, 1, 1]
    scores = loaded.signatures["serving_default"](codes=tf.constant(codes), class_label=tf.constant(labels))
    np.testing.assert_allclose(scores["log_likelihood"].numpy(), model.log_prob(codes, labels).numpy(),
                               rtol=1e-6)
    np.testing.assert_allclose(scores["per_pixel_bits"].numpy(),
                               -model.per_pixel_log_prob(codes, labels).numpy() / math.log(2.0), rtol=1e-6)
    drawn = loaded.signatures["sample"](num_samples=tf.constant(3), seed=tf.constant(9, tf.int64),
                                        class_label=tf.constant(1))["codes"].numpy()
    expected = CachedSampler(model)(draw_noise(model.distribution, 3, 4, 5, seed=9), tf.constant([1, 1, 1]))
    np.testing.assert_array_equal(drawn, expected.numpy())
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"codes must lie in \[0, 5\)"):
        loaded.signatures["serving_default"](codes=tf.constant(codes + CODES),
                                             class_label=tf.constant(labels))


@pytest.fixture(scope="module")
def code_run(tmp_path_factory):
    """A prior trained for one epoch by train.py on --dataset=npz code maps (int64, as np.savez keeps
    them), and those maps."""
    folder = tmp_path_factory.mktemp("codes")
    rng = np.random.default_rng(8)
    np.savez(folder / "train.npz", x=raster_codes(16, 4, 4, rng))
    np.savez(folder / "test.npz", x=raster_codes(4, 4, 4, rng))
    run = invoke(train, "--dataset=npz", f"--data_dir={folder}", "--output=categorical",
                 f"--num_codes={CODES}", *CLI_MODEL, "--batch_size=4", "--init_batch_size=8",
                 "--max_epochs=1",                 "--num_samples=2", f"--save_dir={folder / 'run'}")
    assert run.returncode == 0, run.stderr
    return folder


CLI_MODEL = ["--nr_filters=8", "--nr_resnet=1", "--attn_rep=1", "--dropout_p=0"]


@pytest.mark.slow
def test_programs_train_evaluate_sample_and_export_a_prior(code_run, tmp_path):
    run = code_run / "run"
    config = checkpoints.read_config(str(run))
    assert (config.output, config.num_codes) == ("categorical", CODES)
    assert tf.io.decode_png(tf.io.read_file(str(run / "samples_1x.png"))).shape[-1] == 3
    model, _, _ = checkpoints.load_model(str(run), None, {}, use_ema=True)
    test = np.load(code_run / "test.npz")["x"]
    np.save(tmp_path / "codes.npy", test)
    assert invoke(evaluate, f"--checkpoint={run}", f"--images={tmp_path / 'codes.npy'}",
                  f"--json_out={tmp_path / 'r.json'}", f"--heatmap_dir={tmp_path / 'maps'}").returncode == 0
    result = json.loads((tmp_path / "r.json").read_text())
    np.testing.assert_allclose(result["per_image_bpd"], model.bits_per_dim(test).numpy(), rtol=1e-6)
    np.testing.assert_allclose(np.load(tmp_path / "maps" / "per_pixel_bits.npy"),
                               -model.per_pixel_log_prob(test).numpy() / math.log(2.0), rtol=1e-5)
    assert invoke(sample, f"--checkpoint={run}", "--num_samples=3", "--seed=2",
                  f"--out_dir={tmp_path / 's'}").returncode == 0
    drawn = np.load(tmp_path / "s" / "samples.npy")
    expected = CachedSampler(model)(draw_noise(model.distribution, 3, 4, 4, seed=2))
    np.testing.assert_array_equal(drawn, expected.numpy())  # the run's image size, from its flags.txt
    assert invoke(sample, f"--checkpoint={run}", f"--complete={tmp_path / 'codes.npy'}", "--given_rows=2",
                  "--num_samples=2", f"--out_dir={tmp_path / 'c'}").returncode == 0
    completions = np.load(tmp_path / "c" / "samples.npy")
    assert completions.shape == (4, 2, 4, 4)
    np.testing.assert_array_equal(completions[:, :, :2], np.broadcast_to(test[:, None, :2], (4, 2, 2, 4)))
    assert invoke(export, f"--checkpoint={run}", f"--export_dir={tmp_path / 'e'}").returncode == 0
    loaded = tf.saved_model.load(str(tmp_path / "e" / "1"))
    scores = loaded.signatures["serving_default"](codes=tf.constant(test, tf.int32))
    np.testing.assert_allclose(scores["log_likelihood"].numpy(), model.log_prob(test).numpy(), rtol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("args, message", [
    (["--dataset=demo"], "--dataset=demo's training data must hold integer codes of shape"),
    (["--num_codes=3"], r"codes must lie in \[0, 3\) \(--num_codes\), got values in \[0, 4\]"),
    (["--num_codes=0"], "needs num_codes >= 2"),
])
def test_training_on_the_wrong_data_is_one_line(code_run, tmp_path, args, message):
    args = ["--dataset=npz", f"--data_dir={code_run}", "--output=categorical", f"--num_codes={CODES}",
            *CLI_MODEL, *args, f"--save_dir={tmp_path / 'run'}"]
    run = invoke(train, *args)
    assert run.returncode == 1 and len(run.stderr.strip().splitlines()) == 1, run.stderr
    assert re.search(message, run.stderr), run.stderr
    assert not (tmp_path / "run" / "checkpoint").exists()


@pytest.mark.slow
def test_images_for_a_prior_and_codes_for_an_image_model_are_one_line(code_run, tmp_path):
    np.save(tmp_path / "images.npy", np.zeros((2, 4, 4, 3), np.uint8))
    run = invoke(evaluate, f"--checkpoint={code_run / 'run'}", f"--images={tmp_path / 'images.npy'}")
    assert run.returncode == 1 and "must hold integer codes of shape [N, H, W]" in run.stderr, run.stderr
    run = invoke(train, "--dataset=npz", f"--data_dir={code_run}", *CLI_MODEL, f"--save_dir={tmp_path / 'r'}")
    assert run.returncode == 1 and "must hold uint8 images of shape [N, H, W, 3]" in run.stderr, run.stderr
    run = invoke(sample, f"--checkpoint={code_run / 'run'}", "--original_sampling", f"--out_dir={tmp_path}")
    assert run.returncode == 1 and "--original_sampling is for images" in run.stderr, run.stderr


@pytest.mark.slow
def test_a_prior_has_no_tf1_layout(code_run, tmp_path):
    run = invoke(convert, "--to_tf1", f"--checkpoint={code_run / 'run'}", f"--save_dir={tmp_path / 'tf1'}")
    assert run.returncode == 1 and "--output=categorical has no original TF1 checkpoint layout" in run.stderr
    assert not (tmp_path / "tf1").exists()

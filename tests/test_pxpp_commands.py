"""--model=pxpp (the original's PixelCNN++ baseline) through every program: convert the original's
checkpoint, evaluate it, sample from it, export it, train one."""

import json

import numpy as np
import pytest
import tensorflow as tf

from commands import invoke
from conftest import PXPP, bundle_config
from tolerances import NETWORK_RTOL
from pixelsnail_tf import checkpoints
from pixelsnail_tf.commands import convert, evaluate, export, sample, train
from pixelsnail_tf.images import float_to_uint8
from pixelsnail_tf.models import build_model
from pixelsnail_tf.sampling import CachedSampler, draw_noise

FLAGS = ["--model=pxpp", "--nr_filters=12", "--nr_resnet=1", "--nr_logistic_mix=2"]


def ok(run):
    assert run.returncode == 0, run.stderr
    return run


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pxpp") / "ours"
    ok(invoke(convert, f"--tf1_checkpoint={PXPP / 'trained'}", f"--save_dir={folder}", "--dropout_p=0",
              *FLAGS))
    return folder


@pytest.mark.slow
def test_convert_and_evaluate_give_the_original_likelihood(converted, tmp_path):
    reference = dict(np.load(PXPP / "reference.npz"))
    np.save(tmp_path / "test.npy", reference["x_test_u8"])
    for kind, checkpoint in (("ours", str(converted)), ("tf1", str(PXPP / "trained"))):  # config.json, flags
        flags = [] if kind == "ours" else FLAGS
        ok(invoke(evaluate, f"--checkpoint={checkpoint}", f"--images={tmp_path / 'test.npy'}",
                  f"--json_out={tmp_path / kind}.json", *flags))
        result = json.loads((tmp_path / f"{kind}.json").read_text())
        np.testing.assert_allclose(result["per_image_log_likelihood"], reference["ll_test_ema_final"],
                                   rtol=NETWORK_RTOL)


@pytest.mark.slow
def test_sample_draws_from_the_converted_weights(converted, tmp_path):
    ok(invoke(sample, f"--checkpoint={converted}", "--num_samples=2", "--seed=4", "--image_size=8",
              f"--out_dir={tmp_path / 's'}"))
    model = build_model(bundle_config(PXPP))
    model.build(None)
    checkpoints.load_tf1_checkpoint(model, str(PXPP / "trained"))
    expected = CachedSampler(model)(draw_noise(model.distribution, 2, 8, 8, 4))  # fast == naive: test_cached_sampling
    drawn = np.load(tmp_path / "s" / "samples.npy")
    np.testing.assert_array_equal(drawn, float_to_uint8(expected).numpy())


@pytest.mark.slow
def test_export_serves_the_likelihood_and_samples(converted, tmp_path):
    reference = dict(np.load(PXPP / "reference.npz"))
    ok(invoke(export, f"--checkpoint={converted}", f"--export_dir={tmp_path / 'e'}", "--image_size=8"))
    loaded = tf.saved_model.load(str(tmp_path / "e" / "1"))
    out = loaded.signatures["serving_default"](images=tf.constant(reference["x_test_u8"]))
    np.testing.assert_allclose(out["log_likelihood"].numpy(), reference["ll_test_ema_final"],
                               rtol=NETWORK_RTOL)
    drawn = loaded.signatures["sample"](num_samples=tf.constant(1), seed=tf.constant(4, tf.int64))
    assert drawn["images"].shape == (1, 8, 8, 3)


@pytest.mark.slow
def test_train_runs_an_epoch_with_samples(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "data").mkdir()
    for split, count in (("train", 16), ("test", 4)):
        np.savez(tmp_path / "data" / f"{split}.npz", x=rng.integers(0, 256, (count, 8, 8, 3), np.uint8))
    ok(invoke(train, "--dataset=npz", f"--data_dir={tmp_path / 'data'}", "--batch_size=8",
              "--max_epochs=1", "--num_samples=2", "--kernels=reference", f"--save_dir={tmp_path / 'run'}",
              *FLAGS))
    assert (tmp_path / "run" / "samples.png").exists()
    assert json.loads((tmp_path / "run" / "config.json").read_text())["model"] == "pxpp"

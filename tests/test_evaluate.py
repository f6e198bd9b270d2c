"""The evaluate program end to end (in-process, tests/commands.py)."""

import json
import pathlib

import numpy as np
import pytest

from commands import invoke
from conftest import TINY, TINY_FLAGS
from test_data import write_cifar_pickles
from tolerances import NETWORK_RTOL
from pixelsnail_tf import heatmaps
from pixelsnail_tf.commands import evaluate as evaluate_command

ROOT = pathlib.Path(__file__).resolve().parents[1]


def evaluate(*args):
    return invoke(evaluate_command, *args)


@pytest.mark.slow
@pytest.mark.paths
@pytest.mark.parametrize("ema_flag, key", [([], "ema_final"), (["--noema"], "raw_final")])
def test_bpd_of_the_original_checkpoint(tmp_path, test_images, tiny_reference, ema_flag, key):
    out = tmp_path / "result.json"
    run = evaluate(f"--checkpoint={TINY / 'trained' / 'model.ckpt'}", f"--images={test_images}",
                   f"--json_out={out}", "--batch_size=3", *TINY_FLAGS, *ema_flag)
    assert run.returncode == 0, run.stderr
    result = json.loads(out.read_text())
    np.testing.assert_allclose(result["per_image_log_likelihood"], tiny_reference[f"ll_test_{key}"],
                               rtol=NETWORK_RTOL)
    expected = tiny_reference[f"bpd_test_{key}"]
    np.testing.assert_allclose(result["per_image_bpd"], expected, rtol=NETWORK_RTOL)
    np.testing.assert_allclose(result["bpd"], expected.mean(), rtol=NETWORK_RTOL)
    assert f"test bpd {result['bpd']:.6f} on 4 images" in run.stdout


@pytest.mark.slow
@pytest.mark.paths
@pytest.mark.bfloat16
def test_mixed_precision_flag(tmp_path, test_images, tiny_reference):
    out = tmp_path / "result.json"
    run = evaluate(f"--checkpoint={TINY / 'trained'}", f"--images={test_images}", f"--json_out={out}",
                   "--mixed_precision=bfloat16", *TINY_FLAGS)
    assert run.returncode == 0, run.stderr
    bpd = json.loads(out.read_text())["per_image_bpd"]
    np.testing.assert_allclose(bpd, tiny_reference["bpd_test_ema_final"], rtol=5e-3)
    assert np.abs(np.array(bpd) - tiny_reference["bpd_test_ema_final"]).max() > 1e-5  # bfloat16 ran


@pytest.mark.slow
def test_our_checkpoint_is_detected_and_uses_its_config(tmp_path, test_images, tiny_reference,
                                                        tiny_config):
    from pixelsnail_tf.models import PixelSNAIL
    from test_checkpoints import write_our_checkpoint
    model = PixelSNAIL(tiny_config)
    model.build((None, 8, 8, 3))
    write_our_checkpoint(model, tiny_reference, tmp_path / "run")
    out = tmp_path / "result.json"
    run = evaluate(f"--checkpoint={tmp_path / 'run'}", f"--images={test_images}", f"--json_out={out}")
    assert run.returncode == 0, run.stderr
    assert "pixelsnail_tf checkpoint" in run.stdout
    np.testing.assert_allclose(json.loads(out.read_text())["bpd"],
                               tiny_reference["bpd_test_ema_final"].mean(), rtol=NETWORK_RTOL)
    run = evaluate(f"--checkpoint={tmp_path / 'run'}", f"--images={test_images}", "--nr_filters=64")
    assert run.returncode == 1
    assert run.stderr.strip().splitlines()[-1] == (
        f"error: model flags contradict {tmp_path / 'run' / 'ckpt-1'}'s config.json: "
        "nr_filters: 32 != 64")


def last_line(run):
    return run.stderr.strip().splitlines()[-1]


@pytest.mark.slow
def test_clear_errors(tmp_path, test_images):
    ckpt = f"--checkpoint={TINY / 'trained'}"
    run = evaluate(ckpt, f"--images={test_images}")  # default flags: the full CIFAR config
    assert run.returncode == 1 and run.stderr.splitlines()[0].endswith(
        "was made with other model flags: --nr_filters=32 (not 256), --nr_logistic_mix=3 (not 10), "
        "--attn_rep=2 (not 12), --nr_resnet=1 (not 4)")
    run = evaluate(ckpt, f"--images={tmp_path / 'missing.npy'}", *TINY_FLAGS)
    assert run.returncode == 1 and last_line(run) == f"error: no such file: {tmp_path / 'missing.npy'}"
    np.save(tmp_path / "gray.npy", np.zeros((2, 8, 8), np.uint8))
    run = evaluate(ckpt, f"--images={tmp_path / 'gray.npy'}", *TINY_FLAGS)
    assert run.returncode == 1 and "must hold uint8 images of shape [N, H, W, 3]" in last_line(run)
    run = evaluate(f"--checkpoint={tmp_path}", f"--images={test_images}", *TINY_FLAGS)
    assert run.returncode == 1
    assert last_line(run) == f"error: no checkpoint in directory {tmp_path} (no *.index file)"
    run = evaluate(ckpt, "--model=h6_hier4", f"--images={test_images}")
    assert run.returncode == 1 and "model=h6_hier4 is not supported: " in last_line(run)


@pytest.mark.slow
def test_evaluate_on_cifar_files(tmp_path, tiny_reference):
    """The data path end to end: bpd of the bundle's test images written as CIFAR pickles."""
    images = np.zeros((4, 32, 32, 3), np.uint8)
    images[:, :8, :8] = tiny_reference["x_test_u8"]
    write_cifar_pickles(tmp_path / "cifar-10-python" / "cifar-10-batches-py", images, [0] * 4)
    np.save(tmp_path / "same.npy", images)
    results = []
    for i, source in enumerate((["--dataset=cifar10", f"--data_dir={tmp_path}"],
                                [f"--images={tmp_path / 'same.npy'}"])):
        out = tmp_path / f"r{i}.json"
        run = evaluate(f"--checkpoint={TINY / 'trained'}", f"--json_out={out}", *source, *TINY_FLAGS)
        assert run.returncode == 0, run.stderr
        results.append(json.loads(out.read_text()))
    assert results[0] == results[1] and len(results[0]["per_image_bpd"]) == 4


def test_a_failed_write_of_the_outputs_is_one_line(tmp_path, test_images, monkeypatch):
    """A disk that fills up while the heat maps are written: one line, exit status 1, no traceback."""
    def full_disk(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(heatmaps, "write", full_disk)
    run = invoke(evaluate_command, f"--checkpoint={TINY / 'trained'}", f"--images={test_images}", *TINY_FLAGS,
                 f"--heatmap_dir={tmp_path / 'maps'}")
    assert run.returncode == 1
    assert run.stderr.strip().splitlines()[-1] == (
        "error: cannot write the outputs: [Errno 28] No space left on device")

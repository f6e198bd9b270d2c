"""The evaluate program end to end (in-process, tests/commands.py) and the data readers behind it."""

import importlib
import json
import os
import pathlib
import pickle
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf
from absl import flags

from commands import installed_command, invoke
from conftest import TINY, TINY_FLAGS, trained_tiny_model
from tolerances import NETWORK_RTOL
from pixelsnail_tf import data, heatmaps
from pixelsnail_tf.commands import convert as convert_command
from pixelsnail_tf.commands import evaluate as evaluate_command
from pixelsnail_tf.commands import export as export_command
from pixelsnail_tf.commands import sample as sample_command
from pixelsnail_tf.commands import train as train_command

ROOT = pathlib.Path(__file__).resolve().parents[1]


def evaluate(*args):
    return invoke(evaluate_command, *args)


@pytest.fixture(scope="module")
def test_images(tmp_path_factory, tiny_reference):
    path = tmp_path_factory.mktemp("images") / "test.npy"
    np.save(path, tiny_reference["x_test_u8"])
    return path


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


def test_our_checkpoint_is_detected_and_uses_its_config(tmp_path, test_images, tiny_reference,
                                                        tiny_config):
    from pixelsnail_tf.model import PixelSNAIL
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
    assert run.returncode == 1 and "--model=h6_hier4 is not supported: " in last_line(run)


MODEL_FLAGS = ["model", "nr_resnet", "nr_filters", "nr_logistic_mix", "resnet_nonlinearity", "attn_rep", "output",
               "num_codes"]


@pytest.mark.parametrize("module, own_flags", [
    (evaluate_command, ["checkpoint", "ema", "dataset", "data_dir", "images", "json_out", "heatmap_dir",
                        "batch_size", "mixed_precision", "allow_tf32", "kernels"]),
    (sample_command, ["checkpoint", "ema", "num_samples", "batch_size", "seed", "class_label", "image_size",
                      "out_dir", "original_sampling", "noise_from", "sampler", "mixed_precision", "allow_tf32",
                      "kernels", "complete", "given_rows", "given_mask"]),
    (export_command, ["checkpoint", "ema", "image_size", "export_dir", "format", "version", "kernels"]),
    (train_command, ["dataset", "data_set", "data_dir", "save_dir", "save_interval", "init_checkpoint",
                     "class_conditional", "learning_rate", "lr_decay", "batch_size", "init_batch_size",
                     "dropout_p", "max_epochs", "nr_gpu", "polyak_decay", "seed", "shuffle", "num_samples",
                     "preset", "image_size", "mixed_precision", "allow_tf32", "kernels", "accum_steps",
                     "recompute", "worker_gradients"]),
    (convert_command, ["tf1_checkpoint", "checkpoint", "to_tf1", "save_dir", "dropout_p"]),
])
def test_every_program_has_its_flags(module, own_flags):
    values = flags.FlagValues()
    module.define_flags(values)
    assert set(values) == set(own_flags + MODEL_FLAGS)


def test_help_lists_every_flag_and_nothing_else():
    """The installed console command: its --help lists its flags once each, without TensorFlow's start-up
    lines or retracing warnings."""
    command = installed_command("pixelsnail-evaluate")
    run = subprocess.run([command, "--help"], capture_output=True, text=True, timeout=300,
                         cwd=ROOT, env={k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"})
    assert run.returncode in (0, 1), run.stderr  # absl ends --help with 1
    assert run.stderr == ""
    values = flags.FlagValues()
    evaluate_command.define_flags(values)
    listed = [line.split(":")[0].strip() for line in run.stdout.splitlines() if line.startswith("  --")]
    assert sorted(listed) == sorted(f"--[no]{name}" if values[name].boolean else f"--{name}"
                                    for name in values)
    lines = [line for line in run.stdout.splitlines() if line.strip() and not line.startswith("    (")]
    assert len(lines) == len(set(lines)), "a line printed twice"  # "(an integer)" and such repeat


def test_offline_without_the_data_fails_within_seconds(tmp_path, monkeypatch):
    """No prepared data and no network: one line saying what to put where, without minutes of
    download retries (the network is cut off for this test: no connection succeeds)."""
    def unreachable(address, *args, **kwargs):
        raise OSError(f"no route to {address[0]}")

    monkeypatch.setattr(socket, "create_connection", unreachable)
    start = time.perf_counter()
    run = invoke(train_command, "--dataset=cifar10", f"--data_dir={tmp_path / 'data'}",
                 f"--save_dir={tmp_path / 'run'}")
    assert time.perf_counter() - start < 30
    assert run.returncode == 1
    assert run.stderr.splitlines() == [
        "error: cifar10 is not prepared in tensorflow_datasets' data directory and storage.googleapis.com "
        "/ www.cs.toronto.edu cannot be reached to download it: put the CIFAR-10 python pickles "
        f"(cifar-10-python.tar.gz) in {tmp_path / 'data' / 'cifar-10-python' / 'cifar-10-batches-py'}/"]
    assert not (tmp_path / "run").exists()


def test_what_tensorflow_datasets_needs_to_download_is_installed():
    """The modules its download path imports lazily (tensorflow_datasets/core: dataset_builder,
    download/): a fresh install that lacks one fails only once it downloads."""
    for module in ("importlib_resources", "etils.epath", "termcolor", "requests", "tqdm", "promise",
                   "psutil", "tree", "array_record.python", "pyarrow", "google.protobuf"):
        importlib.import_module(module)


def write_cifar_pickles(folder, images, labels):
    folder.mkdir(parents=True)
    planar = images.transpose(0, 3, 1, 2).reshape(len(images), -1)  # the original files' layout
    for name in ["test_batch"] + [f"data_batch_{i}" for i in range(1, 6)]:
        with open(folder / name, "wb") as f:
            pickle.dump({"data": planar, "labels": list(labels)}, f)


def test_cifar_pickles_in_the_original_layout(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(3, 32, 32, 3), dtype=np.uint8)
    write_cifar_pickles(tmp_path / "cifar-10-python" / "cifar-10-batches-py", images, [4, 5, 6])
    test_x, test_y = data.load_split("cifar10", "test", str(tmp_path))
    np.testing.assert_array_equal(test_x, images)
    np.testing.assert_array_equal(test_y, [4, 5, 6])
    train_x, _ = data.load_split("cifar10", "train", str(tmp_path))
    assert train_x.shape == (15, 32, 32, 3)


def test_imagenet_npz_in_the_original_layout(tmp_path):
    rng = np.random.default_rng(0)
    train, test = (rng.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8) for n in (4, 2))
    (tmp_path / "small_imagenet").mkdir()
    np.savez(tmp_path / "small_imagenet" / "imgnet_32x32.npz", trainx=train, testx=test)
    images, labels = data.load_split("imagenet32", "test", str(tmp_path))
    np.testing.assert_array_equal(images, test)
    assert labels is None
    np.testing.assert_array_equal(data.load_split("imagenet32", "train", str(tmp_path))[0], train)


def test_evaluate_on_cifar_files(tmp_path, tiny_reference):
    """The data path end to end: bpd of the bundle's test images written as CIFAR pickles."""
    images = np.zeros((4, 32, 32, 3), np.uint8)
    images[:, :8, :8] = tiny_reference["x_test_u8"]
    write_cifar_pickles(tmp_path / "cifar-10-python" / "cifar-10-batches-py", images, [0] * 4)
    np.save(tmp_path / "same.npy", images)
    results = []
    for source in (["--dataset=cifar10", f"--data_dir={tmp_path}"], [f"--images={tmp_path / 'same.npy'}"]):
        out = tmp_path / "r.json"
        run = evaluate(f"--checkpoint={TINY / 'trained'}", f"--json_out={out}", *source, *TINY_FLAGS)
        assert run.returncode == 0, run.stderr
        results.append(json.loads(out.read_text()))
    assert results[0] == results[1] and len(results[0]["per_image_bpd"]) == 4


@pytest.mark.parametrize("script", ["forward.py", "train_step.py"])
def test_benchmarks_run_and_end_with_json(script):
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), "--nr_filters=8",
                          "--nr_resnet=1", "--attn_rep=1", "--nr_logistic_mix=2", "--image_size=6",
                          "--batch_size=2", "--iters=1"], capture_output=True, text=True,
                         env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"), timeout=300)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["images_per_sec"] > 0 and result["batch_size"] == 2 and result["params"] > 0


def test_gpu_check_says_in_one_line_that_there_is_no_gpu():
    """benchmarks/gpu_check.sh is for machines with GPUs; elsewhere it stops at once, with one line."""
    run = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh")], capture_output=True, text=True,
                         env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="",
                                  PYTHON=sys.executable), timeout=300)
    assert run.returncode == 1
    assert run.stderr.strip().splitlines()[-1].startswith("gpu_check: TensorFlow sees no GPU here")


@pytest.mark.parametrize("sampler", ["fast", "naive"])
def test_sample_benchmark_runs_and_ends_with_json(sampler):
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "sample.py"), f"--sampler={sampler}",
                          "--nr_filters=8", "--nr_resnet=1", "--attn_rep=1", "--nr_logistic_mix=2",
                          "--image_size=4", "--num_samples=2", "--naive_steps=2"], capture_output=True,
                         text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"), timeout=300)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["seconds"] > 0 and result["sampler"] == sampler and result["num_samples"] == 2
    assert ("extrapolated_from_pixel_steps" in result) == (sampler == "naive")


def test_heatmaps_show_each_pixels_bits(tmp_path, test_images, tiny_config, tiny_reference):
    out, maps = tmp_path / "r.json", tmp_path / "maps"
    run = evaluate(f"--checkpoint={TINY / 'trained'}", f"--images={test_images}", f"--json_out={out}",
                   f"--heatmap_dir={maps}", *TINY_FLAGS)
    assert run.returncode == 0, run.stderr
    images, bits = tiny_reference["x_test_u8"], np.load(maps / "per_pixel_bits.npy")
    result = json.loads(out.read_text())
    assert bits.shape == images.shape[:3] and bits.dtype == np.float32
    # the same test bpd as without heat maps (the original's value), from the per-pixel terms
    np.testing.assert_allclose(result["bpd"], np.mean(tiny_reference["bpd_test_ema_final"]),
                               rtol=NETWORK_RTOL)
    np.testing.assert_allclose(-bits.sum(axis=(1, 2)) * np.log(2), result["per_image_log_likelihood"],
                               rtol=1e-6)
    model = trained_tiny_model(tiny_config)
    np.testing.assert_allclose(bits, -model.per_pixel_log_prob(images).numpy() / np.log(2),
                               rtol=NETWORK_RTOL, atol=1e-5)
    scale = json.loads((maps / "scale.json").read_text())
    assert scale["low_bits"] == 0 and scale["high_bits"] == pytest.approx(float(bits.max()))
    for i, (image, image_bits) in enumerate(zip(images, bits)):
        panel = tf.io.decode_png(tf.io.read_file(str(maps / f"heatmap_{i}.png"))).numpy()
        factor = panel.shape[0] // 8  # enlarged by a whole factor
        shrunk = panel[::factor, ::factor]
        np.testing.assert_array_equal(shrunk[:, :8], image)
        np.testing.assert_array_equal(shrunk[:, 9:17], heatmaps.colorize(image_bits, 0.0, scale["high_bits"]))
    assert len(np.unique(shrunk[:, 9:17].reshape(-1, 3), axis=0)) > 10  # a map, not one colour


def test_matmul_floor_benchmark_runs_and_ends_with_json():
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "matmul_floor.py"), "--matrices=2",
                          "--iters=1", "--batch_size=3"], capture_output=True, text=True,
                         env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"), timeout=300)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["batch_size"] == 3 and min(result["read_gb_s"], result["gemm_gb_s"],
                                             result["peak_gflop_s"]) > 0


def test_demo_patches_of_the_scikit_image_photographs():
    train_x, train_y = data.load_split("demo", "train", "unused")
    test_x, _ = data.load_split("demo", "test", "unused")
    assert train_x.dtype == np.uint8 and train_x.shape[1:] == (32, 32, 3) and train_y is None
    total = len(train_x) + len(test_x)
    assert total > 4000 and len(test_x) == -(-total // data.DEMO_TEST_EVERY)  # every 10th patch
    assert train_x.std() > 30  # real photographs, not constant images


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

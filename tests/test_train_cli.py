"""train.py end to end: the original's steps through the command line, resume after SIGKILL,
non-finite loss, bad input; 2 CPU replicas."""

import os
import pathlib
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from conftest import TINY, TINY_FLAGS
from tolerances import NETWORK_RTOL
from draws import assert_same_draws
from pixelsnail_tf.distributions import distribution_of
from pixelsnail_tf import checkpoints, cli
from pixelsnail_tf.images import image_grid
from pixelsnail_tf.sampling import NaiveSampler, draw_noise

ROOT = pathlib.Path(__file__).resolve().parents[1]
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
BUNDLE_FLAGS = [*TINY_FLAGS, "--batch_size=4", "--dropout_p=0", "--learning_rate=0.001",
                "--lr_decay=0.999998", "--polyak_decay=0.9995", "--num_samples=0", "--noshuffle"]


def train(*args, wait=True):
    command = [sys.executable, str(ROOT / "train.py"), *args]
    if not wait:
        return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=ENV)
    return subprocess.run(command, capture_output=True, text=True, env=ENV, timeout=600)


@pytest.fixture(scope="module")
def bundle_data(tmp_path_factory, tiny_reference):
    """The bundle's 3 training batches in order, and its test batch, as --dataset=npz files."""
    folder = tmp_path_factory.mktemp("npz")
    np.savez(folder / "train.npz", x=tiny_reference["x_train_u8"].reshape(-1, 8, 8, 3))
    np.savez(folder / "test.npz", x=tiny_reference["x_test_u8"])
    return folder


def run_state(save_dir):
    """Every tensor of the latest checkpoint of a run."""
    prefix = tf.train.latest_checkpoint(str(save_dir))
    reader = tf.train.load_checkpoint(prefix)
    return prefix, {n: reader.get_tensor(n) for n in reader.get_variable_to_shape_map()
                    if not n.startswith("_CHECKPOINTABLE")}


def bpd_of(save_dir, images, use_ema):
    model, _, kind = cli.load_model(str(save_dir), {}, {}, use_ema=use_ema)
    assert kind == "pixelsnail_tf"
    return model.bits_per_dim(images).numpy()


@pytest.mark.slow
def test_one_epoch_from_the_original_after_init_checkpoint(tmp_path, bundle_data, tiny_reference):
    run = train("--dataset=npz", f"--data_dir={bundle_data}", f"--save_dir={tmp_path / 'run'}",
                f"--init_checkpoint={TINY / 'after_init' / 'model.ckpt'}", "--max_epochs=1",
                "--save_interval=1", *BUNDLE_FLAGS)
    assert run.returncode == 0, run.stderr
    assert "starting from original checkpoint" in run.stdout
    for use_ema, key in ((False, "raw_final"), (True, "ema_final")):
        np.testing.assert_allclose(bpd_of(tmp_path / "run", tiny_reference["x_test_u8"], use_ema),
                                   tiny_reference[f"bpd_test_{key}"], rtol=NETWORK_RTOL)
    prefix, state = run_state(tmp_path / "run")
    assert prefix.endswith("ckpt-3") and state["optimizer/t/.ATTRIBUTES/VARIABLE_VALUE"] == 4.0
    # TensorBoard: train and test bits/dim under one tag, in two runs; the hyper-parameters
    train_tags, test_tags = (tensorboard_tags(tmp_path / "run" / "logs" / part) for part in ("train", "test"))
    assert train_tags["bpd"] == [1, 2, 3] and test_tags["bpd"] == [3]
    assert {"learning_rate", "epoch_bpd", "_hparams_/session_start_info"} <= set(train_tags)


def tensorboard_tags(folder):
    """{tag: [steps]} of the summaries in a TensorBoard log folder."""
    tags = {}
    for path in folder.glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                tags.setdefault(value.tag, []).append(event.step)
    return tags


@pytest.mark.slow
def test_resume_after_sigkill_equals_a_straight_run(tmp_path, bundle_data):
    common = ["--dataset=npz", f"--data_dir={bundle_data}", "--max_epochs=3", "--save_interval=1",
              *BUNDLE_FLAGS[:-1], "--seed=3"]  # shuffled, with data-dependent init
    straight = train(*common, f"--save_dir={tmp_path / 'straight'}")
    assert straight.returncode == 0, straight.stderr
    process = train(*common, f"--save_dir={tmp_path / 'killed'}", wait=False)
    deadline = time.time() + 300
    while not (tmp_path / "killed" / "ckpt-3.index").exists() and time.time() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    resumed = train(*common, f"--save_dir={tmp_path / 'killed'}")
    assert resumed.returncode == 0, resumed.stderr
    a, b = run_state(tmp_path / "straight")[1], run_state(tmp_path / "killed")[1]
    assert sorted(a) == sorted(b)
    # the same ops on the same data in the same order: equal, but for the resumed process's first trace
    # fusing kernels differently; 1e-6 is about one float32 ulp of weights of size ~10
    for name in a:
        np.testing.assert_allclose(b[name], a[name], atol=1e-6, rtol=0, err_msg=name)


@pytest.mark.slow
def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, bundle_data):
    common = ["--dataset=npz", f"--data_dir={bundle_data}", f"--save_dir={tmp_path / 'run'}",
              "--save_interval=1", *BUNDLE_FLAGS]
    assert train(*common, "--max_epochs=1").returncode == 0
    before = run_state(tmp_path / "run")
    run = train(*common, "--max_epochs=2", "--learning_rate=1e30")
    assert run.returncode == 1
    assert run.stderr.strip().splitlines()[-1].startswith("error: non-finite training loss at step")
    after = run_state(tmp_path / "run")
    assert after[0] == before[0]
    for name, value in before[1].items():
        np.testing.assert_array_equal(after[1][name], value)


@pytest.mark.slow
def test_two_cpu_replicas_through_the_command_line(tmp_path, bundle_data, tiny_reference):
    run = train("--dataset=npz", f"--data_dir={bundle_data}", f"--save_dir={tmp_path / 'run'}",
                f"--init_checkpoint={TINY / 'after_init' / 'model.ckpt'}", "--max_epochs=1",
                "--save_interval=1", "--nr_gpu=2", *BUNDLE_FLAGS[:4], "--batch_size=2",
                *BUNDLE_FLAGS[5:])
    assert run.returncode == 0, run.stderr
    np.testing.assert_allclose(bpd_of(tmp_path / "run", tiny_reference["x_test_u8"], True),
                               tiny_reference["bpd_test_ema_final"], rtol=NETWORK_RTOL)


@pytest.mark.slow
def test_gradient_accumulation_through_the_command_line(tmp_path, bundle_data, tiny_reference):
    """--batch_size=2 --accum_steps=2 gives the original's steps on batches of 4; a resume that would
    change the images per step is refused."""
    common = ["--dataset=npz", f"--data_dir={bundle_data}", f"--save_dir={tmp_path / 'run'}",
              "--save_interval=1", *BUNDLE_FLAGS[:4], "--batch_size=2", *BUNDLE_FLAGS[5:]]
    run = train(*common, f"--init_checkpoint={TINY / 'after_init' / 'model.ckpt'}", "--max_epochs=1",
                "--accum_steps=2")
    assert run.returncode == 0, run.stderr
    for use_ema, key in ((False, "raw_final"), (True, "ema_final")):
        np.testing.assert_allclose(bpd_of(tmp_path / "run", tiny_reference["x_test_u8"], use_ema),
                                   tiny_reference[f"bpd_test_{key}"], rtol=NETWORK_RTOL)
    prefix, state = run_state(tmp_path / "run")
    assert prefix.endswith("ckpt-3") and state["optimizer/t/.ATTRIBUTES/VARIABLE_VALUE"] == 4.0
    resumed = train(*common, "--max_epochs=2", "--accum_steps=1")
    assert resumed.returncode == 1
    assert resumed.stderr.strip().splitlines()[-1].endswith(
        "was trained with 4 images per step and this run has 2 (--batch_size x replicas x --accum_steps): "
        "resume with the same, or start another --save_dir")


@pytest.mark.slow
def test_preset_with_overrides(tmp_path, bundle_data):
    run = train("--dataset=npz", f"--data_dir={bundle_data}", f"--save_dir={tmp_path / 'run'}",
                "--preset=demo", "--nr_logistic_mix=3", "--max_epochs=1", "--batch_size=4",
                "--num_samples=0")
    assert run.returncode == 0, run.stderr
    config = checkpoints.read_config(str(tmp_path / "run"))
    assert (config.nr_filters, config.nr_resnet, config.attn_rep, config.nr_logistic_mix,
            config.dropout_p) == (32, 1, 2, 3, 0.0)


@pytest.mark.slow
def test_class_conditional_labels_flow_from_npz(tmp_path, tiny_reference):
    np.savez(tmp_path / "train.npz", x=tiny_reference["x_train_u8"].reshape(-1, 8, 8, 3),
             y=np.arange(12) % 3)
    np.savez(tmp_path / "test.npz", x=tiny_reference["x_test_u8"], y=np.array([0, 1, 2, 1]))
    common = ["--dataset=npz", f"--data_dir={tmp_path}", "--max_epochs=1", *BUNDLE_FLAGS]
    run = train(*common, "--class_conditional", "--num_samples=4", f"--save_dir={tmp_path / 'run'}")
    assert run.returncode == 0, run.stderr
    assert checkpoints.read_config(str(tmp_path / "run")).num_classes == 3
    # the sample grid: the fast sampler, EMA weights, labels 0, 1, 2, 0, noise from the run's seed
    model, _, _ = cli.load_model(str(tmp_path / "run"), {}, {}, use_ema=True)
    u_mix, u_logistic = draw_noise(distribution_of(model.config), 4, 8, 8, seed=42)
    labels = tf.constant([0, 1, 2, 0])
    drawn = NaiveSampler(model)((u_mix, u_logistic), labels)
    png = tf.io.decode_png(tf.io.read_file(str(tmp_path / "run" / "samples_1x.png"))).numpy()
    cells = [(1 + 9 * (i // 2), 1 + 9 * (i % 2)) for i in range(4)]  # 2 x 2 grid of 8x8 images
    fast = np.stack([png[top:top + 8, left:left + 8] for top, left in cells])
    np.testing.assert_array_equal(png, image_grid(fast))  # the grid's layout
    assert_same_draws(model, fast, drawn, u_mix, u_logistic, labels)  # but for rounding flips
    # completions.png: per test image a row of the image, its top half (the rest grey), 3 completions
    png = tf.io.decode_png(tf.io.read_file(str(tmp_path / "run" / "completions_1x.png"))).numpy()
    assert png.shape == (1 + 4 * 9, 1 + 5 * 9, 3)
    test = tiny_reference["x_test_u8"]
    for i in range(4):
        cells = [png[1 + 9 * i:9 + 9 * i, 1 + 9 * j:9 + 9 * j] for j in range(5)]
        np.testing.assert_array_equal(cells[0], test[i])
        np.testing.assert_array_equal(cells[1][:4], test[i, :4])
        assert (cells[1][4:] == 128).all()
        for completion in cells[2:]:
            np.testing.assert_array_equal(completion[:4], test[i, :4])
        assert len({c[4:].tobytes() for c in cells[2:]}) == 3  # three different draws of the bottom half
    np.savez(tmp_path / "train.npz", x=tiny_reference["x_train_u8"].reshape(-1, 8, 8, 3))
    run = train(*common, "--class_conditional", f"--save_dir={tmp_path / 'run2'}")
    assert run.returncode == 1
    assert run.stderr.strip().splitlines()[-1] == "error: --class_conditional needs labels, and npz has none"


def two_local_workers(save_dir, data_dir, *flags):
    """train.py as 2 processes of a MultiWorkerMirroredStrategy on 127.0.0.1 (TF_CONFIG), from the
    bundle's after-init checkpoint, 2 images per worker and step; both must end with status 0."""
    import json
    import socket
    ports = []
    for _ in range(2):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    command = [sys.executable, str(ROOT / "train.py"), "--dataset=npz", f"--data_dir={data_dir}",
               f"--save_dir={save_dir}", f"--init_checkpoint={TINY / 'after_init' / 'model.ckpt'}",
               "--max_epochs=1", "--save_interval=1", *BUNDLE_FLAGS[:4], "--batch_size=2",
               *BUNDLE_FLAGS[5:], *flags]
    workers = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=dict(ENV, TF_CONFIG=json.dumps({"cluster": cluster,
                                                                    "task": {"type": "worker", "index": i}})))
               for i in range(2)]
    outputs = [w.communicate(timeout=600) for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs[0][1][-2000:]


@pytest.mark.slow
@pytest.mark.paths
def test_two_local_workers_agree_with_the_single_process_run(tmp_path, bundle_data, tiny_reference):
    """2 worker processes, 2 images each per step, their gradients summed (--worker_gradients=sum): the
    original's three single-process steps."""
    two_local_workers(tmp_path / "run", bundle_data, "--worker_gradients=sum")
    for use_ema, key in ((False, "raw_final"), (True, "ema_final")):
        np.testing.assert_allclose(bpd_of(tmp_path / "run", tiny_reference["x_test_u8"], use_ema),
                                   tiny_reference[f"bpd_test_{key}"], rtol=NETWORK_RTOL)
    assert (tmp_path / "run" / "worker_1").is_dir()  # the other worker's copy stays apart


@pytest.mark.slow
def test_two_local_workers_average_their_gradients(tmp_path, tiny_reference):
    """--worker_gradients=mean (the default, the original's MPI semantics) across 2 processes: after one
    step Adam's moments, 0.05 g and 0.0005 g^2, are 1/2 and 1/4 of those of the summed gradients."""
    data = tmp_path / "data"
    data.mkdir()
    np.savez(data / "train.npz", x=tiny_reference["x_train_u8"][0])  # one step's 4 images
    np.savez(data / "test.npz", x=tiny_reference["x_test_u8"])
    moments = {}
    for semantics in ("mean", "sum"):
        two_local_workers(tmp_path / semantics, data, f"--worker_gradients={semantics}")
        reader = tf.train.load_checkpoint(str(tmp_path / semantics / "ckpt-1"))
        moments[semantics] = {name: reader.get_tensor(name) for name, _ in tf.train.list_variables(
            str(tmp_path / semantics / "ckpt-1")) if "_moment/" in name}
    assert moments["mean"] and set(moments["mean"]) == set(moments["sum"])
    for name, value in moments["sum"].items():
        share = 0.5 if "first_moment" in name else 0.25
        np.testing.assert_allclose(moments["mean"][name], share * value, rtol=1e-6,
                                   atol=1e-6 * np.abs(value).max(), err_msg=name)

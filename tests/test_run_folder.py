"""A run folder survives its accidents: a lost checkpoint index, a copy, two trainers, a failed start,
non-finite weights, Ctrl-C in a step; and every bad flag is one line, never a traceback."""

import hashlib
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from conftest import TINY, TINY_FLAGS
from pixelsnail_tf import run_folder, tf1_checkpoint
from test_train_cli import BUNDLE_FLAGS, ENV, ROOT, run_state, train


def hashes(folder):
    return {p.relative_to(folder): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != ".lock"}


def write_checkpoint(folder, step):
    tf.train.Checkpoint(v=tf.Variable([float(step)])).write(str(folder / f"ckpt-{step}"))


def test_newest_checkpoint_by_step_complete_only(tmp_path):
    for step in (3, 12, 7):
        write_checkpoint(tmp_path, step)
    assert sorted(run_folder.checkpoint_steps(tmp_path)) == [3, 7, 12]
    assert run_folder.newest_checkpoint(tmp_path) == str(tmp_path / "ckpt-12")
    next(tmp_path.glob("ckpt-12.data-*")).unlink()  # an incomplete checkpoint does not count
    assert run_folder.newest_checkpoint(tmp_path) == str(tmp_path / "ckpt-7")
    (tmp_path / "ckpt-7.index").write_bytes(b"truncated")
    assert run_folder.newest_checkpoint(tmp_path) == str(tmp_path / "ckpt-3")
    assert run_folder.exists(str(tmp_path / "ckpt-12")) and not run_folder.exists(str(tmp_path / "ckpt-1"))
    assert run_folder.newest_checkpoint(tmp_path / "missing") is None


def test_resolve_prefix_without_an_index_picks_the_highest_step(tmp_path):
    for step in (192, 64):  # ckpt-64 written last: the newer file, the older checkpoint
        write_checkpoint(tmp_path, step)
    assert not (tmp_path / "checkpoint").exists()
    assert tf1_checkpoint.resolve_prefix(str(tmp_path)) == str(tmp_path / "ckpt-192")


def test_a_folder_has_one_trainer(tmp_path):
    with run_folder.RunLock(str(tmp_path)):
        with pytest.raises(run_folder.RunFolderBusy, match=r"another trainer \(process \d+\) is using"):
            run_folder.RunLock(str(tmp_path)).acquire()
    run_folder.RunLock(str(tmp_path)).acquire().release()  # released on exit from the block
    # a process killed while holding the lock leaves no stale lock behind
    holder = subprocess.Popen([sys.executable, "-c", (
        f"import time; from pixelsnail_tf import run_folder; lock = run_folder.RunLock({str(tmp_path)!r}); "
        "lock.acquire(); print('locked', flush=True); time.sleep(60)")],
        stdout=subprocess.PIPE, text=True, env=ENV, cwd=ROOT)
    assert holder.stdout.readline().strip() == "locked"
    with pytest.raises(run_folder.RunFolderBusy, match=f"process {holder.pid}"):
        run_folder.RunLock(str(tmp_path)).acquire()
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    run_folder.RunLock(str(tmp_path)).acquire().release()


@pytest.fixture(scope="module")
def data8(tmp_path_factory, tiny_reference):
    """Eight training images (2 steps of 4 per epoch) and the bundle's 4 test images."""
    folder = tmp_path_factory.mktemp("npz8")
    np.savez(folder / "train.npz", x=tiny_reference["x_train_u8"].reshape(-1, 8, 8, 3)[:8])
    np.savez(folder / "test.npz", x=tiny_reference["x_test_u8"])
    return folder


def common(data, save_dir, epochs):
    return ["--dataset=npz", f"--data_dir={data}", f"--save_dir={save_dir}", f"--max_epochs={epochs}",
            "--save_interval=1", *BUNDLE_FLAGS, "--seed=5"]


def test_a_lost_index_resumes_from_the_newest_checkpoint_and_overwrites_nothing(tmp_path, data8):
    run = tmp_path / "run"
    assert train(*common(data8, run, 3)).returncode == 0
    newest = run_state(run)
    (run / "checkpoint").unlink()
    before = hashes(run)
    resumed = train(*common(data8, run, 4), "--seed=7")  # another seed would init another model
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming {run / 'ckpt-6'}: step 6, epoch 3, batch 0" in resumed.stdout
    after = hashes(run)
    assert all(after[name] == digest for name, digest in before.items())  # every file kept as it was
    assert run_state(run)[0].endswith("ckpt-8")
    # a copy of only the checkpoint files and config.json resumes the same way
    copy = tmp_path / "copy"
    copy.mkdir()
    for path in run.iterdir():
        if path.name.startswith(("ckpt-6.", "ckpt-2.")) or path.name == "config.json":
            (copy / path.name).write_bytes(path.read_bytes())
    resumed = train(*common(data8, copy, 3))
    assert resumed.returncode == 0 and f"resuming {copy / 'ckpt-6'}: step 6" in resumed.stdout
    assert newest[0].endswith("ckpt-6")


def test_a_second_trainer_is_refused(tmp_path, data8):
    first = train(*common(data8, tmp_path, 30), wait=False)
    deadline = time.time() + 300
    while not (tmp_path / "ckpt-2.index").exists() and time.time() < deadline:
        time.sleep(0.05)
    second = train(*common(data8, tmp_path, 30))
    first.send_signal(signal.SIGTERM)
    first.communicate(timeout=300)
    assert first.returncode == 0
    assert second.returncode == 1
    assert second.stderr.strip().splitlines()[-1] == (
        f"error: another trainer (process {first.pid}) is using {tmp_path}; wait for it to finish or "
        f"choose another --save_dir")


def test_a_failed_start_writes_nothing(tmp_path, data8):
    assert train(*common(data8, tmp_path, 1)).returncode == 0
    (tmp_path / "config.json").unlink()
    before = hashes(tmp_path)
    run = train(*common(data8, tmp_path, 2), "--nr_filters=16")
    assert run.returncode == 1 and run.stderr.strip().splitlines()[-1].startswith(
        f"error: cannot resume from {tmp_path / 'ckpt-2'} with these model flags: ")
    assert hashes(tmp_path) == before  # config.json not written with the wrong flags
    run = train(*common(data8, tmp_path, 2))  # the right flags resume, and config.json comes back
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "config.json").exists() and "resuming" in run.stdout
    before = hashes(tmp_path)
    run = train(*common(data8, tmp_path, 3), "--batch_size=2")  # the data position counts batches
    assert run.returncode == 1 and run.stderr.strip().splitlines()[-1] == (
        f"error: {tmp_path} was trained with 4 images per step and this run has 2 (--batch_size x "
        f"replicas): resume with the same, or start another --save_dir")
    assert hashes(tmp_path) == before


def test_non_finite_weights_are_never_saved(tmp_path, tiny_reference):
    np.savez(tmp_path / "train.npz", x=tiny_reference["x_train_u8"][0])  # one step per epoch
    np.savez(tmp_path / "test.npz", x=tiny_reference["x_test_u8"])
    run_dir = tmp_path / "run"
    assert train(*common(tmp_path, run_dir, 1)).returncode == 0
    before = hashes(run_dir)
    run = train(*common(tmp_path, run_dir, 3), "--learning_rate=1e38")  # the step's update overflows
    assert run.returncode == 1
    assert run.stderr.strip().splitlines()[-1] == (
        f"error: non-finite weights after step 2: not saved; the newest checkpoint ({run_dir / 'ckpt-1'}) "
        f"is the last finite one")
    after = hashes(run_dir)
    assert all(after[name] == digest for name, digest in before.items())
    assert sorted(run_dir.glob("ckpt-*")) == sorted(run_dir / name for name in before if name.match("ckpt-*"))
    assert train(*common(tmp_path, run_dir, 2)).returncode == 0  # the rerun resumes from ckpt-1


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory, data8):
    folder = tmp_path_factory.mktemp("straight")
    assert train(*common(data8, folder, 3)).returncode == 0
    return folder


# right after the first save (the evaluation that follows it), and a little later (the next steps)
@pytest.mark.parametrize("delay", [0.0, 0.5])
def test_ctrl_c_saves_a_consistent_position(tmp_path, data8, straight_run, delay):
    """SIGINT acts as SIGTERM: after the current step (or evaluation batch), so the saved step and data
    position agree, and the resumed run equals an uninterrupted one."""
    interrupted = tmp_path / "interrupted"
    process = train(*common(data8, interrupted, 3), wait=False)
    deadline = time.time() + 300
    while not (interrupted / "ckpt-2.index").exists() and time.time() < deadline:
        time.sleep(0.01)
    time.sleep(delay)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err
    assert "stopped: saved" in out
    resumed = train(*common(data8, interrupted, 3))
    assert resumed.returncode == 0, resumed.stderr
    a, b = run_state(straight_run), run_state(interrupted)
    assert a[0].rsplit("/", 1)[1] == b[0].rsplit("/", 1)[1] == "ckpt-6"
    for name in a[1]:
        np.testing.assert_array_equal(b[1][name], a[1][name], err_msg=name)  # no batch trained twice


ERRORS = [
    ("train.py", ["--batch_size=0"]), ("train.py", ["--save_interval=0"]),
    ("train.py", ["--init_batch_size=-2"]), ("train.py", ["--learning_rate=-1"]),
    ("train.py", ["--learning_rate=nan"]), ("train.py", ["--polyak_decay=2"]),
    ("train.py", ["--polyak_decay=nan"]), ("train.py", ["--lr_decay=0"]), ("train.py", ["--dropout_p=1"]),
    ("train.py", ["--max_epochs=0"]), ("sample.py", ["--num_samples=0"]),
    ("sample.py", ["--num_samples=-1"]), ("sample.py", ["--batch_size=0"]),
    ("evaluate.py", ["--batch_size=0"]), ("evaluate.py", ["--batch_size=-3"]),
    ("export.py", ["--version=-1"]),
]


def own_lines(stderr):
    """stderr without TensorFlow's C++ start-up log lines."""
    return [line for line in stderr.strip().splitlines()
            if not line.startswith(("WARNING: All log messages", "I0000", "W0000", "E0000"))]


@pytest.mark.parametrize("script, args", ERRORS)
def test_bad_flags_are_one_line(tmp_path, script, args):
    checkpoint = [f"--checkpoint={TINY / 'trained'}", *TINY_FLAGS]
    where = {"train.py": [f"--save_dir={tmp_path / 'run'}"],
             "sample.py": [*checkpoint, f"--out_dir={tmp_path}"],
             "evaluate.py": [*checkpoint, f"--json_out={tmp_path / 'out.json'}"],
             "export.py": [*checkpoint, f"--export_dir={tmp_path}"]}[script]
    run = subprocess.run([sys.executable, str(ROOT / script), *where, *args], capture_output=True, text=True,
                         env=ENV, timeout=300)
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    first = own_lines(run.stderr)[0]
    assert len(first) <= 200 and args[0].split("=")[0] in first, first
    assert not any(tmp_path.iterdir())  # nothing written

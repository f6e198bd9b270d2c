"""A run folder survives its accidents: a lost checkpoint index, a copy, two trainers, a failed start,
non-finite weights, Ctrl-C in a step (bad inputs: test_bad_inputs)."""

import hashlib
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from commands import invoke
from pixelsnail_tf import checkpoints
from pixelsnail_tf.runs import run_folder
from pixelsnail_tf.commands import sample as sample_command
from pixelsnail_tf.commands import train as train_command
from test_train_cli import BUNDLE_FLAGS, ENV, ROOT, run_state, train


def hashes(folder, started=False):
    """sha256 of every file but the lock; of the files a start keeps (not flags.txt, which records
    the newest start's flags) with started=True."""
    skip = {".lock", "flags.txt"} if started else {".lock"}
    return {p.relative_to(folder): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name not in skip}


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
    assert checkpoints.resolve_prefix(str(tmp_path)) == str(tmp_path / "ckpt-192")


@pytest.mark.slow
def test_a_folder_has_one_trainer(tmp_path):
    with run_folder.RunLock(str(tmp_path)):
        with pytest.raises(run_folder.RunFolderBusy, match=r"another trainer \(process \d+\) is using"):
            run_folder.RunLock(str(tmp_path)).acquire()
    run_folder.RunLock(str(tmp_path)).acquire().release()  # released on exit from the block
    # a process killed while holding the lock leaves no stale lock behind
    holder = subprocess.Popen([sys.executable, "-c", (
        f"import time; from pixelsnail_tf.runs import run_folder; lock = run_folder.RunLock({str(tmp_path)!r}); "
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
            "--save_interval=1", *BUNDLE_FLAGS, "--seed=5", "--dropout_p=0.5"]  # dropout: masks resume too


@pytest.mark.slow
def test_a_lost_index_resumes_from_the_newest_checkpoint_and_overwrites_nothing(tmp_path, data8):
    run = tmp_path / "run"
    assert train(*common(data8, run, 3)).returncode == 0
    newest = run_state(run)
    (run / "checkpoint").unlink()
    before = hashes(run, started=True)
    # another learning rate: a run started over would write other ckpt-2 and ckpt-4 files
    resumed = train(*common(data8, run, 4), "--learning_rate=0.002")
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming {run / 'ckpt-6'}: step 6, epoch 3, batch 0" in resumed.stdout
    after = hashes(run, started=True)
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_a_failed_start_writes_nothing(tmp_path, data8):
    assert train(*common(data8, tmp_path, 1)).returncode == 0
    (tmp_path / "config.json").unlink()  # as in a copy of the checkpoint files alone
    (tmp_path / "flags.txt").unlink()
    before = hashes(tmp_path)
    run = train(*common(data8, tmp_path, 2), "--nr_filters=16")
    assert run.returncode == 1 and run.stderr.splitlines()[0] == (
        f"error: cannot resume from {tmp_path / 'ckpt-2'}: it holds another model than these model flags make")
    assert hashes(tmp_path) == before  # config.json not written with the wrong flags
    run = train(*common(data8, tmp_path, 2))  # the right flags resume, and config.json comes back
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "config.json").exists() and "resuming" in run.stdout
    before = hashes(tmp_path)
    run = train(*common(data8, tmp_path, 3), "--batch_size=2")  # flags.txt records the batch size
    assert run.returncode == 1 and run.stderr.strip().splitlines()[-1] == (
        f"error: --batch_size=2 contradicts the run in {tmp_path}, which has --batch_size=4; omit it to "
        f"resume, or start another --save_dir")
    assert hashes(tmp_path) == before
    (tmp_path / "flags.txt").unlink()
    before = hashes(tmp_path)
    run = train(*common(data8, tmp_path, 3), "--batch_size=2")  # and so does the checkpoint
    assert run.returncode == 1 and run.stderr.strip().splitlines()[-1] == (
        f"error: {tmp_path} was trained with 4 images per step and this run has 2 (--batch_size x "
        f"replicas x --accum_steps): resume with the same, or start another --save_dir")
    assert hashes(tmp_path) == before


@pytest.mark.slow
def test_non_finite_weights_are_never_saved(tmp_path, tiny_reference):
    np.savez(tmp_path / "train.npz", x=tiny_reference["x_train_u8"][0])  # one step per epoch
    np.savez(tmp_path / "test.npz", x=tiny_reference["x_test_u8"])
    run_dir = tmp_path / "run"
    assert train(*common(tmp_path, run_dir, 1)).returncode == 0
    before = hashes(run_dir, started=True)
    run = train(*common(tmp_path, run_dir, 3), "--learning_rate=1e38")  # the step's update overflows
    assert run.returncode == 1
    assert run.stderr.strip().splitlines()[-1] == (
        f"error: non-finite weights after step 2: not saved; the newest checkpoint ({run_dir / 'ckpt-1'}) "
        f"is the last finite one")
    after = hashes(run_dir, started=True)
    assert all(after[name] == digest for name, digest in before.items())
    assert sorted(run_dir.glob("ckpt-*")) == sorted(run_dir / name for name in before if name.match("ckpt-*"))
    assert train(*common(tmp_path, run_dir, 2)).returncode == 0  # the rerun resumes from ckpt-1


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory, data8):
    folder = tmp_path_factory.mktemp("straight")
    assert train(*common(data8, folder, 3)).returncode == 0
    return folder


# right after the first save (the evaluation that follows it), and a little later (the next steps)
@pytest.mark.slow
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


@pytest.mark.slow
def test_the_folder_alone_resumes_and_refuses_contradicting_flags(tmp_path, data8, straight_run):
    """flags.txt records the run's flags: `--save_dir=DIR` alone (here with a longer --max_epochs)
    resumes as the full command would; a flag that contradicts the record is refused; sampling takes
    the trained image size from it."""
    run = tmp_path / "run"
    assert train(*common(data8, run, 2)).returncode == 0
    refused = invoke(train_command, f"--save_dir={run}", "--seed=6")
    assert refused.returncode == 1
    assert refused.stderr.splitlines()[0] == (f"error: --seed=6 contradicts the run in {run}, which has "
                                              "--seed=5; omit it to resume, or start another --save_dir")
    assert train(f"--save_dir={run}", "--max_epochs=3").returncode == 0
    a, b = run_state(straight_run), run_state(run)
    assert a[0].rsplit("/", 1)[1] == b[0].rsplit("/", 1)[1] == "ckpt-6"
    for name in a[1]:
        np.testing.assert_array_equal(b[1][name], a[1][name], err_msg=name)
    drawn = invoke(sample_command, f"--checkpoint={run}", "--num_samples=1", f"--out_dir={tmp_path / 's'}")
    assert drawn.returncode == 0, drawn.stderr
    assert np.load(tmp_path / "s" / "samples.npy").shape == (1, 8, 8, 3)

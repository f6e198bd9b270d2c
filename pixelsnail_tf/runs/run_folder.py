"""A training run's folder: one trainer at a time, checkpoints found by step, none ever overwritten.

`tf.train.CheckpointManager` knows a folder's checkpoints from its `checkpoint` index file alone. When
that file is lost (deleted, not copied with the `ckpt-N.*` files), the manager sees an empty folder: a
rerun would start over and write new checkpoints over the old ones. Here the newest checkpoint is found
from the files themselves, by the step number in their names (not their times: a copy changes those),
and only a checkpoint whose index and data files are all present and readable counts.
"""

import errno
import fcntl
import os
import re

import tensorflow as tf
from absl import flags

from pixelsnail_tf.errors import first_line

LOCK_FILE = ".lock"
FLAGS_FILE = "flags.txt"  # the flags that made the run, as an absl flagfile (written by train.py)
_CHECKPOINT = re.compile(r"^ckpt-(\d+)\.index$")
_TEMPORARY = re.compile(r"^ckpt-\d+_temp$")  # TensorFlow writes a checkpoint's shards here first
_RUN_FILE = re.compile(r"^(ckpt-\d+(\..+|_temp)|checkpoint|config\.json|flags\.txt(\.tmp)?|"
                       r"(samples|completions)(_1x)?\.png|logs|\.lock|[a-z]+_\d+)$")


class RunFolderBusy(ValueError):
    """Another process trains in the same folder."""


def _is_complete(prefix):
    """True when the checkpoint's index reads and every data shard it names is there."""
    try:
        reader = tf.train.load_checkpoint(prefix)
        reader.get_variable_to_shape_map()
    except (tf.errors.OpError, ValueError):
        return False
    shards = tf.io.gfile.glob(f"{prefix}.data-*-of-*")
    if not shards:
        return False
    expected = int(shards[0].rsplit("-of-", 1)[1])
    return len(shards) == expected


def checkpoint_steps(directory):
    """{step: prefix} of the `ckpt-<step>` checkpoints in `directory` (complete or not)."""
    if not tf.io.gfile.isdir(directory):
        return {}
    steps = {}
    for name in tf.io.gfile.listdir(directory):
        match = _CHECKPOINT.match(name)
        if match:
            steps[int(match.group(1))] = os.path.join(directory, name[:-len(".index")])
    return steps


def newest_checkpoint(directory):
    """The prefix of the highest-step complete checkpoint in `directory`, or None."""
    for step, prefix in sorted(checkpoint_steps(directory).items(), reverse=True):
        if _is_complete(prefix):
            return prefix
    return None


def remove_temporary_files(directory):
    """Removes the `ckpt-N_temp/` folders a process killed while saving left (call with the lock held)."""
    for name in tf.io.gfile.listdir(directory):
        if _TEMPORARY.match(name) and tf.io.gfile.isdir(os.path.join(directory, name)):
            tf.io.gfile.rmtree(os.path.join(directory, name))


def foreign_files(directory):
    """The names in `directory` that no run writes, sorted (a run's: checkpoints, its index, config.json,
    flags.txt, samples, logs, the lock, other workers' folders)."""
    return sorted(name for name in tf.io.gfile.listdir(directory)
                  if not _RUN_FILE.match(name.rstrip("/")))


def exists(prefix):
    """True if a checkpoint (any of its files) is already at `prefix`: it must not be written again."""
    return bool(tf.io.gfile.glob(prefix + ".*"))


class RunLock:
    """An exclusive lock on a run folder for the life of the process (or until `release`).

    An advisory `flock` on `<folder>/.lock`: the operating system releases it when the process ends,
    however it ends (kill -9 included), so a stale lock cannot block a later run. The file holds the
    owner's process id, for the message a second trainer gets.
    """

    def __init__(self, directory):
        self.path = os.path.join(directory, LOCK_FILE)
        self._file = None

    def acquire(self):
        handle = open(self.path, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            if error.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            handle.seek(0)
            owner = handle.read().strip() or "unknown"
            handle.close()
            raise RunFolderBusy(f"another trainer (process {owner}) is using {os.path.dirname(self.path)}; "
                                f"wait for it to finish or choose another --save_dir") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._file = handle
        return self

    def release(self):
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc_info):
        self.release()


def write_flags(directory, text):
    """Writes the run's flagfile, replacing any older one in one step (a crash leaves either)."""
    path = os.path.join(directory, FLAGS_FILE)
    with tf.io.gfile.GFile(path + ".tmp", "w") as f:
        f.write(text)
    tf.io.gfile.rename(path + ".tmp", path, overwrite=True)


def read_flags(directory, define_flags):
    """The flags the run in `directory` recorded (its flagfile), parsed as the training program's
    (`define_flags(flag_values)` defines them) into a FlagValues; None where there is no flagfile. A
    damaged one (an unknown flag, a value its flag refuses, a line that is no flag) is a ValueError."""
    path = os.path.join(directory, FLAGS_FILE)
    if not tf.io.gfile.exists(path):
        return None
    recorded = flags.FlagValues()
    define_flags(recorded)
    try:
        rest = recorded(["program", *recorded.read_flags_from_files([f"--flagfile={path}"])])
    except flags.Error as error:
        raise ValueError(f"{path} cannot be read as the run's flags: {first_line(error)}") from None
    if len(rest) > 1:
        raise ValueError(f"{path} cannot be read as the run's flags: {rest[1]!r} is not a flag")
    return recorded

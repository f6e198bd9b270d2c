"""The checkpoint a path names: a prefix (`.../model.ckpt`, `.../ckpt-12`) or a folder's newest."""

import os
import re

import tensorflow as tf


def resolve_prefix(path):
    """Checkpoint prefix from a prefix (`.../model.ckpt`) or a directory (its latest checkpoint).

    For a directory, only the base name recorded in its `checkpoint` file is used (absolute paths
    written by another machine are not trusted); without that file, the highest step number in the
    names (`ckpt-<step>`) wins, file times only among names without one (a copy changes the times).
    """
    if tf.io.gfile.exists(path + ".index"):
        return path
    if not tf.io.gfile.isdir(path):
        raise FileNotFoundError(f"no checkpoint at {path} (expected {path}.index or a directory)")
    state = os.path.join(path, "checkpoint")
    if tf.io.gfile.exists(state):
        with tf.io.gfile.GFile(state) as f:
            match = re.search(r'^model_checkpoint_path:\s*"(.*)"', f.read(), re.MULTILINE)
        if match:
            prefix = os.path.join(path, os.path.basename(match.group(1)))
            if tf.io.gfile.exists(prefix + ".index"):
                return prefix
    indexes = tf.io.gfile.glob(os.path.join(path, "*.index"))
    if not indexes:
        raise FileNotFoundError(f"no checkpoint in directory {path} (no *.index file)")

    def newest(index):
        step = re.search(r"-(\d+)\.index$", index)
        return (int(step.group(1)) if step else -1, tf.io.gfile.stat(index).mtime_nsec)
    return max(indexes, key=newest)[:-len(".index")]

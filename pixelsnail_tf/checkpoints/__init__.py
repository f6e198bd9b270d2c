"""Checkpoints of either kind, read and written here: pixelsnail_tf's own (ours.py: a TF2 object
checkpoint beside the config.json of its model) and the original TF1 code's (tf1.py: its variable names,
strict loading, a guess of its flags). A path names a prefix or a folder (prefix.py: its newest
checkpoint); the two kinds are told apart by the object graph that every TF2 checkpoint carries.
"""

import os

import tensorflow as tf

from pixelsnail_tf.checkpoints.ours import (CONFIG_FILE, config_differences, model_checkpoint,
                                            read_config, weight_differences, write_config)
from pixelsnail_tf.checkpoints.prefix import resolve_prefix
from pixelsnail_tf.checkpoints.tf1 import (ADAM_STEP, CheckpointMismatchError, describe_tf1_shapes,
                                           load_tf1_checkpoint, load_tf1_training_state,
                                           read_tf1_checkpoint, tf1_name_map)
from pixelsnail_tf.errors import first_line
from pixelsnail_tf.models import build_model
from pixelsnail_tf.training.polyak import PolyakAverage

__all__ = ["ADAM_STEP", "CONFIG_FILE", "CheckpointMismatchError", "config_differences",
           "describe_tf1_shapes", "is_tf1", "load_model", "load_tf1_checkpoint", "load_tf1_training_state",
           "load_weights", "model_checkpoint", "read_config", "read_tf1_checkpoint", "resolve_prefix",
           "tf1_name_map", "weight_differences", "write_config"]

_OBJECT_GRAPH = "_CHECKPOINTABLE_OBJECT_GRAPH"


def is_tf1(prefix):
    """Whether the checkpoint at `prefix` was written by the original TF1 code (it has no object graph)."""
    return _OBJECT_GRAPH not in dict(tf.train.list_variables(prefix))


def load_weights(model, prefix, use_ema=True):
    """Fills `model` from a checkpoint prefix of either kind; raw or Polyak-averaged weights."""
    if is_tf1(prefix):
        load_tf1_checkpoint(model, prefix, use_ema=use_ema)
        return
    differences = weight_differences(model, prefix)
    if differences:
        raise CheckpointMismatchError(
            f"checkpoint {prefix} does not fit the model its folder's {CONFIG_FILE} describes (was "
            f"{CONFIG_FILE} edited, or copied from another run?)\n" + "\n".join(differences))
    ema = PolyakAverage(model)
    status = model_checkpoint(model, ema).read(prefix)
    status.expect_partial().assert_existing_objects_matched()
    if use_ema:
        ema.copy_to_model()


def load_model(path, tf1_config, explicit=None, use_ema=True, **model_options):
    """(model with loaded weights, checkpoint prefix, kind) from a checkpoint of either kind.

    Ours is built from its config.json, which the `explicit` model settings ({name: value}, e.g. the
    flags given on the command line) must agree with; an original TF1 checkpoint records no config,
    so it is built from `tf1_config()` (a function: asked only then). model_options: build_model's.
    A damaged file gives one ValueError naming the checkpoint.
    """
    prefix = resolve_prefix(path)
    try:
        original = is_tf1(prefix)
    except (tf.errors.OpError, IndexError) as error:  # a truncated or corrupted index
        raise unreadable(prefix, error) from None
    if original:
        config, kind = tf1_config(), "original TF1"
    else:
        config, kind = read_config(os.path.dirname(prefix)), "pixelsnail_tf"
        differences = config_differences(config, config.replace(**(explicit or {})))
        if differences:
            raise ValueError(f"model flags contradict {prefix}'s {CONFIG_FILE}: " + "; ".join(differences))
    model = build_model(config, **model_options)
    model.build(None)
    try:
        load_weights(model, prefix, use_ema=use_ema)
    except (tf.errors.OpError, IndexError) as error:  # truncated or corrupted data files
        raise unreadable(prefix, error) from None
    return model, prefix, kind


def unreadable(prefix, error):
    """The error for a checkpoint whose files cannot be read; TensorFlow's reason on a second line."""
    return ValueError(f"cannot read checkpoint {prefix}: a damaged or truncated file\n{first_line(error)}")

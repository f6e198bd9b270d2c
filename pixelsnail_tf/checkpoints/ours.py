"""pixelsnail_tf's own checkpoints: a TF2 object checkpoint (`tf.train.Checkpoint(model=..., ema=...)`,
written by a `tf.train.CheckpointManager` as `<dir>/ckpt-N`) with the model config in `<dir>/config.json`.
"""

import dataclasses
import json
import os

import tensorflow as tf

from pixelsnail_tf.config import ModelConfig
from pixelsnail_tf.models.base import weight_name

CONFIG_FILE = "config.json"
_VALUE = "/.ATTRIBUTES/VARIABLE_VALUE"


def model_checkpoint(model, ema, **extra):
    """The object checkpoint of our format: model weights and their Polyak averages (+ extra,
    e.g. optimizer=optimizer.original_adam(model)).

    Weights are keyed by their paths (independent of how Keras tracks lists of layers); the
    averages by the paths of the weights they average.
    """
    weights = {weight_name(w): w.value for w in model.weights}
    averages = {weight_name(w): shadow for w, shadow in zip(model.trainable_weights, ema.shadows)}
    return tf.train.Checkpoint(model=weights, ema=averages, **extra)


def write_config(directory, config):
    tf.io.gfile.makedirs(directory)
    with tf.io.gfile.GFile(os.path.join(directory, CONFIG_FILE), "w") as f:
        json.dump(config.to_dict(), f, indent=2, sort_keys=True)


def read_config(directory):
    path = os.path.join(directory, CONFIG_FILE)
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(f"{path} is missing: it records the model config of the checkpoints "
                                f"in {directory}")
    try:
        with tf.io.gfile.GFile(path) as f:
            fields = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} is not valid JSON ({error})") from None
    known = {f.name for f in dataclasses.fields(ModelConfig)}
    if not isinstance(fields, dict) or set(fields) - known:
        unknown = sorted(set(fields) - known) if isinstance(fields, dict) else fields
        raise ValueError(f"{path}: unknown model config fields {unknown}\nthe fields of a model config: "
                         f"{', '.join(sorted(known))}")
    try:
        return ModelConfig(**fields)
    except (TypeError, ValueError) as error:  # a value of the wrong type or out of range
        raise ValueError(f"{path}: {error}") from None


def config_differences(config, other):
    """['name: a != b', ...] for every field where two model configs differ."""
    return [f"{f.name}: {getattr(config, f.name)!r} != {getattr(other, f.name)!r}"
            for f in dataclasses.fields(ModelConfig) if getattr(config, f.name) != getattr(other, f.name)]


def weight_differences(model, prefix):
    """Lines naming the model's weights that our checkpoint at `prefix` lacks, holds in another
    shape, or holds beyond them; [] when they fit."""
    stored = {}
    for key, shape in tf.train.list_variables(prefix):
        if key.startswith("model/") and key.endswith(_VALUE):  # names escape "/" as ".S"
            stored[key[len("model/"):-len(_VALUE)].replace(".S", "/")] = list(shape)
    wanted = {weight_name(w): list(w.shape) for w in model.weights}
    lines = []
    for what, names in (("absent", sorted(set(wanted) - set(stored))),
                        ("not in the model", sorted(set(stored) - set(wanted))),
                        ("of another shape", [f"{n} {stored[n]} vs model {wanted[n]}"
                                              for n in sorted(set(wanted) & set(stored))
                                              if wanted[n] != stored[n]])):
        if names:
            lines.append(f"{len(names)} weights {what}: " + ", ".join(names[:6])
                         + (f" ... (+{len(names) - 6} more)" if len(names) > 6 else ""))
    return lines

"""Loading weights from either kind of checkpoint: pixelsnail_tf's own, or the original TF1 code's.

Ours is a TF2 object checkpoint (`tf.train.Checkpoint(model=..., ema=[shadows])`, written by a
`tf.train.CheckpointManager` as `<dir>/ckpt-N`) with the model config in `<dir>/config.json`.
The original's has flat TF1 variable names (see tf1_checkpoint). The two are told apart by the
object graph that every TF2 checkpoint carries.
"""

import dataclasses
import json
import os

import tensorflow as tf

from pixelsnail_tf import tf1_checkpoint
from pixelsnail_tf.config import ModelConfig
from pixelsnail_tf.ema import PolyakAverage
from pixelsnail_tf.optimizer import OriginalAdam

CONFIG_FILE = "config.json"
_OBJECT_GRAPH = "_CHECKPOINTABLE_OBJECT_GRAPH"
_VALUE = "/.ATTRIBUTES/VARIABLE_VALUE"


def is_tf1(prefix):
    return _OBJECT_GRAPH not in dict(tf.train.list_variables(prefix))


def weight_name(weight):
    """A weight's path inside its model, e.g. attention_0/kv_resnet/conv_in/V: its checkpoint key."""
    return weight.path.split("/", 1)[1]


def original_adam(model):
    """The original's Adam over the model's trainable weights, slots keyed by weight name."""
    weights = model.trainable_weights
    return OriginalAdam([w.value for w in weights], [weight_name(w) for w in weights])


def model_checkpoint(model, ema, **extra):
    """The object checkpoint of our format: model weights and their Polyak averages (+ extra,
    e.g. optimizer=original_adam(model)).

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
    except TypeError as error:  # a value of the wrong type, e.g. a string where a number belongs
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


def load_weights(model, prefix, use_ema=True):
    """Fills `model` from a checkpoint prefix of either kind; raw or Polyak-averaged weights."""
    if is_tf1(prefix):
        tf1_checkpoint.load_tf1_checkpoint(model, prefix, use_ema=use_ema)
        return
    differences = weight_differences(model, prefix)
    if differences:
        raise tf1_checkpoint.CheckpointMismatchError(
            f"checkpoint {prefix} does not fit the model its folder's {CONFIG_FILE} describes (was "
            f"{CONFIG_FILE} edited, or copied from another run?)\n" + "\n".join(differences))
    ema = PolyakAverage(model)
    status = model_checkpoint(model, ema).read(prefix)
    status.expect_partial().assert_existing_objects_matched()
    if use_ema:
        ema.copy_to_model()


def load_tf1_training_state(model, ema, optimizer, prefix):
    """Everything an original checkpoint holds into our objects: weights, averages, Adam state."""
    entries, tensors, t = tf1_checkpoint.read_tf1_checkpoint(model, prefix)
    for e in entries:
        values, key = tensors[e.name], weight_name(e.variable)
        e.variable.assign(values["raw"])
        ema.shadow(e.variable).assign(values["ema"])
        optimizer.first_moment[key].assign(values["first_moment"])
        optimizer.second_moment[key].assign(values["second_moment"])
    optimizer.t.assign(t)

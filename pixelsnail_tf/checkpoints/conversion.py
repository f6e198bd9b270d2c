"""Convert checkpoints between the original TF1 layout and pixelsnail_tf's, both ways, exactly.

  pixelsnail-convert --tf1_checkpoint=checkpoints/cifar --save_dir=runs/cifar [model flags]
  pixelsnail-convert --to_tf1 --checkpoint=runs/cifar --save_dir=checkpoints/cifar_tf1

Everything the original saves travels: raw weights, their Polyak averages, the Adam moments and its
step counter t. Ours is written as `<save_dir>/ckpt-<t-1>` with `config.json`; the TF1 side as
`<save_dir>/model.ckpt` (+ a `checkpoint` file with a relative path), variable names as the original.
"""

import os

import tensorflow as tf

from pixelsnail_tf import checkpoints
from pixelsnail_tf.models import build_model
from pixelsnail_tf.models.base import weight_name
from pixelsnail_tf.training.optimizer import original_adam
from pixelsnail_tf.training.polyak import PolyakAverage


def _built_model(config):
    model = build_model(config)
    model.build(None)
    return model


def _require_empty(save_dir):
    if not tf.io.gfile.exists(save_dir):
        return
    if not tf.io.gfile.isdir(save_dir):
        raise ValueError(f"--save_dir={save_dir} is a file; give a folder")
    if tf.io.gfile.listdir(save_dir):
        raise FileExistsError(f"{save_dir} is not empty; convert into an empty folder")


def tf1_to_ours(tf1_path, config, save_dir):
    """Original checkpoint (prefix or folder) -> our checkpoint in save_dir; returns its prefix."""
    prefix = checkpoints.resolve_prefix(tf1_path)
    _require_empty(save_dir)
    model = _built_model(config)
    ema, adam = PolyakAverage(model), original_adam(model)
    checkpoints.load_tf1_training_state(model, ema, adam, prefix)
    checkpoints.write_config(save_dir, config)
    checkpoint = checkpoints.model_checkpoint(model, ema, optimizer=adam)
    return tf.train.CheckpointManager(checkpoint, save_dir, max_to_keep=None).save(
        checkpoint_number=int(adam.t.numpy()) - 1)


def ours_to_tf1(path, save_dir):
    """Our checkpoint (prefix or folder) -> original layout in save_dir; returns its prefix."""
    prefix = checkpoints.resolve_prefix(path)
    if checkpoints.is_tf1(prefix):
        raise ValueError(f"{prefix} is already an original TF1 checkpoint")
    _require_empty(save_dir)
    model = _built_model(checkpoints.read_config(os.path.dirname(prefix)))
    ema, adam = PolyakAverage(model), original_adam(model)
    status = checkpoints.model_checkpoint(model, ema, optimizer=adam).read(prefix)
    status.expect_partial().assert_existing_objects_matched()
    names, values = [checkpoints.ADAM_STEP], [adam.t]
    for e in checkpoints.tf1_name_map(model):
        key = weight_name(e.variable)
        names += [e.name, e.ema, e.first_moment, e.second_moment]
        values += [e.variable.value, ema.shadow(e.variable), adam.first_moment[key],
                   adam.second_moment[key]]
    tf.io.gfile.makedirs(save_dir)
    out = os.path.join(save_dir, "model.ckpt")
    tf.raw_ops.SaveV2(prefix=out, tensor_names=names, shape_and_slices=[""] * len(names),
                      tensors=[tf.convert_to_tensor(v) for v in values])
    with tf.io.gfile.GFile(os.path.join(save_dir, "checkpoint"), "w") as f:
        f.write('model_checkpoint_path: "model.ckpt"\nall_model_checkpoint_paths: "model.ckpt"\n')
    return out

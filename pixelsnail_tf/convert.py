"""Convert checkpoints between the original TF1 layout and pixelsnail_tf's, both ways, exactly.

  python -m pixelsnail_tf.convert --tf1_checkpoint=checkpoints/cifar --save_dir=runs/cifar [model flags]
  python -m pixelsnail_tf.convert --to_tf1 --checkpoint=runs/cifar --save_dir=checkpoints/cifar_tf1

Everything the original saves travels: raw weights, their Polyak averages, the Adam moments and its
step counter t. Ours is written as `<save_dir>/ckpt-<t-1>` with `config.json`; the TF1 side as
`<save_dir>/model.ckpt` (+ a `checkpoint` file with a relative path), variable names as the original.
"""

import os

import tensorflow as tf

from pixelsnail_tf import checkpointing, tf1_checkpoint
from pixelsnail_tf.ema import PolyakAverage
from pixelsnail_tf.model import PixelSNAIL


def _built_model(config):
    model = PixelSNAIL(config)
    model.build((None, 2, 2, 3))
    return model


def _require_empty(save_dir):
    if tf.io.gfile.exists(save_dir) and (tf.io.gfile.glob(os.path.join(save_dir, "*.index"))
                                         or tf.io.gfile.exists(os.path.join(save_dir, "checkpoint"))):
        raise FileExistsError(f"{save_dir} already holds checkpoints; convert into an empty folder")


def tf1_to_ours(tf1_path, config, save_dir):
    """Original checkpoint (prefix or folder) -> our checkpoint in save_dir; returns its prefix."""
    prefix = tf1_checkpoint.resolve_prefix(tf1_path)
    _require_empty(save_dir)
    model = _built_model(config)
    ema, adam = PolyakAverage(model), checkpointing.original_adam(model)
    checkpointing.load_tf1_training_state(model, ema, adam, prefix)
    checkpointing.write_config(save_dir, config)
    checkpoint = checkpointing.model_checkpoint(model, ema, optimizer=adam)
    return tf.train.CheckpointManager(checkpoint, save_dir, max_to_keep=None).save(
        checkpoint_number=int(adam.t.numpy()) - 1)


def ours_to_tf1(path, save_dir):
    """Our checkpoint (prefix or folder) -> original layout in save_dir; returns its prefix."""
    prefix = tf1_checkpoint.resolve_prefix(path)
    if checkpointing.is_tf1(prefix):
        raise ValueError(f"{prefix} is already an original TF1 checkpoint")
    _require_empty(save_dir)
    model = _built_model(checkpointing.read_config(os.path.dirname(prefix)))
    ema, adam = PolyakAverage(model), checkpointing.original_adam(model)
    status = checkpointing.model_checkpoint(model, ema, optimizer=adam).read(prefix)
    status.expect_partial().assert_existing_objects_matched()
    names, values = [tf1_checkpoint.ADAM_STEP], [adam.t]
    for e in tf1_checkpoint.tf1_name_map(model):
        key = checkpointing.weight_name(e.variable)
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


def main(argv):
    from absl import flags

    from pixelsnail_tf import cli
    values = flags.FLAGS.flag_values_dict()
    del argv
    try:
        if values["to_tf1"]:
            if not values["checkpoint"]:
                raise ValueError("--to_tf1 needs --checkpoint (a pixelsnail_tf checkpoint)")
            written = ours_to_tf1(values["checkpoint"], values["save_dir"])
        else:
            if not values["tf1_checkpoint"]:
                raise ValueError("give --tf1_checkpoint (or --to_tf1 with --checkpoint)")
            config = cli.model_config_from_flags(values, dropout_p=values["dropout_p"])
            written = tf1_to_ours(values["tf1_checkpoint"], config, values["save_dir"])
    except (ValueError, FileNotFoundError, FileExistsError) as error:
        cli.fail(error)
    print(f"wrote {written}")


def _define_flags():
    from absl import flags

    from pixelsnail_tf import cli
    flags.DEFINE_string("tf1_checkpoint", None, "original TF1 checkpoint (prefix or folder) to convert")
    flags.DEFINE_string("checkpoint", None, "with --to_tf1: pixelsnail_tf checkpoint (prefix or folder)")
    flags.DEFINE_bool("to_tf1", False, "convert ours -> the original layout instead")
    flags.DEFINE_string("save_dir", None, "empty folder to write the converted checkpoint into",
                        required=True)
    flags.DEFINE_float("dropout_p", 0.5, "dropout of the model (recorded in config.json for training)")
    cli.define_model_flags()
    flags.adopt_module_key_flags(cli)


if __name__ == "__main__":
    from absl import app
    _define_flags()
    app.run(main)

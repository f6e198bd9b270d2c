"""Convert checkpoints between the original TF1 layout and pixelsnail_tf's, both ways, exactly.

  pixelsnail-convert --tf1_checkpoint=checkpoints/cifar --save_dir=runs/cifar [model flags]
  pixelsnail-convert --to_tf1 --checkpoint=runs/cifar --save_dir=checkpoints/cifar_tf1

Ours is written as <save_dir>/ckpt-<t-1> with config.json (t: the original's Adam step counter); the
original's as <save_dir>/model.ckpt with a `checkpoint` file. Weights, Polyak averages and Adam state
travel both ways.
"""

import sys

import tensorflow as tf
from absl import flags

from pixelsnail_tf import cli
from pixelsnail_tf.checkpoints.conversion import ours_to_tf1, tf1_to_ours
from pixelsnail_tf.errors import first_line


def define_flags(fv):
    flags.DEFINE_string("tf1_checkpoint", None, "original TF1 checkpoint (prefix or folder) to convert",
                        flag_values=fv)
    flags.DEFINE_string("checkpoint", None, "with --to_tf1: pixelsnail_tf checkpoint (prefix or folder)",
                        flag_values=fv)
    flags.DEFINE_bool("to_tf1", False, "convert ours -> the original layout instead", flag_values=fv)
    flags.DEFINE_string("save_dir", None, "empty folder to write the converted checkpoint into",
                        required=True, flag_values=fv)
    flags.DEFINE_float("dropout_p", 0.5, "dropout of the model (recorded in config.json for training)",
                       flag_values=fv)
    cli.define_model_flags(fv)


def main(values):
    try:
        if values.to_tf1:
            if not values.checkpoint:
                raise ValueError("--to_tf1 needs --checkpoint (a pixelsnail_tf checkpoint)")
            written = ours_to_tf1(values.checkpoint, values.save_dir)
        else:
            if not values.tf1_checkpoint:
                raise ValueError("give --tf1_checkpoint (or --to_tf1 with --checkpoint)")
            config = cli.model_config_from_flags(values.flag_values_dict(), dropout_p=values.dropout_p)
            written = tf1_to_ours(values.tf1_checkpoint, config, values.save_dir)
    except (ValueError, FileNotFoundError, FileExistsError) as error:
        cli.fail(error)
    except (tf.errors.OpError, IndexError) as error:  # a damaged checkpoint, a full disk
        cli.fail(f"cannot read the checkpoint or write the converted one\n{first_line(error)}")
    print(f"wrote {written}")


def run():
    cli.run_program(sys.modules[__name__])

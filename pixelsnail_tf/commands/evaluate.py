"""Test bits/dim of a PixelSNAIL checkpoint: pixelsnail_tf's own or an original TF1 one.

  pixelsnail-evaluate --checkpoint=checkpoints/cifar --dataset=cifar10
  pixelsnail-evaluate --checkpoint=PREFIX --images=test.npy --json_out=result.json
  pixelsnail-evaluate --checkpoint=PREFIX --images=some.npy --heatmap_dir=maps   # where they are unlikely

A model of codes (--output=categorical) evaluates integer code maps (--images: int [N,H,W]); its bpd
is bits per code.
"""

import json
import math
import os
import sys

import tensorflow as tf
from absl import flags

from pixelsnail_tf import cli, data, evaluation, heatmaps, memory
from pixelsnail_tf.commands.train import recorded_flags
from pixelsnail_tf.errors import first_line


def define_flags(fv):
    flags.DEFINE_string("checkpoint", None, "checkpoint prefix (.../model.ckpt, .../ckpt-7) or a directory "
                        "(its newest checkpoint); original TF1 checkpoints are detected", required=True,
                        flag_values=fv)
    flags.DEFINE_bool("ema", True, "evaluate the Polyak-averaged (EMA) weights; --noema: the raw weights",
                      flag_values=fv)
    flags.DEFINE_string("dataset", "cifar10", "test set to evaluate on: " + data.DATASET_HELP
                        + " (resized to the size the run in the checkpoint's folder was trained at)",
                        flag_values=fv)
    flags.DEFINE_string("data_dir", None, "where the data set is: the original's files "
                        "(cifar-10-python/cifar-10-batches-py/, small_imagenet/imgnet_32x32.npz), npz's "
                        "train.npz/test.npz, or tensorflow_datasets' data directory, where it downloads "
                        "to (default: ./data for files, tensorflow_datasets' own for downloads)",
                        flag_values=fv)
    flags.DEFINE_string("images", None, "evaluate on these images instead: a .npy file of uint8 [N,H,W,3] "
                        "(a model of codes: int codes [N,H,W])", flag_values=fv)
    flags.DEFINE_integer("batch_size", 16, "images per forward pass", lower_bound=1, flag_values=fv)
    flags.DEFINE_string("json_out", None, "write {bpd, per_image_bpd, per_image_log_likelihood} here",
                        flag_values=fv)
    flags.DEFINE_string("heatmap_dir", None, "write per image a PNG of the image beside its bits per pixel "
                        "(heat map, one colour scale for all: scale.json) and per_pixel_bits.npy "
                        "[N,H,W] here", flag_values=fv)
    cli.define_overwrite_flag(fv, "the --json_out file and the heat maps in --heatmap_dir")
    cli.define_model_flags(fv)
    cli.define_precision_flag(fv)
    cli.define_kernels_flag(fv)


def main(values):
    try:
        if values.json_out:
            cli.check_output_file(values.json_out, "--json_out", values.overwrite)
        if values.heatmap_dir:
            cli.check_output_folder(values.heatmap_dir, "--heatmap_dir")
            heatmaps.check_folder(values.heatmap_dir, values.overwrite)
        model, prefix, kind = cli.load_model(values.checkpoint, values.flag_values_dict(),
                                             cli.explicit_model_flags(values), use_ema=values.ema)
        distribution = model.distribution
        recorded = recorded_flags(os.path.dirname(prefix))  # a damaged flags.txt is refused here too
        if values.images:
            images, labels = data.load_array_npy(values.images, distribution.data), None
            where = values.images
        else:
            trained = recorded and recorded.image_size
            images, labels = data.load_split(values.dataset, "test", values.data_dir,
                                             trained and cli.image_size(trained))
            where = f"--dataset={values.dataset}'s test data"
        distribution.check_array(images, where)
        if not len(images):
            raise ValueError(f"{where} holds no {distribution.data}")
        cli.check_image_size(model, *images.shape[1:3], where)
        batch = min(values.batch_size, len(images))
        memory.check_fits(memory.forward_bytes(model.config, batch, *images.shape[1:3]),
                          f"a batch of {batch} images of {images.shape[1]}x{images.shape[2]}",
                          "lower --batch_size")
        if not model.config.num_classes:
            labels = None
        ll = evaluation.log_likelihood(model, images, labels, batch_size=values.batch_size,
                                       per_pixel=bool(values.heatmap_dir))
    except (ValueError, FileNotFoundError) as error:
        cli.fail(error)
    try:
        if values.heatmap_dir:
            low, high = heatmaps.write(values.heatmap_dir, distribution.pictures(images), -ll / math.log(2.0))
            print(f"heat maps of {len(images)} images in {values.heatmap_dir} ({low:g} to {high:.2f} bits "
                  f"per pixel)")
            ll = ll.sum(axis=(1, 2))
        result = evaluation.summary(ll, images.shape)
        print(f"test bpd {result['bpd']:.6f} on {len(images)} images "
              f"({'EMA' if values.ema else 'raw'} weights, {kind} checkpoint {prefix})")
        if values.json_out:
            with open(values.json_out, "w") as f:
                json.dump(result, f)
    except (OSError, tf.errors.OpError) as error:  # writing the outputs: a full disk, a vanished folder
        cli.fail(f"cannot write the outputs: {first_line(error)}")


def run():
    cli.run_program(sys.modules[__name__])

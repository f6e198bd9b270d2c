"""Draw images from a PixelSNAIL checkpoint (pixelsnail_tf's own or an original TF1 one).

  pixelsnail-sample --checkpoint=checkpoints/cifar --num_samples=16 --out_dir=samples

Writes <out_dir>/samples.png (a grid, true colours, enlarged to at least 256 pixels wide),
samples_1x.png (the grid at one pixel per pixel) and samples.npy (uint8 [N,H,W,3]);
with --original_sampling also samples_float.npy (float32 in [-1, 1], the values fed back).
"""

import os
import sys

import keras
import numpy as np
import tensorflow as tf
from absl import flags

from pixelsnail_tf import cli, data
from pixelsnail_tf.images import float_to_uint8, write_grid_pngs
from pixelsnail_tf.sampling import SAMPLERS, draw_noise


def define_flags(fv):
    flags.DEFINE_string("checkpoint", None, "checkpoint prefix or folder, either kind", required=True,
                        flag_values=fv)
    flags.DEFINE_enum("sampler", "fast", list(SAMPLERS), "fast: per-layer caches, each pixel computed "
                      "once; naive: the original's algorithm, the whole network for every pixel (same "
                      "images)", flag_values=fv)
    flags.DEFINE_bool("ema", True, "sample with the Polyak-averaged (EMA) weights; --noema: raw weights",
                      flag_values=fv)
    flags.DEFINE_integer("num_samples", 16, "images to draw", lower_bound=1, flag_values=fv)
    flags.DEFINE_integer("batch_size", 16, "images drawn together (the result does not depend on it)",
                         lower_bound=1, flag_values=fv)
    flags.DEFINE_integer("seed", 0, "same seed, same images (on the same machine): stateless noise",
                         flag_values=fv)
    flags.DEFINE_integer("class_label", None, "class of every image (class-conditional models; default: "
                         "labels 0, 1, 2, ... in turn)", flag_values=fv)
    flags.DEFINE_string("image_size", "32,32", "H,W of the images (or one number for square ones); "
                        "default: the size the run in the checkpoint's folder was trained at, else 32,32",
                        flag_values=fv)
    flags.DEFINE_string("out_dir", "samples", "folder for samples.png and samples.npy", flag_values=fv)
    flags.DEFINE_bool("original_sampling", False, "feed back the continuous sampled values as the original "
                      "(default: round each pixel to its 8-bit level first); also writes samples_float.npy",
                      flag_values=fv)
    flags.DEFINE_string("noise_from", None, "replay recorded noise: .npz with u_mix [S,H,W,M] and "
                        "u_logistic [S,H,W,3] (sets the number and size of the images)", flag_values=fv)
    cli.define_model_flags(fv)
    cli.define_precision_flag(fv)
    cli.define_kernels_flag(fv)


def noise(values, mixtures, prefix):
    if not values.noise_from:
        height, width = cli.image_size_for(values, prefix)
        return draw_noise(values.num_samples, height, width, mixtures, values.seed)
    arrays = data.load_npz_arrays(values.noise_from, ["u_mix", "u_logistic"],
                                  f"uniform noise u_mix [S,H,W,{mixtures}] and u_logistic [S,H,W,3]")
    u_mix, u_logistic = (arrays[name].astype(np.float32) for name in ("u_mix", "u_logistic"))
    if u_mix.ndim != 4 or u_mix.shape[-1] != mixtures or u_logistic.shape != u_mix.shape[:3] + (3,):
        raise ValueError(f"{values.noise_from}: u_mix must be [S,H,W,{mixtures}] and u_logistic [S,H,W,3], "
                         f"got {u_mix.shape} and {u_logistic.shape}")
    for name, u in (("u_mix", u_mix), ("u_logistic", u_logistic)):
        if not np.all((u > 0) & (u < 1)):  # 0 and 1 would draw infinities; NaN fails too
            raise ValueError(f"{values.noise_from}: {name} must hold uniform noise in (0, 1), got values "
                             f"outside it (or NaN)")
    return u_mix, u_logistic


def labels_for(values, count, num_classes):
    if not num_classes:
        if values.class_label is not None:
            raise ValueError("--class_label given, but the model is not class-conditional")
        return None
    if values.class_label is None:
        return np.arange(count) % num_classes
    if not 0 <= values.class_label < num_classes:
        raise ValueError(f"--class_label must be in [0, {num_classes}), got {values.class_label}")
    return np.full(count, values.class_label)


def main(values):
    try:
        cli.check_output_folder(values.out_dir, "--out_dir")
        model, prefix, kind = cli.load_model(values.checkpoint, values.flag_values_dict(),
                                             cli.explicit_model_flags(values), use_ema=values.ema)
        u_mix, u_logistic = noise(values, model.config.nr_logistic_mix, prefix)
        labels = labels_for(values, u_mix.shape[0], model.config.num_classes)
    except (ValueError, FileNotFoundError, KeyError) as error:
        cli.fail(error)
    count, height, width = u_mix.shape[:3]
    pixels = height * width
    progress = keras.utils.Progbar(count * pixels, unit_name="pixel")
    batch = {"start": 0, "size": 0}  # the batch being drawn, for the progress bar
    sampler = SAMPLERS[values.sampler](
        model, quantize=not values.original_sampling,
        progress=lambda done: progress.update(batch["start"] * pixels + batch["size"] * done))
    batches = []
    for start in range(0, count, values.batch_size):
        stop = min(start + values.batch_size, count)
        batch.update(start=start, size=stop - start)
        batch_labels = None if labels is None else tf.constant(labels[start:stop])
        batches.append(sampler(u_mix[start:stop], u_logistic[start:stop], batch_labels).numpy())
    samples = np.concatenate(batches)
    images = float_to_uint8(samples).numpy()
    np.save(os.path.join(values.out_dir, "samples.npy"), images)
    if values.original_sampling:
        np.save(os.path.join(values.out_dir, "samples_float.npy"), samples)
    write_grid_pngs(values.out_dir, images)
    print(f"wrote {count} samples of {height}x{width} to {values.out_dir}/ "
          f"({'EMA' if values.ema else 'raw'} weights, {kind} checkpoint {prefix})")


def run():
    cli.run_program(sys.modules[__name__])

"""Draw images from a PixelSNAIL checkpoint (pixelsnail_tf's own or an original TF1 one), or complete
partly given ones.

  pixelsnail-sample --checkpoint=checkpoints/cifar --num_samples=16 --out_dir=samples
  pixelsnail-sample --checkpoint=checkpoints/cifar --complete=test.npy --given_rows=16 --num_samples=4

Writes <out_dir>/samples.png (a grid of the first 1024, true colours, enlarged to at least 256 pixels
wide), samples_1x.png (the grid at one pixel per pixel) and samples.npy (uint8 [N,H,W,3]), refusing to
replace them unless --overwrite; the samples are drawn and written a batch at a time;
with --original_sampling also samples_float.npy (float32 in [-1, 1], the values fed back).
With --complete: samples.npy holds the completions, uint8 [N, num_samples, H, W, 3], and the grid has
a row per image (up to 1024 cells): the image, its given part (the rest grey), its completions.
A model of codes (--output=categorical) draws code maps: samples.npy int32 [N,H,W] ([N, num_samples,
H, W] with --complete, of codes int [N,H,W] in the .npy), the grid shows codes as grey levels.
"""

import os
import sys

import keras
import numpy as np
import tensorflow as tf
from absl import flags

from pixelsnail_tf import cli, data, memory
from pixelsnail_tf.commands.train import recorded_flags
from pixelsnail_tf.errors import first_line
from pixelsnail_tf.images import completion_rows, write_grid_pngs
from pixelsnail_tf.sampling import SAMPLERS, complete, draw_noise, prefix_lengths

SAMPLE_FILES = ("samples.npy", "samples.png", "samples_1x.png")
FLOAT_FILE = "samples_float.npy"  # with --original_sampling
GRID_LIMIT = 1024  # samples.png shows the first this many samples


def define_flags(fv):
    flags.DEFINE_string("checkpoint", None, "checkpoint prefix or folder, either kind", required=True,
                        flag_values=fv)
    flags.DEFINE_enum("sampler", "fast", list(SAMPLERS), "fast: per-layer caches, each pixel computed "
                      "once; naive: the original's algorithm, the whole network for every pixel (same "
                      "images)", flag_values=fv)
    flags.DEFINE_bool("ema", True, "sample with the Polyak-averaged (EMA) weights; --noema: raw weights",
                      flag_values=fv)
    flags.DEFINE_integer("num_samples", 16, "images to draw (with --complete: completions of each image)",
                         lower_bound=1, flag_values=fv)
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
    flags.DEFINE_string("complete", None, "complete these images instead (.npy, uint8 [N,H,W,3]): "
                        "--num_samples completions of each, keeping --given_rows or --given_mask",
                        flag_values=fv)
    flags.DEFINE_integer("given_rows", None, "with --complete: the first this many rows are given",
                         lower_bound=0, flag_values=fv)
    flags.DEFINE_string("given_mask", None, "with --complete: .npy bool [N,H,W], True where a pixel is "
                        "given; each image's given pixels must come first in raster order", flag_values=fv)
    flags.DEFINE_string("noise_from", None, "replay recorded noise: .npz with u_mix [S,H,W,M] and "
                        "u_logistic [S,H,W,3] (sets the number and size of the images)", flag_values=fv)
    cli.define_overwrite_flag(fv, "samples.npy, samples.png, samples_1x.png (samples_float.npy) in --out_dir")
    cli.define_model_flags(fv)
    cli.define_precision_flag(fv)
    cli.define_kernels_flag(fv)


def recorded_noise(values, distribution):
    """The noise tuple replayed from --noise_from, checked."""
    shapes = distribution.noise_shapes
    wanted = " and ".join(f"{name} [S,H,W,{shape[0]}]" for name, shape in shapes.items())
    arrays = data.load_npz_arrays(values.noise_from, list(shapes), f"uniform noise {wanted}")
    arrays = [arrays[name].astype(np.float32) for name in shapes]
    leading = arrays[0].shape[:3]
    if any(u.ndim != 4 or u.shape != leading + shape for u, shape in zip(arrays, shapes.values())):
        raise ValueError(f"{values.noise_from}: noise must be {wanted}, got "
                         f"{' and '.join(str(u.shape) for u in arrays)}")
    for name, u in zip(shapes, arrays):
        if not np.all((u > 0) & (u < 1)):  # 0 and 1 would draw infinities; NaN fails too
            raise ValueError(f"{values.noise_from}: {name} must hold uniform noise in (0, 1), got values "
                             f"outside it (or NaN)")
    return tuple(arrays)


def noise_source(values, distribution, prefix):
    """(count, (height, width, where the size is from), noise): noise(start, stop) is the noise tuple of
    samples [start, stop), drawn from --seed a batch at a time (memory does not grow with --num_samples),
    or replayed from --noise_from."""
    if not values.noise_from:
        (height, width), source = cli.image_size_for(values, recorded_flags(os.path.dirname(prefix)))
        return values.num_samples, (height, width, source), lambda start, stop: draw_noise(
            distribution, stop - start, height, width, values.seed, start)
    arrays = recorded_noise(values, distribution)
    count, height, width = arrays[0].shape[:3]
    return count, (height, width, f"--noise_from={values.noise_from}"), lambda start, stop: tuple(
        u[start:stop] for u in arrays)


def check_class_label(values, num_classes):
    if not num_classes and values.class_label is not None:
        raise ValueError("--class_label given, but the model is not class-conditional")
    if num_classes and values.class_label is not None and not 0 <= values.class_label < num_classes:
        raise ValueError(f"--class_label must be in [0, {num_classes}), got {values.class_label}")


def labels_for(values, start, stop, num_classes):
    """The class labels of images [start, stop) (--class_label, else 0, 1, 2, ... in turn), or None."""
    if not num_classes:
        return None
    if values.class_label is None:
        return np.arange(start, stop) % num_classes
    return np.full(stop - start, values.class_label)


def check_completion_flags(values):
    if values.given_rows is None and values.given_mask is None:
        raise ValueError("--complete needs --given_rows or --given_mask")
    if values.given_rows is not None and values.given_mask is not None:
        raise ValueError("give --given_rows or --given_mask, not both")
    if values.noise_from or values.original_sampling:
        raise ValueError("--complete draws its own noise and feeds back 8-bit levels: leave out "
                         "--noise_from and --original_sampling")


def completion_inputs(values, distribution):
    """(images or codes, given pixel counts [N]) of --complete with --given_rows or --given_mask,
    checked."""
    images = data.load_array_npy(values.complete, distribution.data)
    distribution.check_array(images, values.complete)
    count, height, width = images.shape[:3]
    if not count:
        raise ValueError(f"--complete={values.complete} holds no {distribution.data} (its first dimension "
                         f"is 0)")
    if values.given_rows is not None:
        if values.given_rows > height:
            raise ValueError(f"--given_rows={values.given_rows}, but the images have {height} rows")
        return images, np.full(count, values.given_rows * width, np.int32)
    mask = data.load_array_npy(values.given_mask, "a bool mask [N,H,W]")
    if mask.shape != images.shape[:3] or mask.dtype != bool:
        raise ValueError(f"--given_mask must be bool [{count},{height},{width}] like the images, got "
                         f"{mask.dtype} {list(mask.shape)}")
    return images, prefix_lengths(mask)


def main_complete(values):
    try:
        check_completion_flags(values)
        cli.check_output_folder(values.out_dir, "--out_dir", SAMPLE_FILES, values.overwrite)
        model, prefix, kind = cli.load_model(values.checkpoint, values.flag_values_dict(),
                                             cli.explicit_model_flags(values), use_ema=values.ema)
        images, counts = completion_inputs(values, model.distribution)
        check_class_label(values, model.config.num_classes)
        labels = labels_for(values, 0, len(images), model.config.num_classes)
        total = len(images) * values.num_samples
        # the completions are held in memory until written: that limit comes before the disk's
        memory.check_fits(total * images[0].nbytes, f"{values.num_samples} completions of each of "
                          f"{len(images)} images", "lower --num_samples or complete fewer images at once")
        check_sizes(values, model, total, *images.shape[1:3])
        progress = keras.utils.Progbar(total, unit_name="completion")
        completions = complete(model, images, given_pixels=counts, num_samples=values.num_samples,
                               seed=values.seed, sampler=values.sampler, labels=labels,
                               batch_size=values.batch_size, progress=progress.update)
    except (ValueError, FileNotFoundError, KeyError) as error:
        cli.fail(error)
    try:
        np.save(os.path.join(values.out_dir, "samples.npy"), completions)
        shown = max(1, GRID_LIMIT // (values.num_samples + 2))  # images in the grid, a row each
        pictures = model.distribution.pictures
        cells, columns = completion_rows(pictures(images[:shown]), counts[:shown],
                                         pictures(completions[:shown]))
        write_grid_pngs(values.out_dir, cells, columns=columns)
    except (OSError, tf.errors.OpError) as error:
        cli.fail(f"cannot write the completions to --out_dir={values.out_dir}: {first_line(error)}")
    print(f"wrote {values.num_samples} completions of each of {len(images)} images to {values.out_dir}/ "
          f"({'EMA' if values.ema else 'raw'} weights, {kind} checkpoint {prefix})")


class NpyWriter:
    """Writes a .npy file of a known shape a part at a time, under a temporary name until it is whole."""

    def __init__(self, path, dtype, shape):
        self.path, self.partial = path, path + ".partial"
        self.file = open(self.partial, "wb")  # noqa: SIM115 (closed by close)
        header = {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False,
                  "shape": tuple(shape)}
        np.lib.format.write_array_header_1_0(self.file, header)

    def write(self, part):
        self.file.write(np.ascontiguousarray(part).tobytes())

    def close(self, complete=True):
        self.file.close()
        if complete:
            os.replace(self.partial, self.path)
        elif os.path.exists(self.partial):
            os.remove(self.partial)


def check_sizes(values, model, count, height, width):
    """One line, before anything is drawn, where a batch cannot fit in memory or the samples on disk."""
    batch = min(values.batch_size, count)
    memory.check_fits(memory.forward_bytes(model.config, batch, height, width,
                                           whole_image=values.sampler == "naive"),
                      f"drawing {batch} images of {height}x{width} at once ({values.sampler} sampler)",
                      "lower --batch_size or --image_size")
    distribution = model.distribution
    per_sample = height * width * distribution.dims
    nbytes = count * per_sample * np.dtype(distribution.stored_dtype.as_numpy_dtype).itemsize
    if values.original_sampling:
        nbytes += count * per_sample * 4
    memory.check_disk(values.out_dir, nbytes, f"{count} samples of {height}x{width}",
                      "lower --num_samples or choose another --out_dir")


def draw_samples(values, model, count, height, width, noise):
    """Draws the samples a batch at a time into out_dir's .npy files; returns the first GRID_LIMIT
    (stored values) for the grid."""
    distribution = model.distribution
    pixels = height * width
    progress = keras.utils.Progbar(count * pixels, unit_name="pixel")
    batch = {"start": 0, "size": 0}  # the batch being drawn, for the progress bar
    sampler = SAMPLERS[values.sampler](
        model, quantize=not values.original_sampling,
        progress=lambda done: progress.update(batch["start"] * pixels + batch["size"] * done))
    shape = (count, height, width, *distribution.value_shape)
    writers = [NpyWriter(os.path.join(values.out_dir, "samples.npy"),
                         distribution.stored_dtype.as_numpy_dtype, shape)]
    if values.original_sampling:
        writers.append(NpyWriter(os.path.join(values.out_dir, FLOAT_FILE), np.float32, shape))
    shown = []
    try:
        for start in range(0, count, values.batch_size):
            stop = min(start + values.batch_size, count)
            batch.update(start=start, size=stop - start)
            labels = labels_for(values, start, stop, model.config.num_classes)
            drawn = sampler(noise(start, stop), None if labels is None else tf.constant(labels))
            stored = distribution.to_stored(drawn).numpy()
            writers[0].write(stored)
            if values.original_sampling:
                writers[1].write(drawn.numpy())
            shown.extend(stored[:max(0, GRID_LIMIT - start)])
    except BaseException:
        for writer in writers:
            writer.close(complete=False)
        raise
    for writer in writers:
        writer.close()
    return np.stack(shown)


def main(values):
    if values.complete:
        return main_complete(values)
    if values.given_rows is not None or values.given_mask:
        cli.fail("--given_rows and --given_mask go with --complete=FILE.npy")
    try:
        names = SAMPLE_FILES + ((FLOAT_FILE,) if values.original_sampling else ())
        cli.check_output_folder(values.out_dir, "--out_dir", names, values.overwrite)
        model, prefix, kind = cli.load_model(values.checkpoint, values.flag_values_dict(),
                                             cli.explicit_model_flags(values), use_ema=values.ema)
        distribution = model.distribution
        if values.original_sampling and distribution.data != "images":
            raise ValueError("--original_sampling is for images (continuous colour values); this model "
                             "draws codes")
        count, (height, width, source), noise = noise_source(values, distribution, prefix)
        cli.check_image_size(model, height, width, source)
        check_class_label(values, model.config.num_classes)
        check_sizes(values, model, count, height, width)
    except (ValueError, FileNotFoundError, KeyError) as error:
        cli.fail(error)
    try:
        shown = draw_samples(values, model, count, height, width, noise)
        write_grid_pngs(values.out_dir, distribution.pictures(shown))
    except (OSError, tf.errors.OpError) as error:  # writing the outputs: a full disk, a vanished folder
        cli.fail(f"cannot write the samples to --out_dir={values.out_dir}: {first_line(error)}")
    print(f"wrote {count} samples of {height}x{width} to {values.out_dir}/ "
          f"({'EMA' if values.ema else 'raw'} weights, {kind} checkpoint {prefix})")


def run():
    cli.run_program(sys.modules[__name__])

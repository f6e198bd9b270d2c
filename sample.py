"""Draw images from a PixelSNAIL checkpoint (pixelsnail_tf's own or an original TF1 one).

  python sample.py --checkpoint=checkpoints/cifar --num_samples=16 --out_dir=samples

Writes <out_dir>/samples.png (a grid, true colours) and <out_dir>/samples.npy (uint8 [N,H,W,3]);
with --original_sampling also samples_float.npy (float32 in [-1, 1], the values fed back).
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app, flags  # noqa: E402

from pixelsnail_tf import cli  # noqa: E402
from pixelsnail_tf.images import float_to_uint8, image_grid  # noqa: E402
from pixelsnail_tf.sampling import SAMPLERS, draw_noise  # noqa: E402

flags.DEFINE_string("checkpoint", None, "checkpoint prefix or folder, either kind", required=True)
flags.DEFINE_enum("sampler", "fast", list(SAMPLERS), "fast: per-layer caches, each pixel computed once; "
                  "naive: the original's algorithm, the whole network for every pixel (same images)")
flags.DEFINE_bool("ema", True, "sample with the Polyak-averaged (EMA) weights; --noema: raw weights")
flags.DEFINE_integer("num_samples", 16, "images to draw", lower_bound=1)
flags.DEFINE_integer("batch_size", 16, "images drawn together (the result does not depend on it)",
                     lower_bound=1)
flags.DEFINE_integer("seed", 0, "same seed, same images (on the same machine): stateless noise")
flags.DEFINE_integer("class_label", None, "class of every image (class-conditional models; default: "
                     "labels 0, 1, 2, ... in turn)")
flags.DEFINE_string("image_size", "32,32", "H,W of the images (or one number for square ones)")
flags.DEFINE_string("out_dir", "samples", "folder for samples.png and samples.npy")
flags.DEFINE_bool("original_sampling", False, "feed back the continuous sampled values as the original "
                  "(default: round each pixel to its 8-bit level first); also writes samples_float.npy")
flags.DEFINE_string("noise_from", None, "replay recorded noise: .npz with u_mix [S,H,W,M] and "
                    "u_logistic [S,H,W,3] (sets the number and size of the images)")
cli.define_model_flags()
cli.define_precision_flag()
cli.define_kernels_flag()
flags.adopt_module_key_flags(cli)
FLAGS = flags.FLAGS


def noise(mixtures):
    if not FLAGS.noise_from:
        height, width = cli.image_size(FLAGS.image_size)
        return draw_noise(FLAGS.num_samples, height, width, mixtures, FLAGS.seed)
    with np.load(FLAGS.noise_from) as f:
        u_mix, u_logistic = f["u_mix"].astype(np.float32), f["u_logistic"].astype(np.float32)
    if u_mix.ndim != 4 or u_mix.shape[-1] != mixtures or u_logistic.shape != u_mix.shape[:3] + (3,):
        raise ValueError(f"{FLAGS.noise_from}: u_mix must be [S,H,W,{mixtures}] and u_logistic [S,H,W,3], "
                         f"got {u_mix.shape} and {u_logistic.shape}")
    return u_mix, u_logistic


def labels_for(count, num_classes):
    if not num_classes:
        if FLAGS.class_label is not None:
            raise ValueError("--class_label given, but the model is not class-conditional")
        return None
    if FLAGS.class_label is None:
        return np.arange(count) % num_classes
    if not 0 <= FLAGS.class_label < num_classes:
        raise ValueError(f"--class_label must be in [0, {num_classes}), got {FLAGS.class_label}")
    return np.full(count, FLAGS.class_label)


def main(argv):
    del argv
    try:
        model, prefix, kind = cli.load_model(FLAGS.checkpoint, FLAGS.flag_values_dict(),
                                             cli.explicit_model_flags(FLAGS), use_ema=FLAGS.ema)
        u_mix, u_logistic = noise(model.config.nr_logistic_mix)
        labels = labels_for(u_mix.shape[0], model.config.num_classes)
    except (ValueError, FileNotFoundError, KeyError) as error:
        cli.fail(error)
    count, height, width = u_mix.shape[:3]
    pixels = height * width
    progress = keras.utils.Progbar(count * pixels, unit_name="pixel")
    batch = {"start": 0, "size": 0}  # the batch being drawn, for the progress bar
    sampler = SAMPLERS[FLAGS.sampler](
        model, quantize=not FLAGS.original_sampling,
        progress=lambda done: progress.update(batch["start"] * pixels + batch["size"] * done))
    batches = []
    for start in range(0, count, FLAGS.batch_size):
        stop = min(start + FLAGS.batch_size, count)
        batch.update(start=start, size=stop - start)
        batch_labels = None if labels is None else tf.constant(labels[start:stop])
        batches.append(sampler(u_mix[start:stop], u_logistic[start:stop], batch_labels).numpy())
    samples = np.concatenate(batches)
    images = float_to_uint8(samples).numpy()
    os.makedirs(FLAGS.out_dir, exist_ok=True)
    np.save(os.path.join(FLAGS.out_dir, "samples.npy"), images)
    if FLAGS.original_sampling:
        np.save(os.path.join(FLAGS.out_dir, "samples_float.npy"), samples)
    tf.io.write_file(os.path.join(FLAGS.out_dir, "samples.png"), tf.io.encode_png(image_grid(images)))
    print(f"wrote {count} samples of {height}x{width} to {FLAGS.out_dir}/ "
          f"({'EMA' if FLAGS.ema else 'raw'} weights, {kind} checkpoint {prefix})")


if __name__ == "__main__":
    app.run(main)

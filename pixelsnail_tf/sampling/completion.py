"""Completing partly given images (or code maps): the given pixels (a prefix in raster order) are kept
and fed to the network as they are, the rest drawn by either sampler (the fast one fills its caches from
the given pixels, it does not draw them). Same seed, same completions; both samplers draw the same ones.
"""

import numpy as np
import tensorflow as tf

from pixelsnail_tf.images import check_labels
from pixelsnail_tf.sampling.noise import draw_noise
from pixelsnail_tf.sampling.registry import SAMPLERS


def prefix_lengths(mask):
    """Given-pixel counts [N] from a boolean mask [N,H,W] (True: given) that must be a prefix in raster
    order in every image; ValueError (one line) otherwise."""
    mask = np.asarray(mask)
    if mask.ndim != 3:
        raise ValueError(f"a given mask must be [N, H, W] (True where the pixel is given), got shape "
                         f"{mask.shape}")
    flat = mask.reshape(len(mask), -1).astype(bool)
    counts = flat.sum(axis=1)
    prefix = np.arange(flat.shape[1])[None] < counts[:, None]
    bad = np.flatnonzero((flat != prefix).any(axis=1))
    if bad.size:
        raise ValueError(f"the given mask of image {bad[0]} is not a prefix in raster order (all given "
                         f"pixels must come before every drawn one, row by row)")
    return counts.astype(np.int32)


def complete(model, images, given_rows=None, given_pixels=None, num_samples=1, seed=0, sampler="fast",
             labels=None, batch_size=16, quantize=True, progress=None):
    """uint8 completions [N, num_samples, H, W, 3] of images (uint8 [N,H,W,3] or float32 in [-1, 1]);
    of a model of codes, int32 completions [N, num_samples, H, W] of codes [N,H,W].

    Either given_rows (the first R rows of every image are given) or given_pixels ([N] ints: each
    image's first k pixels in raster order; see prefix_lengths for a mask). Completion j of image i
    draws with the noise of sample i * num_samples + j of draw_noise(N * num_samples, ..., seed) (drawn
    a batch at a time), so the result does not depend on batch_size. progress(done): completions
    finished so far.
    """
    distribution = model.distribution
    x = distribution.check(images)
    count, height, width = x.shape[0], x.shape[1], x.shape[2]
    model.check_image_size(height, width)
    if (given_rows is None) == (given_pixels is None):
        raise ValueError("give either given_rows or given_pixels")
    if given_rows is not None:
        if not 0 <= given_rows <= height:
            raise ValueError(f"given_rows must be in [0, {height}] for images of {height} rows, got "
                             f"{given_rows}")
        given_pixels = np.full(count, given_rows * width)
    given_pixels = np.asarray(given_pixels, np.int32)
    if given_pixels.shape != (count,) or given_pixels.min(initial=0) < 0 or \
            given_pixels.max(initial=0) > height * width:
        raise ValueError(f"given_pixels must be [{count}] counts in [0, {height * width}]")
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    labels = check_labels(labels, count, model.config.num_classes)
    if labels is not None:
        labels = tf.repeat(labels, num_samples)
    repeated = tf.repeat(x, num_samples, axis=0)
    counts = np.repeat(given_pixels, num_samples)
    draw = SAMPLERS[sampler](model, quantize=quantize)
    done = []
    for start in range(0, count * num_samples, batch_size):
        part = slice(start, start + batch_size)
        noise = draw_noise(distribution, len(counts[part]), height, width, seed, start)
        drawn = draw(noise, None if labels is None else labels[part],
                     given=(repeated[part], counts[part]))
        done.append(distribution.to_stored(drawn).numpy())
        if progress is not None:
            progress(min(start + batch_size, count * num_samples))
    return np.concatenate(done).reshape(count, num_samples, *x.shape[1:])

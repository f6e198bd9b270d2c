"""The pixel convention and input checks.

Images enter the package as uint8 [batch, H, W, 3] in [0, 255] or float32 in [-1, 1]; the network
sees x = (k - 127.5) / 127.5 = 2k/255 - 1 for an 8-bit level k (as the original's data loaders).
"""

import os

import numpy as np
import tensorflow as tf


# (k - 127.5) / 127.5 for every level k, rounded once in numpy: looked up rather than computed so that
# graph rewrites (division -> multiplication by the reciprocal) cannot change the last bit.
LEVELS = ((np.arange(256) - 127.5) / 127.5).astype(np.float32)


def uint8_to_float(images):
    """uint8 levels -> float32 in [-1, 1], exactly as the original scales its data."""
    return tf.gather(LEVELS, tf.cast(images, tf.int32))


def float_to_uint8(x):
    """float in [-1, 1] -> nearest uint8 level."""
    return tf.cast(tf.round(tf.clip_by_value(x, -1.0, 1.0) * 127.5 + 127.5), tf.uint8)


def round_to_levels(x):
    """Each value to its nearest 8-bit level, as the float the model sees for that level."""
    return uint8_to_float(float_to_uint8(x))


def is_concrete(t):
    """True for numpy arrays and eager tensors, False inside a traced function."""
    return not (tf.is_tensor(t) and tf.is_symbolic_tensor(t))


def check_images(images):
    """Returns float32 model input from uint8 or float32 images; ValueError (one line) otherwise.

    Shape and dtype are checked always; values (float range, finiteness) when they are concrete
    (numpy arrays or eager tensors), not inside a traced function.
    """
    if not tf.is_tensor(images):
        images = np.asarray(images)
    dtype = tf.as_dtype(images.dtype)
    shape = tuple(images.shape)
    if len(shape) != 4 or shape[-1] != 3:
        raise ValueError(f"images must have shape [batch, height, width, 3] (RGB), got shape {shape}")
    if dtype == tf.uint8:
        return uint8_to_float(images)
    if dtype != tf.float32:
        raise ValueError(f"images must be uint8 in [0, 255] or float32 in [-1, 1], got dtype "
                         f"{dtype.name}")
    if is_concrete(images):
        values = np.asarray(images)
        if values.size and not np.all(np.isfinite(values)):
            raise ValueError("float images must lie in [-1, 1], got NaN/Inf values")
        if values.size and (values.min() < -1.0 or values.max() > 1.0):
            raise ValueError(f"float images must lie in [-1, 1], got values in "
                             f"[{values.min():.4g}, {values.max():.4g}]")
    return tf.convert_to_tensor(images)


def check_image_array(array, where):
    """ValueError (one line, naming `where`) unless `array` (numpy-like) holds uint8 images [N,H,W,3]."""
    if array.dtype != np.uint8 or len(array.shape) != 4 or array.shape[-1] != 3:
        raise ValueError(f"{where} must hold uint8 images of shape [N, H, W, 3], got {array.dtype} of "
                         f"shape {tuple(array.shape)}")


def check_labels(labels, batch, num_classes):
    """Class labels for a class-conditional model: int [batch] in [0, num_classes)."""
    if num_classes == 0:
        if labels is not None:
            raise ValueError("labels given, but the model is not class-conditional (num_classes=0)")
        return None
    if labels is None:
        raise ValueError(f"the model is class-conditional ({num_classes} classes): labels are required")
    if not tf.is_tensor(labels):
        labels = np.asarray(labels)
    if not tf.as_dtype(labels.dtype).is_integer or tuple(labels.shape) != (batch,):
        raise ValueError(f"labels must be integers of shape ({batch},), got {tf.as_dtype(labels.dtype).name} "
                         f"of shape {tuple(labels.shape)}")
    if is_concrete(labels):
        values = np.asarray(labels)
        if values.size and (values.min() < 0 or values.max() >= num_classes):
            raise ValueError(f"labels must lie in [0, {num_classes}), got values in "
                             f"[{values.min()}, {values.max()}]")
    return tf.cast(labels, tf.int32)


def image_grid(images, border=1, columns=None):
    """uint8 [N,H,W,3] -> one uint8 [rows*(H+b)+b, cols*(W+b)+b, 3] image, white borders, true colours.

    `columns` columns (default ceil(sqrt(N))); unused cells stay white.
    """
    images = np.asarray(images)
    count, height, width = images.shape[:3]
    cols = columns or max(1, int(np.ceil(np.sqrt(count))))
    rows = max(1, -(-count // cols))
    grid = np.full((rows * (height + border) + border, cols * (width + border) + border, 3), 255,
                   np.uint8)
    for i, image in enumerate(images):
        top = border + (i // cols) * (height + border)
        left = border + (i % cols) * (width + border)
        grid[top:top + height, left:left + width] = image
    return grid


def enlarged(grid, min_width=256):
    """The grid scaled up by a whole factor (nearest neighbour: each pixel a square) to at least
    `min_width` pixels wide, so that small images can be seen; unchanged when it is that wide."""
    factor = max(1, -(-min_width // grid.shape[1]))
    return np.repeat(np.repeat(np.asarray(grid), factor, axis=0), factor, axis=1)


def write_grid_pngs(folder, images, columns=None, name="samples"):
    """<folder>/<name>.png (the grid, enlarged) and <name>_1x.png (one pixel per pixel); returns the
    unscaled grid."""
    grid = image_grid(images, columns=columns)
    tf.io.write_file(os.path.join(folder, f"{name}.png"), tf.io.encode_png(enlarged(grid)))
    tf.io.write_file(os.path.join(folder, f"{name}_1x.png"), tf.io.encode_png(grid))
    return grid


def given_part(pictures, counts):
    """The first counts[i] pixels (raster order) of each uint8 RGB picture [N,H,W,3], the rest grey."""
    flat = np.asarray(pictures).reshape(len(pictures), -1, 3).copy()
    flat[np.arange(flat.shape[1])[None] >= np.asarray(counts)[:, None]] = 128
    return flat.reshape(np.shape(pictures))


def completion_rows(pictures, counts, completions):
    """(cells [N*(K+2),H,W,3], columns K+2) of a completion grid: per image a row of the image, its given
    part (the rest grey) and its K completions [N,K,H,W,3] (all uint8 RGB pictures)."""
    rows = np.concatenate([pictures[:, None], given_part(pictures, counts)[:, None], completions], axis=1)
    return rows.reshape(-1, *rows.shape[2:]), rows.shape[1]

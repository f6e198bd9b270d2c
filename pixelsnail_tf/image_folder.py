"""A folder of PNG/JPEG images as a data set (`--dataset=folder:PATH`), read from disk as needed.

Every file under the folder (recursively) whose name ends in .png, .jpg or .jpeg is an image; files
that do not decode are skipped and counted. The test split is the `test/` subfolder when there is
one, else every file whose path (relative to the folder) has a CRC-32 divisible by TEST_EVERY: fixed
by the names alone, whatever else is added. Each image is converted to RGB (grayscale repeated,
alpha dropped), centre-cropped to the target's aspect ratio, resized to [height, width] (bilinear,
antialiased) and rounded to uint8.

A split behaves as a uint8 array [N, height, width, 3] where the package reads arrays (len, shape,
indexing decodes the images asked for), and trains from a tf.data pipeline that decodes on the fly
(`dataset`), so the data set need not fit in memory.
"""

import os
import zlib

import keras
import numpy as np
import tensorflow as tf

EXTENSIONS = (".png", ".jpg", ".jpeg")
TEST_FOLDER = "test"
TEST_EVERY = 10


def resize_to(image, height, width):
    """uint8 [h, w, 3] -> uint8 [height, width, 3]: the centred crop of the target's aspect ratio,
    resized bilinearly with antialiasing, rounded."""
    h, w = tf.shape(image)[0], tf.shape(image)[1]
    crop_h = tf.minimum(h, tf.cast(tf.round(tf.cast(w * height, tf.float32) / width), tf.int32))
    crop_w = tf.minimum(w, tf.cast(tf.round(tf.cast(h * width, tf.float32) / height), tf.int32))
    top, left = (h - crop_h) // 2, (w - crop_w) // 2
    cropped = image[top:top + crop_h, left:left + crop_w]
    resized = tf.image.resize(tf.cast(cropped, tf.float32), [height, width], antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8)


def decode(path, height, width):
    image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
    return resize_to(image, height, width)


class FolderSplit:
    """One split of an image folder: its files, read and resized when indexed."""

    dtype = np.dtype(np.uint8)

    def __init__(self, paths, height, width):
        self.paths = np.asarray(paths, dtype=object)
        self.shape = (len(self.paths), height, width, 3)

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, index):
        paths = self.paths[index]
        if np.ndim(paths) == 0:
            return decode(paths, *self.shape[1:3]).numpy()
        if len(paths) == 0:
            return np.zeros((0, *self.shape[1:]), np.uint8)
        return np.stack([decode(p, *self.shape[1:3]).numpy() for p in paths])

    def dataset(self, order):
        """tf.data of the images in `order` (indices), decoded in parallel, in that order."""
        height, width = self.shape[1:3]
        paths = tf.data.Dataset.from_tensor_slices(self.paths[order].astype(str))
        return paths.map(lambda p: decode(p, height, width), num_parallel_calls=tf.data.AUTOTUNE,
                         deterministic=True)


def _is_test(relative):
    return zlib.crc32(relative.encode()) % TEST_EVERY == 0


def _readable(path):
    try:
        tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
        return True
    except (tf.errors.OpError, ValueError):
        return False


def load_folder(folder, split, height, width, log=print):
    """The `split` ("train" or "test") of the images under `folder`."""
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise ValueError(f"--dataset=folder:{folder} is a file; give the folder that holds the images")
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"--dataset=folder:{folder}: no such folder")
    files = sorted(os.path.relpath(os.path.join(root, name), folder)
                   for root, _, names in os.walk(folder) for name in names
                   if name.lower().endswith(EXTENSIONS))
    if os.path.isdir(os.path.join(folder, TEST_FOLDER)):
        is_test = [f.split(os.sep, 1)[0] == TEST_FOLDER for f in files]
    else:
        is_test = [_is_test(f) for f in files]
    chosen = [os.path.join(folder, f) for f, test in zip(files, is_test) if test == (split == "test")]
    progress = keras.utils.Progbar(len(chosen), unit_name="file", verbose=1 if len(chosen) > 1000 else 0)
    readable = []
    for i, path in enumerate(chosen):
        if _readable(path):
            readable.append(path)
        progress.update(i + 1)
    if len(readable) < len(chosen):
        log(f"{folder}: skipped {len(chosen) - len(readable)} of {len(chosen)} {split} files that do not "
            f"decode as images")
    if not readable:
        raise ValueError(f"--dataset=folder:{folder} has no readable {split} images (.png, .jpg, .jpeg"
                         + (f" outside {TEST_FOLDER}/" if split == "train" else "") + ")")
    return FolderSplit(readable, height, width)

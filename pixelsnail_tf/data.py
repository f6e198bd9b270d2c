"""Image data sets as uint8 NHWC arrays: the original's file formats, tensorflow_datasets, .npy files.

Under `data_dir` the original's layouts are read first:
  cifar10:    <data_dir>/cifar-10-python/cifar-10-batches-py/{data_batch_1..5, test_batch}
              (the python pickles of cifar-10-python.tar.gz)
  imagenet32: <data_dir>/small_imagenet/imgnet_32x32.npz with uint8 `trainx`, `testx`
Otherwise tensorflow_datasets (`cifar10`, `downsampled_imagenet/32x32`) with `data_dir` as its
data directory, downloading when it can.
  npz:        <data_dir>/{train,test}.npz with uint8 `x` [N,H,W,3] and optional integer `y` [N]
  demo:       32x32 patches of the colour photographs inside scikit-image (no download)
"""

import os
import pickle

import numpy as np
import tensorflow as tf

DATASETS = ("cifar10", "imagenet32", "npz", "demo")
# Colour photographs that ship inside scikit-image (pip install scikit-image), cut into 32x32 patches.
DEMO_PHOTOS = ("astronaut.png", "chelsea.png", "coffee.png", "hubble_deep_field.jpg", "ihc.png",
               "motorcycle_left.png", "motorcycle_right.png", "retina.jpg", "rocket.jpg")
DEMO_PATCH = 32
DEMO_TEST_EVERY = 10  # every 10th patch (in photo, row, column order) is a test patch
# The original train.py's --data_set names.
ORIGINAL_NAMES = {"cifar": "cifar10", "imagenet": "imagenet32"}


class DataNotFoundError(FileNotFoundError):
    """A data set that is neither on disk nor downloadable; the message says what to put where."""


def _cifar_dir(data_dir):
    return os.path.join(data_dir, "cifar-10-python", "cifar-10-batches-py")


def _imagenet_file(data_dir):
    return os.path.join(data_dir, "small_imagenet", "imgnet_32x32.npz")


def _read_cifar_pickles(data_dir, split):
    names = ["test_batch"] if split == "test" else [f"data_batch_{i}" for i in range(1, 6)]
    images, labels = [], []
    for name in names:
        with open(os.path.join(_cifar_dir(data_dir), name), "rb") as f:
            batch = pickle.load(f, encoding="latin1")
        # rows are planar R, G, B planes of 32x32
        images.append(np.asarray(batch["data"], np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
        labels.append(np.asarray(batch["labels"], np.int64))
    return np.concatenate(images), np.concatenate(labels)


def _read_tfds(name, split, data_dir):
    import tensorflow_datasets as tfds  # slow to import; only needed on this path
    ds = tfds.load(name, split=split, data_dir=data_dir, batch_size=-1, download=True)
    arrays = tfds.as_numpy(ds)
    return arrays["image"].astype(np.uint8), arrays.get("label")


def load_split(dataset, split, data_dir):
    """(images uint8 [N,32,32,3], labels int64 [N] or None) of `split` ("train" or "test")."""
    if dataset == "demo":
        return _demo_patches(split), None
    if dataset == "npz":
        return _read_npz(os.path.join(data_dir, f"{split}.npz"))
    if dataset == "cifar10":
        if os.path.exists(os.path.join(_cifar_dir(data_dir), "test_batch")):
            return _read_cifar_pickles(data_dir, split)
        where = (f"put the CIFAR-10 python pickles (cifar-10-python.tar.gz) in "
                 f"{_cifar_dir(data_dir)}/")
        tfds_name, tfds_split = "cifar10", split
    elif dataset == "imagenet32":
        path = _imagenet_file(data_dir)
        if os.path.exists(path):
            with np.load(path) as f:
                return f["trainx" if split == "train" else "testx"], None
        where = f"put {path} (uint8 arrays trainx, testx of shape [N,32,32,3])"
        tfds_name, tfds_split = "downsampled_imagenet/32x32", "train" if split == "train" else "validation"
    else:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}")
    try:
        return _read_tfds(tfds_name, tfds_split, data_dir)
    except Exception as error:  # tfds raises many kinds when offline or unprepared
        reason = str(error).splitlines()[0][:120] if str(error) else type(error).__name__
        raise DataNotFoundError(f"{dataset} {split} set not found under {data_dir} and "
                                f"tensorflow_datasets could not provide it ({reason}): {where}") from None


def _demo_patches(split):
    """Non-overlapping 32x32 patches of scikit-image's colour photographs; a fixed train/test split."""
    try:
        from importlib import resources
        folder = resources.files("skimage") / "data"
    except ModuleNotFoundError:
        raise DataNotFoundError("--dataset=demo needs scikit-image: pip install scikit-image") from None
    patches = []
    for name in DEMO_PHOTOS:
        photo = tf.io.decode_image((folder / name).read_bytes(), channels=3).numpy()
        rows, cols = photo.shape[0] // DEMO_PATCH, photo.shape[1] // DEMO_PATCH
        grid = photo[:rows * DEMO_PATCH, :cols * DEMO_PATCH].reshape(rows, DEMO_PATCH, cols, DEMO_PATCH, 3)
        patches.append(grid.transpose(0, 2, 1, 3, 4).reshape(-1, DEMO_PATCH, DEMO_PATCH, 3))
    patches = np.concatenate(patches)
    is_test = np.arange(len(patches)) % DEMO_TEST_EVERY == 0
    return patches[is_test if split == "test" else ~is_test]


def _read_npz(path):
    if not os.path.exists(path):
        raise DataNotFoundError(f"no such file: {path} (--dataset=npz reads train.npz and test.npz "
                                f"with uint8 x [N,H,W,3] and optional int y [N])")
    with np.load(path, allow_pickle=False) as f:
        if "x" not in f:
            raise ValueError(f"{path} has no array named x (uint8 images [N,H,W,3])")
        images, labels = f["x"], f["y"] if "y" in f else None
    _check_images(images, path)
    if labels is not None and (labels.shape != images.shape[:1] or labels.dtype.kind not in "iu"):
        raise ValueError(f"{path}: y must be integers of shape [{len(images)}], got {labels.dtype} "
                         f"of shape {labels.shape}")
    return images, labels


def _check_images(images, path):
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"{path} must hold uint8 images of shape [N, H, W, 3], got {images.dtype} "
                         f"of shape {images.shape}")


def train_batches(images, labels, global_batch, epoch, seed, shuffle=True, skip=0):
    """tf.data of one training epoch: full batches only (as the original's epoch length), in an order
    fixed by (seed, epoch), after skipping `skip` batches (to resume inside an epoch)."""
    count = len(images) // global_batch * global_batch
    order = (np.random.default_rng([seed, epoch]).permutation(len(images)) if shuffle
             else np.arange(len(images)))[:count]
    height, width = images.shape[1:3]

    def gather(index):  # from the arrays in memory, without copying the data set into the graph
        batch = tf.numpy_function(lambda i: images[i], [index], tf.uint8, stateful=False)
        batch = tf.ensure_shape(batch, [global_batch, height, width, 3])
        if labels is None:
            return (batch,)
        batch_labels = tf.numpy_function(lambda i: labels[i].astype(np.int32), [index], tf.int32,
                                         stateful=False)
        return batch, tf.ensure_shape(batch_labels, [global_batch])

    dataset = tf.data.Dataset.from_tensor_slices(order).batch(global_batch, drop_remainder=True)
    return dataset.skip(skip).map(gather).prefetch(tf.data.AUTOTUNE)


def load_images_npy(path):
    """uint8 [N,H,W,3] images from a .npy file, checked."""
    if not os.path.exists(path):
        raise DataNotFoundError(f"no such file: {path}")
    try:
        images = np.load(path, allow_pickle=False)
    except ValueError as error:
        raise ValueError(f"{path} is not a plain .npy array ({error})") from None
    _check_images(images, path)
    return images

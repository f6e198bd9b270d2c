"""Image data sets as uint8 NHWC arrays (and code maps as integer NHW arrays): the original's file
formats, tensorflow_datasets, .npz and .npy files.

Under `data_dir` the original's layouts are read first:
  cifar10:    <data_dir>/cifar-10-python/cifar-10-batches-py/{data_batch_1..5, test_batch}
              (the python pickles of cifar-10-python.tar.gz)
  imagenet32: <data_dir>/small_imagenet/imgnet_32x32.npz with uint8 `trainx`, `testx`
Otherwise tensorflow_datasets (`cifar10`, `downsampled_imagenet/32x32`) with `data_dir` as its
data directory (default: its own), downloading when the network allows.
  npz:        <data_dir>/{train,test}.npz with uint8 `x` [N,H,W,3] and optional integer `y` [N];
              or integer code maps `x` [N,H,W] (for a model of codes, --output=categorical)
  demo:       32x32 patches of the colour photographs inside scikit-image (no download)
  folder:PATH the PNG/JPEG files under PATH (image_folder)
  tfds:NAME   any tensorflow_datasets image data set: train, and test (else validation)
"""

import os
import pickle
import socket
import zipfile

import numpy as np
import tensorflow as tf

from pixelsnail_tf import image_folder
from pixelsnail_tf.errors import first_line
from pixelsnail_tf.images import check_image_array

DATASETS = ("cifar10", "imagenet32", "npz", "demo", "folder:PATH", "tfds:NAME")
FOLDER = "folder:"
TFDS = "tfds:"
FOLDER_IMAGE_SIZE = (32, 32)
# --help's description of every --dataset.
DATASET_HELP = ("cifar10 or imagenet32 (the original's files under --data_dir, else tensorflow_datasets, "
                "downloading them), npz (<data_dir>/train.npz, test.npz: uint8 x [N,H,W,3], or int "
                "codes x [N,H,W] for --output=categorical; optional int y [N]), demo (32x32 patches of the "
                "photographs in scikit-image), folder:PATH (the PNG/JPEG "
                "files under PATH, centre-cropped and resized to --image_size; test split: its test/ "
                "subfolder, else 1 in 10 by file name), tfds:NAME (any tensorflow_datasets image data set: its "
                "train split, and its test or else validation split)")
# Colour photographs that ship inside scikit-image (pip install scikit-image), cut into 32x32 patches.
DEMO_PHOTOS = ("astronaut.png", "chelsea.png", "coffee.png", "hubble_deep_field.jpg", "ihc.png",
               "motorcycle_left.png", "motorcycle_right.png", "retina.jpg", "rocket.jpg")
DEMO_PATCH = 32
DEMO_TEST_EVERY = 10  # every 10th patch (in photo, row, column order) is a test patch
DEFAULT_DATA_DIR = "./data"
# Where tensorflow_datasets downloads from: its prepared copies, then the data set's own site.
DOWNLOAD_HOSTS = {"cifar10": ("storage.googleapis.com", "www.cs.toronto.edu"),
                  "imagenet32": ("storage.googleapis.com", "image-net.org"),
                  "tfds": ("storage.googleapis.com",)}  # other data sets: their prepared copies
CONNECT_TIMEOUT = 5  # seconds
# Class labels (y) lie in [0, MAX_CLASSES): each class is a one-hot input of every gated layer.
MAX_CLASSES = 10_000
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


def _read_tfds(name, splits, data_dir, hosts, where):
    """(images, labels) of the first of `splits` that tensorflow_datasets' `name` has: its prepared
    copy in data_dir (None: tfds' own data directory), else downloaded, when one of `hosts` (where
    it downloads from) answers within CONNECT_TIMEOUT seconds: offline, tfds would retry its downloads
    for minutes. Grayscale images are repeated to RGB, an alpha channel dropped."""
    import tensorflow_datasets as tfds  # slow to import; only needed on this path
    try:
        builder = tfds.builder(name, data_dir=data_dir)
        if not builder.is_prepared():
            if not _reachable(hosts):
                raise DataNotFoundError(f"{name} is not prepared in tensorflow_datasets' data directory "
                                        f"and {' / '.join(hosts)} cannot be reached to download it: {where}")
            builder.download_and_prepare()
        available = [split for split in splits if split in builder.info.splits]
        if not available:
            raise DataNotFoundError(f"{name} has no {' or '.join(splits)} split (it has "
                                    f"{', '.join(builder.info.splits)})")
        arrays = tfds.as_numpy(builder.as_dataset(split=available[0], batch_size=-1))
    except DataNotFoundError:
        raise
    except Exception as error:  # tfds raises many kinds when a download or a read fails
        raise DataNotFoundError(f"tensorflow_datasets could not provide {name} "
                                f"({first_line(error, limit=120)}): {where}") from None
    if "image" not in arrays:
        raise ValueError(f"{name} has no 'image' feature (it has {', '.join(arrays)})")
    images = np.asarray(arrays["image"], np.uint8)
    if images.ndim != 4 or images.shape[-1] not in (1, 3, 4):
        raise ValueError(f"{name}'s images are {images.shape}, not [N,H,W,channels]")
    images = np.repeat(images, 3, axis=-1) if images.shape[-1] == 1 else images[..., :3]
    labels = arrays.get("label")
    return images, None if labels is None or labels.ndim != 1 else labels.astype(np.int64)


def _reachable(hosts):
    for host in hosts:
        try:
            socket.create_connection((host, 443), timeout=CONNECT_TIMEOUT).close()
            return True
        except OSError:
            continue
    return False


def load_split(dataset, split, data_dir=None, image_size=None):
    """(images uint8 [N,H,W,3], labels int64 [N] or None) of `split` ("train" or "test"); npz files may
    hold integer code maps [N,H,W] instead (for a model of codes: its distribution checks which).

    data_dir: where the original's files and npz files are (None: DEFAULT_DATA_DIR), and
    tensorflow_datasets' data directory (None: its own default, ~/tensorflow_datasets).
    "folder:PATH": the images under PATH resized to image_size [H, W] (None: FOLDER_IMAGE_SIZE),
    read from disk as needed (image_folder.FolderSplit, used as an array).
    """
    if dataset.startswith(FOLDER):
        return image_folder.load_folder(dataset[len(FOLDER):], split,
                                        *(image_size or FOLDER_IMAGE_SIZE)), None
    if dataset.startswith(TFDS):
        name = dataset[len(TFDS):]
        if not name.strip():
            raise ValueError("--dataset=tfds: needs the data set's name after it, e.g. --dataset=tfds:mnist")
        return _read_tfds(name, ["train"] if split == "train" else ["test", "validation"], data_dir,
                          DOWNLOAD_HOSTS["tfds"], f"prepare it with tensorflow_datasets (tfds build {name})")
    root = data_dir or DEFAULT_DATA_DIR
    if dataset == "demo":
        return _demo_patches(split), None
    if dataset == "npz":
        return _read_npz(os.path.join(root, f"{split}.npz"))
    if dataset == "cifar10":
        if os.path.exists(os.path.join(_cifar_dir(root), "test_batch")):
            return _read_cifar_pickles(root, split)
        where = f"put the CIFAR-10 python pickles (cifar-10-python.tar.gz) in {_cifar_dir(root)}/"
        return _read_tfds("cifar10", [split], data_dir, DOWNLOAD_HOSTS["cifar10"], where)
    if dataset == "imagenet32":
        path = _imagenet_file(root)
        if os.path.exists(path):
            with np.load(path) as f:
                return f["trainx" if split == "train" else "testx"], None
        where = f"put {path} (uint8 arrays trainx, testx of shape [N,32,32,3])"
        return _read_tfds("downsampled_imagenet/32x32", ["train" if split == "train" else "validation"],
                          data_dir, DOWNLOAD_HOSTS["imagenet32"], where)
    raise ValueError(f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}")


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
                                f"with uint8 x [N,H,W,3] or int codes x [N,H,W], and optional int y [N])")
    with _opened(path, np.lib.npyio.NpzFile, "an .npz archive") as f:
        if "x" not in f:
            raise ValueError(f"{path} has no array named x (uint8 images [N,H,W,3] or int codes [N,H,W])")
        images = _read_array(lambda: f["x"], f"{path}[x]")
        labels = _read_array(lambda: f["y"], f"{path}[y]") if "y" in f else None
    if not (images.dtype.kind in "iu" and images.ndim == 3):  # else codes, checked by the model's kind
        check_image_array(images, path)
    if labels is not None:
        if labels.shape != images.shape[:1] or labels.dtype.kind not in "iu":
            raise ValueError(f"{path}: y must be integers of shape [{len(images)}], got {labels.dtype} "
                             f"of shape {labels.shape}")
        if labels.size and (labels.min() < 0 or labels.max() >= MAX_CLASSES):
            raise ValueError(f"{path}: class labels y must lie in [0, {MAX_CLASSES}), got values in "
                             f"[{labels.min()}, {labels.max()}]")
    return images, labels


def load_npz_arrays(path, names, description):
    """{name: array} of the named arrays of an .npz file (`description` says what it should hold)."""
    if not os.path.exists(path):
        raise DataNotFoundError(f"no such file: {path}")
    with _opened(path, np.lib.npyio.NpzFile, f"an .npz archive of {description}") as f:
        absent = [name for name in names if name not in f]
        if absent:
            raise ValueError(f"{path} has no array named {', '.join(absent)} ({description})")
        return {name: _read_array(lambda name=name: f[name], f"{path}[{name}]") for name in names}


class _opened:
    """np.load(path) as a context, checked to give `kind`; unreadable files are one ValueError."""

    def __init__(self, path, kind, description):
        self.path, self.kind, self.description = path, kind, description

    def __enter__(self):
        if os.path.isdir(self.path):
            raise ValueError(f"{self.path} is a folder; {self.description} is expected")
        self.loaded = _read_array(lambda: np.load(self.path, allow_pickle=False), self.path)
        if not isinstance(self.loaded, self.kind):
            if isinstance(self.loaded, np.lib.npyio.NpzFile):
                self.loaded.close()
            raise ValueError(f"{self.path} is not {self.description}")
        return self.loaded

    def __exit__(self, *exc):
        if isinstance(self.loaded, np.lib.npyio.NpzFile):
            self.loaded.close()


def _read_array(read, name):
    """read() with the ways a damaged or hostile file fails turned into one ValueError."""
    try:
        return read()
    except MemoryError:
        raise ValueError(f"{name}: its header declares an array too large to load") from None
    except ValueError as error:
        if "allow_pickle" in str(error):  # numpy's refusal to unpickle, not damage
            raise ValueError(f"{name} holds Python objects (dtype object), which are not loaded (they could "
                             f"run code); save plain numeric arrays") from None
        raise ValueError(f"cannot read {name}: a damaged or truncated file\n{first_line(error)}") from None
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
        raise ValueError(f"cannot read {name}: a damaged or truncated file\n{first_line(error)}") from None


def train_batches(images, labels, global_batch, epoch, seed, shuffle=True, skip=0):
    """tf.data of one training epoch: full batches only (as the original's epoch length), in an order
    fixed by (seed, epoch), after skipping `skip` batches (to resume inside an epoch)."""
    count = len(images) // global_batch * global_batch
    order = (np.random.default_rng([seed, epoch]).permutation(len(images)) if shuffle
             else np.arange(len(images)))[:count]
    if isinstance(images, image_folder.FolderSplit):  # decoded from disk on the fly
        batches = images.dataset(order[skip * global_batch:]).batch(global_batch, drop_remainder=True)
        return batches.map(lambda batch: (batch,)).prefetch(tf.data.AUTOTUNE)

    def gather(index):  # from the arrays in memory, without copying the data set into the graph
        batch = tf.numpy_function(lambda i: images[i], [index], tf.as_dtype(images.dtype), stateful=False)
        batch = tf.ensure_shape(batch, [global_batch, *images.shape[1:]])
        if labels is None:
            return (batch,)
        batch_labels = tf.numpy_function(lambda i: labels[i].astype(np.int32), [index], tf.int32,
                                         stateful=False)
        return batch, tf.ensure_shape(batch_labels, [global_batch])

    dataset = tf.data.Dataset.from_tensor_slices(order).batch(global_batch, drop_remainder=True)
    return dataset.skip(skip).map(gather).prefetch(tf.data.AUTOTUNE)


def load_array_npy(path, description):
    """The array of a .npy file (`description`: what it should hold, for the error lines)."""
    if not os.path.exists(path):
        raise DataNotFoundError(f"no such file: {path}")
    with _opened(path, np.ndarray, f"a .npy file of {description}") as array:
        return array


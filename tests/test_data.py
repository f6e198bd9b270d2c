"""The data readers (pixelsnail_tf.data): the original's file layouts, the demo patches, tensorflow_datasets
offline."""

import importlib
import pickle
import socket
import time

import numpy as np

from commands import invoke
from pixelsnail_tf import data
from pixelsnail_tf.commands import train as train_command


def test_offline_without_the_data_fails_within_seconds(tmp_path, monkeypatch):
    """No prepared data and no network: one line saying what to put where, without minutes of
    download retries (the network is cut off for this test: no connection succeeds)."""
    def unreachable(address, *args, **kwargs):
        raise OSError(f"no route to {address[0]}")

    monkeypatch.setattr(socket, "create_connection", unreachable)
    start = time.perf_counter()
    run = invoke(train_command, "--dataset=cifar10", f"--data_dir={tmp_path / 'data'}",
                 f"--save_dir={tmp_path / 'run'}")
    assert time.perf_counter() - start < 30
    assert run.returncode == 1
    assert run.stderr.splitlines() == [
        "error: cifar10 is not prepared in tensorflow_datasets' data directory and storage.googleapis.com "
        "/ www.cs.toronto.edu cannot be reached to download it: put the CIFAR-10 python pickles "
        f"(cifar-10-python.tar.gz) in {tmp_path / 'data' / 'cifar-10-python' / 'cifar-10-batches-py'}/"]
    assert not (tmp_path / "run").exists()


def test_what_tensorflow_datasets_needs_to_download_is_installed():
    """The modules its download path imports lazily (tensorflow_datasets/core: dataset_builder,
    download/): a fresh install that lacks one fails only once it downloads."""
    for module in ("importlib_resources", "etils.epath", "termcolor", "requests", "tqdm", "promise",
                   "psutil", "tree", "array_record.python", "pyarrow", "google.protobuf"):
        importlib.import_module(module)


def write_cifar_pickles(folder, images, labels):
    folder.mkdir(parents=True)
    planar = images.transpose(0, 3, 1, 2).reshape(len(images), -1)  # the original files' layout
    for name in ["test_batch"] + [f"data_batch_{i}" for i in range(1, 6)]:
        with open(folder / name, "wb") as f:
            pickle.dump({"data": planar, "labels": list(labels)}, f)


def test_cifar_pickles_in_the_original_layout(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(3, 32, 32, 3), dtype=np.uint8)
    write_cifar_pickles(tmp_path / "cifar-10-python" / "cifar-10-batches-py", images, [4, 5, 6])
    test_x, test_y = data.load_split("cifar10", "test", str(tmp_path))
    np.testing.assert_array_equal(test_x, images)
    np.testing.assert_array_equal(test_y, [4, 5, 6])
    train_x, _ = data.load_split("cifar10", "train", str(tmp_path))
    assert train_x.shape == (15, 32, 32, 3)


def test_imagenet_npz_in_the_original_layout(tmp_path):
    rng = np.random.default_rng(0)
    train, test = (rng.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8) for n in (4, 2))
    (tmp_path / "small_imagenet").mkdir()
    np.savez(tmp_path / "small_imagenet" / "imgnet_32x32.npz", trainx=train, testx=test)
    images, labels = data.load_split("imagenet32", "test", str(tmp_path))
    np.testing.assert_array_equal(images, test)
    assert labels is None
    np.testing.assert_array_equal(data.load_split("imagenet32", "train", str(tmp_path))[0], train)


def test_demo_patches_of_the_scikit_image_photographs():
    train_x, train_y = data.load_split("demo", "train", "unused")
    test_x, _ = data.load_split("demo", "test", "unused")
    assert train_x.dtype == np.uint8 and train_x.shape[1:] == (32, 32, 3) and train_y is None
    total = len(train_x) + len(test_x)
    assert total > 4000 and len(test_x) == -(-total // data.DEMO_TEST_EVERY)  # every 10th patch
    assert train_x.std() > 30  # real photographs, not constant images

"""--dataset=tfds:NAME: any tensorflow_datasets image data set, here one prepared in a temporary data
directory (no network): its train split, its validation split where it has no test split, grayscale
made RGB, labels kept; offline and unprepared, one line within seconds."""

import socket
import time

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from pixelsnail_tf import data


def rows(images):
    """The images as a sorted list of byte strings (tfds shuffles what it writes)."""
    return sorted(image.tobytes() for image in images)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tfds")
    rng = np.random.default_rng(0)
    arrays = {split: rng.integers(0, 256, (n, 5, 5, 1), dtype=np.uint8) for split, n in
              (("train", 12), ("validation", 4))}
    builder = tfds.dataset_builders.TfDataBuilder(
        name="tiny_gray", config="default", version="1.0.0", data_dir=str(folder),
        split_datasets={split: tf.data.Dataset.from_tensor_slices(
            {"image": images, "label": np.arange(len(images)) % 3}) for split, images in arrays.items()},
        features=tfds.features.FeaturesDict({"image": tfds.features.Image(shape=(5, 5, 1)),
                                             "label": tfds.features.ClassLabel(num_classes=3)}))
    builder.download_and_prepare()
    return folder, arrays


def test_splits_channels_and_labels(prepared):
    folder, arrays = prepared
    train, train_labels = data.load_split("tfds:tiny_gray", "train", str(folder))
    test, test_labels = data.load_split("tfds:tiny_gray", "test", str(folder))  # its validation split
    assert train.dtype == np.uint8 and train.shape == (12, 5, 5, 3) and test.shape == (4, 5, 5, 3)
    assert rows(test) == rows(arrays["validation"].repeat(3, -1))
    assert rows(train) == rows(arrays["train"].repeat(3, -1))
    assert sorted(test_labels.tolist()) == [0, 0, 1, 2]


def test_offline_and_not_prepared_is_one_line_within_seconds(tmp_path, monkeypatch):
    def unreachable(address, *args, **kwargs):
        raise OSError(f"no route to {address[0]}")

    monkeypatch.setattr(socket, "create_connection", unreachable)
    start = time.perf_counter()
    with pytest.raises(data.DataNotFoundError, match="^mnist is not prepared in tensorflow_datasets' data "
                       "directory and storage.googleapis.com cannot be reached to download it: prepare it "
                       r"with tensorflow_datasets \(tfds build mnist\)$"):
        data.load_split("tfds:mnist", "train", str(tmp_path))
    assert time.perf_counter() - start < 30

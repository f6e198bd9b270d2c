"""--dataset=folder:PATH: the documented crop and resize, the deterministic split, unreadable files
skipped and counted, the training order streamed from disk and resumable mid-epoch, end to end."""

import zlib

import numpy as np
import pytest
import tensorflow as tf

from commands import invoke
from pixelsnail_tf import data, image_folder
from pixelsnail_tf.commands import evaluate as evaluate_command
from pixelsnail_tf.commands import train as train_command


def write_png(path, image):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(tf.io.encode_png(np.asarray(image, np.uint8)).numpy())


def test_centre_crop_to_the_aspect_ratio_then_resize():
    wide = np.arange(4 * 6 * 3).reshape(4, 6, 3).astype(np.uint8)
    # same size as the crop: the crop alone (columns 1-4 of 6)
    np.testing.assert_array_equal(image_folder.resize_to(wide, 4, 4).numpy(), wide[:, 1:5])
    tall = wide.transpose(1, 0, 2)
    np.testing.assert_array_equal(image_folder.resize_to(tall, 4, 4).numpy(), tall[1:5])
    np.testing.assert_array_equal(image_folder.resize_to(wide, 4, 6).numpy(), wide)
    # a flat colour stays that colour at any size
    flat = np.full((7, 5, 3), [10, 200, 30], np.uint8)
    np.testing.assert_array_equal(image_folder.resize_to(flat, 3, 4).numpy(),
                                  np.full((3, 4, 3), [10, 200, 30], np.uint8))
    # halving averages: a 2x2 checkerboard of 0 and 200 becomes mid-grey, antialiased
    board = np.kron(np.array([[0, 200], [200, 0]]), np.ones((4, 4)))[..., None].repeat(3, -1)
    assert np.abs(image_folder.resize_to(board.astype(np.uint8), 1, 1).numpy() - 100).max() <= 1


def test_grayscale_and_rgba_files_become_rgb(tmp_path):
    gray = np.arange(16, dtype=np.uint8).reshape(4, 4, 1) * 10
    rgba = np.concatenate([np.full((4, 4, 3), 77, np.uint8), np.zeros((4, 4, 1), np.uint8)], -1)
    write_png(tmp_path / "gray.png", gray)
    write_png(tmp_path / "rgba.png", rgba)
    np.testing.assert_array_equal(image_folder.decode(str(tmp_path / "gray.png"), 4, 4).numpy(),
                                  gray.repeat(3, -1))
    np.testing.assert_array_equal(image_folder.decode(str(tmp_path / "rgba.png"), 4, 4).numpy(),
                                  rgba[..., :3])


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """40 PNGs in two subfolders, an unreadable .png and a text file."""
    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for i in range(40):
        write_png(root / f"part{i % 2}" / f"{i:02d}.png", rng.integers(0, 256, (10, 12, 3)))
    (root / "part0" / "broken.png").write_bytes(b"not a png")
    (root / "notes.txt").write_text("not an image")
    return root


def test_split_by_file_name_and_unreadable_files_counted(folder):
    lines = []
    train = image_folder.load_folder(str(folder), "train", 8, 8, log=lines.append)
    test = image_folder.load_folder(str(folder), "test", 8, 8, log=lines.append)
    names = sorted(str(p.relative_to(folder)) for p in folder.rglob("??.png"))
    expected_test = [n for n in names if zlib.crc32(n.encode()) % 10 == 0]
    assert sorted(str(p)[len(str(folder)) + 1:] for p in test.paths) == expected_test
    assert len(train) + len(test) == 40 and 0 < len(test) < 40
    assert train.shape == (len(train), 8, 8, 3) and train[[0, 1]].shape == (2, 8, 8, 3)
    broken_in = "train" if zlib.crc32(b"part0/broken.png") % 10 else "test"
    assert lines == [f"{folder}: skipped 1 of {len(train if broken_in == 'train' else test) + 1} "
                     f"{broken_in} files that do not decode as images"]


def test_a_test_subfolder_is_the_test_split(tmp_path):
    for name in ("a.png", "b.jpg", "test/c.png", "test/deeper/d.png"):
        write_png(tmp_path / name, np.zeros((3, 3, 3)))
    assert [p.rsplit("/", 1)[1] for p in image_folder.load_folder(str(tmp_path), "test", 2, 2).paths] \
        == ["c.png", "d.png"]
    assert len(image_folder.load_folder(str(tmp_path), "train", 2, 2)) == 2


def test_training_order_streams_and_resumes_mid_epoch(folder):
    images = image_folder.load_folder(str(folder), "train", 8, 8, log=lambda line: None)
    whole = [b[0].numpy() for b in data.train_batches(images, None, 4, epoch=1, seed=3)]
    resumed = [b[0].numpy() for b in data.train_batches(images, None, 4, epoch=1, seed=3, skip=2)]
    assert len(whole) == len(images) // 4 and len(resumed) == len(whole) - 2
    for a, b in zip(whole[2:], resumed):
        np.testing.assert_array_equal(a, b)
    order = np.random.default_rng([3, 1]).permutation(len(images))
    np.testing.assert_array_equal(whole[0], images[order[:4]])  # the order of the in-memory path


@pytest.mark.slow
def test_train_and_evaluate_on_a_folder(folder, tmp_path):
    run = invoke(train_command, f"--dataset=folder:{folder}", "--image_size=6,6", "--nr_filters=8",
                 "--nr_resnet=1", "--attn_rep=1", "--nr_logistic_mix=2", "--batch_size=8", "--max_epochs=1",
                 "--num_samples=0", "--kernels=reference", f"--save_dir={tmp_path / 'run'}")
    assert run.returncode == 0, run.stderr
    assert "--image_size=6,6\n" in (tmp_path / "run" / "flags.txt").read_text()
    scored = invoke(evaluate_command, f"--checkpoint={tmp_path / 'run'}", f"--dataset=folder:{folder}",
                    f"--json_out={tmp_path / 'r.json'}")
    assert scored.returncode == 0, scored.stderr
    test = image_folder.load_folder(str(folder), "test", 6, 6, log=lambda line: None)
    assert scored.stdout.strip().splitlines()[-1].startswith("test bpd ")
    assert f"on {len(test)} images" in scored.stdout


def test_a_folder_run_is_named_after_the_folder():
    assert train_command.default_save_dir("folder:/data/photos/") == "runs/photos"
    assert train_command.default_save_dir("cifar10") == "runs/cifar10"

"""What the programs write: an existing output is replaced only with --overwrite, a long draw is made a
batch at a time (its noise too) and equals the draw made at once, and a save that fails leaves no
partial files behind."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from commands import invoke
from conftest import TINY, TINY_FLAGS
from pixelsnail_tf.commands import evaluate, sample, train
from pixelsnail_tf.distributions import distribution_of
from pixelsnail_tf.sampling import draw_noise

CHECKPOINT = [f"--checkpoint={TINY / 'trained'}", *TINY_FLAGS]
SMALL = ["--image_size=3,4", "--num_samples=3", "--batch_size=2", "--seed=5"]


@pytest.mark.slow
def test_sample_replaces_its_outputs_only_when_asked(tmp_path):
    out = f"--out_dir={tmp_path}"
    assert invoke(sample, *CHECKPOINT, *SMALL, out).returncode == 0
    first = np.load(tmp_path / "samples.npy")
    (tmp_path / "samples.npy").write_bytes(b"edited by the user")
    refused = invoke(sample, *CHECKPOINT, *SMALL, out)
    assert refused.returncode == 1
    assert refused.stderr.splitlines()[0] == (f"error: --out_dir={tmp_path} holds samples.npy already; give "
                                              f"--overwrite to replace them, or another --out_dir")
    assert (tmp_path / "samples.npy").read_bytes() == b"edited by the user"
    assert invoke(sample, *CHECKPOINT, *SMALL, out, "--overwrite").returncode == 0
    np.testing.assert_array_equal(np.load(tmp_path / "samples.npy"), first)
    assert sorted(os.listdir(tmp_path)) == ["samples.npy", "samples.png", "samples_1x.png"]  # no .partial


@pytest.mark.slow
def test_evaluate_replaces_its_outputs_only_when_asked(tmp_path, tiny_reference):
    np.save(tmp_path / "x.npy", tiny_reference["x_test_u8"][:2])
    args = [*CHECKPOINT, f"--images={tmp_path / 'x.npy'}", f"--json_out={tmp_path / 'r.json'}",
            f"--heatmap_dir={tmp_path / 'maps'}"]
    assert invoke(evaluate, *args).returncode == 0
    first = json.loads((tmp_path / "r.json").read_text())
    (tmp_path / "maps" / "heatmap_7.png").write_bytes(b"an older run's")
    refused = invoke(evaluate, *args)
    assert refused.returncode == 1 and "exists already; give --overwrite" in refused.stderr
    assert (tmp_path / "maps" / "heatmap_7.png").exists()
    assert invoke(evaluate, *args, "--overwrite").returncode == 0
    assert json.loads((tmp_path / "r.json").read_text()) == first
    assert sorted(os.listdir(tmp_path / "maps")) == ["heatmap_0.png", "heatmap_1.png", "per_pixel_bits.npy",
                                                     "scale.json"]  # the older run's panel is gone


@pytest.mark.parametrize("config", [dict(nr_logistic_mix=3), dict(output="categorical", num_codes=5)])
def test_noise_drawn_a_batch_at_a_time_equals_one_draw(config, tiny_config):
    distribution = distribution_of(tiny_config.replace(**config))
    whole = draw_noise(distribution, 7, 3, 5, seed=11)
    for start, stop in [(0, 2), (2, 5), (5, 7), (3, 4), (0, 7)]:
        part = draw_noise(distribution, stop - start, 3, 5, seed=11, start=start)
        for u, u_part in zip(whole, part):
            np.testing.assert_array_equal(u_part.numpy(), u[start:stop].numpy())
    assert not np.array_equal(whole[0][:2].numpy(), whole[0][2:4].numpy())


@pytest.mark.slow
def test_sampled_images_do_not_depend_on_the_batch(tmp_path):
    for batch in (1, 3):
        out = f"--out_dir={tmp_path / str(batch)}"
        run = invoke(sample, *CHECKPOINT, *SMALL[:2], f"--batch_size={batch}", "--seed=5", out)
        assert run.returncode == 0, run.stderr
    one, three = (np.load(tmp_path / str(batch) / "samples.npy") for batch in (1, 3))
    np.testing.assert_array_equal(one, three)


@pytest.mark.slow
def test_a_failed_save_is_one_line_and_leaves_no_partial_checkpoint(tmp_path, monkeypatch):
    images = np.random.default_rng(0).integers(0, 256, (10, 4, 4, 3), dtype=np.uint8)
    np.savez(tmp_path / "train.npz", x=images[:8])
    np.savez(tmp_path / "test.npz", x=images[8:])
    run_dir = tmp_path / "run"
    args = ["--dataset=npz", f"--data_dir={tmp_path}", f"--save_dir={run_dir}", "--nr_filters=8",
            "--nr_resnet=1", "--attn_rep=1", "--nr_logistic_mix=2", "--num_samples=0", "--batch_size=4",
            "--kernels=reference", "--dropout_p=0"]
    assert invoke(train, *args, "--max_epochs=1").returncode == 0
    kept = sorted(os.listdir(run_dir))

    def full_disk(manager, checkpoint_number):
        os.makedirs(run_dir / f"ckpt-{checkpoint_number}_temp")
        (run_dir / f"ckpt-{checkpoint_number}_temp" / "part-00000").write_bytes(b"half")
        temporary = f"{run_dir}/ckpt-4_temp/part-00000-of-00001.data-00000-of-00001.tempstate1234"
        raise tf.errors.ResourceExhaustedError(None, None, f"Failed to flush 9 bytes to file {temporary}: "
                                               "No space left on device [Op:SaveV2]")

    monkeypatch.setattr(tf.train.CheckpointManager, "save", full_disk)
    failed = invoke(train, *args, "--max_epochs=2")
    monkeypatch.undo()
    assert failed.returncode == 1
    line = failed.stderr.splitlines()[0].replace(str(run_dir), "RUN")
    assert line.startswith("error: cannot save RUN/ckpt-4: ") and line.endswith(
        "No space left on device; the newest checkpoint: RUN/ckpt-2")
    assert len(line) <= 200
    assert sorted(os.listdir(run_dir)) == kept  # no ckpt-4_temp left, ckpt-2 kept
    os.makedirs(run_dir / "ckpt-9_temp")  # as a process killed while saving leaves it
    assert invoke(train, *args, "--max_epochs=2").returncode == 0
    assert not (run_dir / "ckpt-9_temp").exists() and (run_dir / "ckpt-4.index").exists()

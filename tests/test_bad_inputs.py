"""Every mistake a user can make with the programs is one line: exit status 1, no traceback, a first line
of at most 200 characters that says what is wrong, and every input file left as it was.

The programs run in-process (tests/commands.py): an exception other than SystemExit fails the test
where the real program would print a traceback.
"""

import hashlib
import json
import shutil

import numpy as np
import numpy.lib.format
import pytest
import tensorflow as tf

from commands import invoke
from conftest import TINY, TINY_FLAGS
from pixelsnail_tf.checkpoints import conversion
from pixelsnail_tf.commands import convert as convert_command
from pixelsnail_tf.commands import evaluate, export, sample, train

FIRST_LINE_LIMIT = 200


def images(rng, count, size=8):
    return rng.integers(0, 256, (count, size, size, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, tiny_config):
    """A folder of good and bad inputs; the tests check that none of it changes."""
    root = tmp_path_factory.mktemp("inputs")
    rng = np.random.default_rng(0)
    for name, train_images, labels in [("data", images(rng, 16), None),
                                       ("huge_label", images(rng, 16), np.r_[np.zeros(15), 1e9]),
                                       ("one_pixel", images(rng, 16, size=1), None),
                                       ("six_pixels", images(rng, 16, size=6), None),
                                       ("four_pixels", images(rng, 16, size=4), None)]:
        (root / name).mkdir()
        extra = {} if labels is None else {"y": labels.astype(np.int64)}
        np.savez(root / name / "train.npz", x=train_images, **extra)
        np.savez(root / name / "test.npz", x=train_images[:4], **({} if labels is None else {"y": extra["y"][:4]}))
    (root / "truncated").mkdir()
    whole = (root / "data" / "train.npz").read_bytes()
    (root / "truncated" / "train.npz").write_bytes(whole[:len(whole) // 2])
    shutil.copy(root / "data" / "test.npz", root / "truncated" / "test.npz")
    np.save(root / "images.npy", images(rng, 4))
    whole = (root / "images.npy").read_bytes()
    (root / "truncated.npy").write_bytes(whole[:-10])
    with open(root / "huge.npy", "wb") as f:  # a header that declares 3 PB
        numpy.lib.format.write_array_header_1_0(f, {"descr": "|u1", "fortran_order": False,
                                                    "shape": (10 ** 12, 32, 32, 3)})
        f.write(bytes(64))
    np.savez(root / "images.npz", x=images(rng, 4))
    noise = dict(u_mix=rng.uniform(size=(2, 8, 8, 3)), u_logistic=rng.uniform(size=(2, 8, 8, 3)))
    noise["u_mix"][0, 0, 0, 0] = np.nan
    np.savez(root / "nan_noise.npz", **noise)
    (root / "a_file").write_text("not a folder")
    # our checkpoint of the tiny bundle, and damaged or mislabelled copies of it
    ours = root / "ours"
    conversion.tf1_to_ours(str(TINY / "trained"), tiny_config, str(ours))
    data_file = next(ours.glob("ckpt-3.data-*"))
    for name in ("truncated_ckpt", "flipped_index", "unknown_key", "other_nr_resnet"):
        shutil.copytree(ours, root / name)
    truncated = root / "truncated_ckpt" / data_file.name
    truncated.write_bytes(truncated.read_bytes()[:1000])
    index = root / "flipped_index" / "ckpt-3.index"
    raw = bytearray(index.read_bytes())
    raw[len(raw) // 2:len(raw) // 2 + 16] = bytes(b ^ 0xFF for b in raw[len(raw) // 2:len(raw) // 2 + 16])
    index.write_bytes(bytes(raw))
    for name, edit in [("unknown_key", {"nr_layers": 3}), ("other_nr_resnet", {"nr_resnet": 2})]:
        config = json.loads((root / name / "config.json").read_text())
        (root / name / "config.json").write_text(json.dumps({**config, **edit}))
    (root / "bad_flags").mkdir()
    (root / "bad_flags" / "flags.txt").write_text("--seed=1\n--nonsense=2\n")
    (root / "old_heatmaps").mkdir()
    np.save(root / "old_heatmaps" / "per_pixel_bits.npy", np.zeros([1, 2, 2], np.float32))
    (root / "config_only").mkdir()
    shutil.copy(ours / "config.json", root / "config_only" / "config.json")
    # outputs of earlier runs that a program must not replace without --overwrite
    for folder, name in [("old_samples", "samples.npy"), ("old_panels", "heatmap_0.png"),
                         ("not_a_run", "notes.txt"), ("exported/1", "saved_model.pb")]:
        (root / folder).mkdir(parents=True)
        (root / folder / name).write_bytes(b"made by the user")
    (root / "result.json").write_text("{}")
    # splits of different sizes; flags.txt and config.json that are damaged or name a size
    (root / "mixed_sizes").mkdir()
    np.savez(root / "mixed_sizes" / "train.npz", x=images(rng, 16))
    np.savez(root / "mixed_sizes" / "test.npz", x=images(rng, 4, size=16))
    for name, text in [("damaged_flags", "--nonsense=2\n"), ("bad_size_flags", "--image_size=abc\n"),
                       ("stray_line_flags", "--seed=1\nhello\n")]:
        shutil.copytree(ours, root / name)
        (root / name / "flags.txt").write_text(text)
    (root / "recorded_size").mkdir()
    (root / "recorded_size" / "flags.txt").write_text("--image_size=16\n" + "".join(
        f"{flag}\n" for flag in TRAIN if not flag.startswith(("--data_dir", "--save_dir"))))
    shutil.copytree(ours, root / "refused_model")
    config = json.loads((root / "refused_model" / "config.json").read_text())
    (root / "refused_model" / "config.json").write_text(json.dumps({**config, "model": "h6_hier4"}))
    # arrays that hold nothing, or Python objects
    np.save(root / "empty.npy", np.zeros((0, 8, 8, 3), np.uint8))
    np.save(root / "objects.npy", np.array([{"x": 1}, 2], dtype=object), allow_pickle=True)
    # a folder of images, for --dataset=folder:
    for part in ("", "test/"):
        (root / "pictures" / part).mkdir(parents=True, exist_ok=True)
        for i in range(2 if part else 8):
            png = tf.io.encode_png(images(rng, 1)[0]).numpy()
            (root / "pictures" / f"{part}{i}.png").write_bytes(png)
    return root


def fingerprint(folder):
    """Hashes of every file; a run folder's .lock (run_folder.RunLock: it stays, empty) aside."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != ".lock"}


TRAIN = ["--dataset=npz", "--data_dir={in}/data", "--nr_filters=16", "--nr_resnet=1", "--attn_rep=1",
         "--nr_logistic_mix=3", "--kernels=reference", "--num_samples=0", "--batch_size=8",
         "--max_epochs=1", "--save_dir={out}/run"]
TINY_CHECKPOINT = [f"--checkpoint={TINY / 'trained'}", *TINY_FLAGS]

# (program, its good arguments, the mistake, what the first line must contain)
CASES = [
    # flags one step beyond their bounds
    *[(train, TRAIN, [flag], flag.split("=")[0]) for flag in [
        "--batch_size=0", "--save_interval=0", "--init_batch_size=0", "--learning_rate=0",
        "--learning_rate=nan", "--lr_decay=0", "--lr_decay=1.5", "--polyak_decay=1", "--polyak_decay=nan",
        "--dropout_p=1", "--max_epochs=0", "--num_samples=-1", "--nr_gpu=0", "--nr_filters=0",
        "--nr_resnet=0", "--attn_rep=0", "--nr_logistic_mix=0"]],
    (sample, TINY_CHECKPOINT, ["--num_samples=0"], "--num_samples"),
    (sample, TINY_CHECKPOINT, ["--batch_size=0"], "--batch_size"),
    (evaluate, TINY_CHECKPOINT, ["--batch_size=0", "--images={in}/images.npy"], "--batch_size"),
    (export, TINY_CHECKPOINT, ["--version=-1", "--export_dir={out}/e"], "--version"),
    # training data
    (train, TRAIN, ["--data_dir={in}/missing"], "no such file"),
    (train, TRAIN, ["--data_dir={in}/truncated"], "cannot read"),
    (train, TRAIN, ["--data_dir={in}/huge_label", "--class_conditional"], "class labels y must lie in"),
    (train, TRAIN, ["--data_dir={in}/one_pixel"], "1x1 images"),
    (train, TRAIN, ["--model=h6_hier4"], "model=h6_hier4 is not supported"),
    (train, TRAIN, ["--model=pxpp"], "model=pxpp has no attention blocks"),
    (train, [a for a in TRAIN if a != "--attn_rep=1"], ["--model=pxpp", "--data_dir={in}/six_pixels"],
     "a pxpp model needs image sides that are multiples of 4, got 6x6"),
    (train, [a for a in TRAIN if a != "--attn_rep=1"], ["--model=pxpp", "--data_dir={in}/four_pixels"],
     "a pxpp model initializes on images of at least 8 rows (on fewer, a layer sees only padding), got 4x4"),
    (train, TRAIN, ["--dataset=folder:{in}/missing"], "no such folder"),
    (train, TRAIN, ["--dataset=folder:{in}/data"], "has no readable train images"),
    (train, TRAIN, ["--dataset=cifar"], "unknown dataset 'cifar'"),
    # run folders and checkpoints to start from
    (train, TRAIN, ["--save_dir={in}/a_file"], "cannot write to --save_dir"),
    (train, TRAIN, ["--save_dir={in}/ours"], "holds a run with another model config: nr_filters: 32 != 16"),
    (train, TRAIN, ["--save_dir={in}/bad_flags"], "cannot be read as the run's flags"),
    (train, TRAIN, ["--save_dir={in}/unknown_key"], "unknown model config fields ['nr_layers']"),
    (train, [*TRAIN[:2], *TINY_FLAGS, "--dropout_p=0", "--save_dir={out}/r"],
     ["--save_dir={in}/truncated_ckpt"], "cannot resume from"),
    (train, TRAIN, ["--init_checkpoint=" + str(TINY / "trained")], "was made with other model flags"),
    # checkpoints to read
    *[(program, [], args, expected) for program, args in [
        (sample, ["--out_dir={out}/s"]), (evaluate, ["--images={in}/images.npy"]),
        (export, ["--export_dir={out}/e"])] for args, expected in [
        ([*args, "--checkpoint={in}/truncated_ckpt"], "cannot read checkpoint"),
        ([*args, "--checkpoint={in}/flipped_index"], "cannot read checkpoint"),
        ([*args, "--checkpoint={in}/other_nr_resnet"], "does not fit the model"),
        ([*args, "--checkpoint={in}/unknown_key"], "unknown model config fields"),
        ([*args, "--checkpoint={in}/missing"], "no checkpoint at"),
        ([*args, f"--checkpoint={TINY / 'trained'}", "--nr_resnet=2", *TINY_FLAGS[:1], *TINY_FLAGS[2:]],
         "was made with other model flags: --nr_resnet=1 (not 2)")]],
    # sample
    (sample, TINY_CHECKPOINT, ["--image_size=16x16"], "--image_size must be H,W"),
    (sample, TINY_CHECKPOINT, ["--noise_from={in}/nan_noise.npz"], "uniform noise in (0, 1)"),
    (sample, TINY_CHECKPOINT, ["--noise_from={in}/images.npz"], "has no array named u_mix, u_logistic"),
    (sample, TINY_CHECKPOINT, ["--noise_from={in}/truncated/train.npz"], "cannot read"),
    (sample, TINY_CHECKPOINT, ["--out_dir={in}/a_file"], "--out_dir"),
    (sample, TINY_CHECKPOINT, ["--class_label=1"], "not class-conditional"),
    # evaluate
    (evaluate, TINY_CHECKPOINT, ["--images={in}/data"], "is a folder"),
    (evaluate, TINY_CHECKPOINT, ["--images={in}/images.npz"], "is not a .npy file"),
    (evaluate, TINY_CHECKPOINT, ["--images={in}/huge.npy"], "too large to load"),
    (evaluate, TINY_CHECKPOINT, ["--images={in}/truncated.npy"], "cannot read"),
    (evaluate, TINY_CHECKPOINT, ["--images={in}/images.npy", "--heatmap_dir={in}/old_heatmaps"],
     "holds heat maps already (per_pixel_bits.npy); give --overwrite"),
    (evaluate, TINY_CHECKPOINT, ["--images={in}/images.npy", "--heatmap_dir={in}/a_file"], "--heatmap_dir"),
    (evaluate, TINY_CHECKPOINT, ["--images={in}/images.npy", "--json_out={in}/a_file/r.json"],
     "does not exist"),
    (evaluate, TINY_CHECKPOINT, ["--images={in}/images.npy", "--json_out={in}/data"], "is a folder"),
    # export
    (export, TINY_CHECKPOINT, ["--export_dir={in}/a_file"], "is a file"),
    (export, TINY_CHECKPOINT, ["--export_dir={out}/e", "--image_size=0"], "--image_size"),
    # convert
    (convert_command, TINY_FLAGS, ["--tf1_checkpoint=" + str(TINY / "trained"), "--save_dir={in}/a_file"],
     "is a file"),
    (convert_command, TINY_FLAGS, ["--tf1_checkpoint=" + str(TINY / "trained"),
                                   "--save_dir={in}/config_only"], "is not empty"),
    (convert_command, [], ["--to_tf1", "--checkpoint={in}/truncated_ckpt", "--save_dir={out}/c"],
     "cannot read"),
    (convert_command, [], ["--save_dir={out}/c"], "give --tf1_checkpoint"),
    # outputs the user made are not replaced without --overwrite
    (sample, TINY_CHECKPOINT, ["--out_dir={in}/old_samples"], "holds samples.npy already; give --overwrite"),
    (sample, TINY_CHECKPOINT, ["--out_dir={in}/old_samples", "--complete={in}/images.npy", "--given_rows=2"],
     "holds samples.npy already; give --overwrite"),
    (evaluate, TINY_CHECKPOINT, ["--images={in}/images.npy", "--json_out={in}/result.json"],
     "exists already; give --overwrite"),
    (evaluate, TINY_CHECKPOINT, ["--images={in}/images.npy", "--heatmap_dir={in}/old_panels"],
     "holds heat maps already (heatmap_0.png); give --overwrite"),
    (export, TINY_CHECKPOINT, ["--export_dir={in}/exported"], "exists already; choose another --version"),
    (export, TINY_CHECKPOINT, ["--export_dir={in}/exported", "--format=keras"], "exists already"),
    (train, TRAIN, ["--save_dir={in}/not_a_run"], "holds notes.txt and no run"),
    # numbers on data that were not checked
    (train, TRAIN, ["--data_dir={in}/mixed_sizes"], "a model is trained and tested on one shape"),
    *[(program, [], [*args, f"--checkpoint={{in}}/{folder}"], expected)
      for program, args in [(sample, ["--out_dir={out}/s"]), (evaluate, ["--images={in}/images.npy"]),
                            (export, ["--export_dir={out}/e"])]
      for folder, expected in [("damaged_flags", "flags.txt cannot be read as the run's flags"),
                               ("bad_size_flags", "--image_size must be H,W"),
                               ("stray_line_flags", "'hello' is not a flag")]],
    (train, TRAIN, ["--save_dir={in}/damaged_flags"], "flags.txt cannot be read as the run's flags"),
    (train, TRAIN, ["--save_dir={in}/bad_size_flags"], "--image_size must be H,W"),
    # sizes are bounded before anything is allocated
    (sample, TINY_CHECKPOINT, ["--num_samples=1000000000000"], "free in"),
    (sample, TINY_CHECKPOINT, ["--image_size=100000,100000"], "needs at least"),
    (sample, TINY_CHECKPOINT, ["--num_samples=1000000000", "--batch_size=1000000000", "--out_dir={out}/s"],
     "needs at least"),
    (sample, TINY_CHECKPOINT, ["--num_samples=1000000000", "--complete={in}/images.npy", "--given_rows=2",
                               "--out_dir={out}/s"], "needs at least"),
    (export, TINY_CHECKPOINT, ["--export_dir={out}/e", "--image_size=100000,100000"], "needs at least"),
    (train, TRAIN, ["--dataset=folder:{in}/pictures", "--image_size=100000,100000"], "needs at least"),
    (train, TRAIN, ["--init_batch_size=100000000", "--dataset=folder:{in}/pictures"], "needs at least"),
    # each line names the real cause, and where the value came from
    (sample, TINY_CHECKPOINT, ["--complete={in}/empty.npy", "--given_rows=1"], "holds no images"),
    (evaluate, TINY_CHECKPOINT, ["--images={in}/empty.npy"], "IN/empty.npy holds no images"),
    (evaluate, TINY_CHECKPOINT, ["--images={in}/objects.npy"], "holds Python objects"),
    (sample, TINY_CHECKPOINT, ["--complete={in}/objects.npy", "--given_rows=1"], "holds Python objects"),
    *[(program, [], [*args, "--checkpoint={in}/refused_model"],
       "config.json: model=h6_hier4 is not supported")
      for program, args in [(sample, ["--out_dir={out}/s"]), (evaluate, ["--images={in}/images.npy"]),
                            (export, ["--export_dir={out}/e"])]],
    (train, TRAIN, ["--save_dir={in}/recorded_size"],
     "--image_size=16 (recorded in IN/recorded_size/flags.txt), but the training images are 8x8"),
    (train, TRAIN, ["--seed=-1"], "--seed"),
    (train, TRAIN, ["--dataset=tfds:"], "needs the data set's name"),
    (train, TRAIN, ["--dataset=folder:{in}/a_file"], "is a file; give the folder"),
]


def case_id(case):
    program, _, args, _ = case
    return program.__name__.rsplit(".", 1)[1] + " " + " ".join(a.rsplit("/", 1)[-1] for a in args)


@pytest.mark.parametrize("case", CASES, ids=[case_id(c) for c in CASES])
def test_a_mistake_is_one_line_and_changes_nothing(case, inputs, tmp_path):
    program, good, mistake, expected = case
    before = fingerprint(inputs)
    args = [a.replace("{in}", str(inputs)).replace("{out}", str(tmp_path)) for a in [*good, *mistake]]
    outcome = invoke(program, *args)
    assert outcome.returncode == 1, outcome
    first = outcome.stderr.splitlines()[0]
    assert first.startswith(("error: ", "FATAL Flags parsing error: ")), first
    # the limit is the message's: the temporary folders' paths (longer under pytest-xdist) count as one word
    message = first.replace(str(inputs), "IN").replace(str(tmp_path), "OUT")
    assert len(message) <= FIRST_LINE_LIMIT, first
    assert expected in message, first
    assert fingerprint(inputs) == before

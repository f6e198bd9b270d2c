"""The package as a user installs it: a wheel built from the checkout, installed into a fresh virtual
environment outside it, its console commands run from another working directory."""

import ast
import os
import shutil
import site
import subprocess
import sys
import venv

import numpy as np
import pytest
import tensorflow as tf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMMANDS = ("pixelsnail-train", "pixelsnail-evaluate", "pixelsnail-sample", "pixelsnail-export",
            "pixelsnail-convert")


def run(command, cwd, timeout=600):
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                            env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def _not_the_sources(folder, names):
    """What the copy leaves out: build outputs anywhere; the checkout's tests and its folders of runs
    and downloaded checkpoints (not pixelsnail_tf/checkpoints, the package's own module)."""
    skipped = {name for name in names if name in (".git", "build", "__pycache__")
               or name.endswith(".egg-info")}
    if os.path.samefile(folder, ROOT):
        skipped |= {"tests", "runs", "checkpoints"} & set(names)
    return skipped


def running_site_packages():
    """The folders the running interpreter imports installed packages from, whether it is a system
    Python, a virtual environment (with or without --system-site-packages) or a conda environment; none
    inside the checkout."""
    folders = list(site.getsitepackages())
    if site.ENABLE_USER_SITE:
        folders.append(site.getusersitepackages())
    return [folder for folder in folders if os.path.isdir(folder)
            and os.path.commonpath([os.path.abspath(folder), ROOT]) != ROOT]


def lend_packages(env, folders):
    """Makes `folders` importable in the virtual environment `env`, after its own site-packages, as plain
    path entries: the .pth files in them (an editable install of this checkout among them) are not run."""
    (own,) = (env / "lib").glob("python*/site-packages")
    (own / "_running_interpreter.pth").write_text("".join(f"{folder}\n" for folder in folders))


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """bin/ of a fresh virtual environment with the wheel installed. Its dependencies are the running
    interpreter's own packages, lent to it by a .pth file, so that the test needs no network and passes
    wherever pytest runs (--system-site-packages would lend the base interpreter's, which a virtual or conda
    environment's pytest does not use)."""
    root = tmp_path_factory.mktemp("install")
    # built from a copy: the build writes build/ and *.egg-info/ beside the sources
    shutil.copytree(ROOT, root / "source", ignore=_not_the_sources)
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
         str(root / "wheel"), str(root / "source")], cwd=root)
    (wheel,) = (root / "wheel").glob("pixelsnail_tf-*.whl")
    venv.EnvBuilder(with_pip=False).create(root / "env")
    lend_packages(root / "env", running_site_packages())
    bin_dir = root / "env" / "bin"
    run([sys.executable, "-m", "pip", "--python", str(bin_dir / "python"), "install", "--no-deps",
         "--no-index", "-q", str(wheel)], cwd=root)
    return bin_dir


def test_the_wheel_installs_the_package_and_its_commands(installed, tmp_path):
    where = run([str(installed / "python"), "-c", "import pixelsnail_tf; print(pixelsnail_tf.__file__)"],
                cwd=tmp_path).stdout.strip()
    assert where.startswith(str(installed.parent)), where  # the wheel's copy, not the checkout
    paths = run([str(installed / "python"), "-c", "import sys; print(repr(sys.path))"], cwd=tmp_path).stdout
    assert ROOT not in ast.literal_eval(paths)
    for command in COMMANDS:
        assert (installed / command).exists(), command


@pytest.mark.slow
def test_train_sample_evaluate_from_another_folder(installed, tmp_path):
    """pixelsnail-train on a folder of PNGs written here, then sample and evaluate on its run folder."""
    rng = np.random.default_rng(0)
    (tmp_path / "images").mkdir()
    for i in range(20):
        (tmp_path / "images" / f"{i}.png").write_bytes(
            tf.io.encode_png(rng.integers(0, 256, (9, 7, 3), dtype=np.uint8)).numpy())
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    run([str(installed / "pixelsnail-train"), f"--dataset=folder:{tmp_path / 'images'}", "--image_size=6,6",
         "--nr_filters=8", "--nr_resnet=1", "--attn_rep=1", "--nr_logistic_mix=2", "--batch_size=8",
         "--max_epochs=1", "--num_samples=0", "--kernels=reference", "--save_dir=run"], cwd=tmp_path)
    run([str(installed / "pixelsnail-sample"), f"--checkpoint={tmp_path / 'run'}", "--num_samples=2",
         "--out_dir=drawn"], cwd=elsewhere)
    assert np.load(elsewhere / "drawn" / "samples.npy").shape == (2, 6, 6, 3)  # the trained size
    np.save(tmp_path / "test.npy", rng.integers(0, 256, (3, 6, 6, 3), dtype=np.uint8))
    result = run([str(installed / "pixelsnail-evaluate"), f"--checkpoint={tmp_path / 'run'}",
                  f"--images={tmp_path / 'test.npy'}"], cwd=elsewhere)
    assert result.stdout.strip().splitlines()[-1].startswith("test bpd ")

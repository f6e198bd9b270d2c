"""What the programs share (pixelsnail_tf.cli): their flags, and --help as a user reads it."""

import os
import pathlib
import subprocess

import pytest
from absl import flags

from commands import installed_command
from pixelsnail_tf.commands import convert as convert_command
from pixelsnail_tf.commands import evaluate as evaluate_command
from pixelsnail_tf.commands import export as export_command
from pixelsnail_tf.commands import sample as sample_command
from pixelsnail_tf.commands import train as train_command

ROOT = pathlib.Path(__file__).resolve().parents[1]
MODEL_FLAGS = ["model", "nr_resnet", "nr_filters", "nr_logistic_mix", "resnet_nonlinearity", "attn_rep",
               "output", "num_codes"]


@pytest.mark.parametrize("module, own_flags", [
    (evaluate_command, ["checkpoint", "ema", "dataset", "data_dir", "images", "json_out", "heatmap_dir",
                        "batch_size", "mixed_precision", "allow_tf32", "kernels", "overwrite"]),
    (sample_command, ["checkpoint", "ema", "num_samples", "batch_size", "seed", "class_label",
                      "image_size", "out_dir", "original_sampling", "noise_from", "sampler",
                      "mixed_precision", "allow_tf32", "kernels", "complete", "given_rows", "given_mask",
                      "overwrite"]),
    (export_command, ["checkpoint", "ema", "image_size", "export_dir", "format", "version", "kernels"]),
    (train_command, ["dataset", "data_set", "data_dir", "save_dir", "save_interval", "init_checkpoint",
                     "class_conditional", "learning_rate", "lr_decay", "batch_size", "init_batch_size",
                     "dropout_p", "max_epochs", "nr_gpu", "polyak_decay", "seed", "shuffle", "num_samples",
                     "preset", "image_size", "mixed_precision", "allow_tf32", "kernels", "accum_steps",
                     "recompute", "worker_gradients"]),
    (convert_command, ["tf1_checkpoint", "checkpoint", "to_tf1", "save_dir", "dropout_p"]),
])
def test_every_program_has_its_flags(module, own_flags):
    values = flags.FlagValues()
    module.define_flags(values)
    assert set(values) == set(own_flags + MODEL_FLAGS)


@pytest.mark.slow
def test_help_lists_every_flag_and_nothing_else():
    """The installed console command: its --help lists its flags once each, without TensorFlow's start-up
    lines or retracing warnings."""
    command = installed_command("pixelsnail-evaluate")
    run = subprocess.run([command, "--help"], capture_output=True, text=True, timeout=300,
                         cwd=ROOT, env={k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"})
    assert run.returncode in (0, 1), run.stderr  # absl ends --help with 1
    assert run.stderr == ""
    values = flags.FlagValues()
    evaluate_command.define_flags(values)
    listed = [line.split(":")[0].strip() for line in run.stdout.splitlines() if line.startswith("  --")]
    assert sorted(listed) == sorted(f"--[no]{name}" if values[name].boolean else f"--{name}"
                                    for name in values)
    lines = [line for line in run.stdout.splitlines() if line.strip() and not line.startswith("    (")]
    assert len(lines) == len(set(lines)), "a line printed twice"  # "(an integer)" and such repeat

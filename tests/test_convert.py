"""TF1 <-> pixelsnail_tf checkpoint conversion: exact round trip, same bpd."""

import os

import numpy as np
import pytest
import tensorflow as tf

from commands import invoke
from conftest import TINY
from tolerances import NETWORK_RTOL
from pixelsnail_tf import checkpoints
from pixelsnail_tf.checkpoints import conversion
from pixelsnail_tf.commands import convert as convert_command
from pixelsnail_tf.models import PixelSNAIL


def tensors(prefix):
    reader = tf.train.load_checkpoint(prefix)
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}


def run_convert(*args):
    return invoke(convert_command, *args)


def test_round_trip_is_bit_exact_through_the_command_line(tmp_path):
    original = str(TINY / "trained" / "model.ckpt")
    run = run_convert(f"--tf1_checkpoint={original}", f"--save_dir={tmp_path / 'ours'}",
                      "--nr_filters=32", "--nr_resnet=1", "--attn_rep=2", "--nr_logistic_mix=3",
                      "--dropout_p=0")
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == f"wrote {tmp_path / 'ours' / 'ckpt-3'}"  # t = 4 after 3 steps
    run = run_convert("--to_tf1", f"--checkpoint={tmp_path / 'ours'}", f"--save_dir={tmp_path / 'back'}")
    assert run.returncode == 0, run.stderr
    before, after = tensors(original), tensors(str(tmp_path / "back" / "model.ckpt"))
    assert sorted(before) == sorted(after)
    for name, value in before.items():
        assert value.dtype == after[name].dtype and value.shape == after[name].shape, name
        np.testing.assert_array_equal(after[name], value, err_msg=name)
    assert tf.train.latest_checkpoint(str(tmp_path / "back")) == str(tmp_path / "back" / "model.ckpt")
    # nothing is overwritten
    run = run_convert("--to_tf1", f"--checkpoint={tmp_path / 'ours'}", f"--save_dir={tmp_path / 'back'}")
    assert run.returncode == 1
    assert run.stderr.strip().splitlines()[-1] == (
        f"error: {tmp_path / 'back'} is not empty; convert into an empty folder")


@pytest.mark.paths
@pytest.mark.parametrize("use_ema, key", [(True, "ema_final"), (False, "raw_final")])
def test_converted_checkpoint_gives_the_same_likelihood(tmp_path, tiny_config, tiny_reference,
                                                        use_ema, key):
    prefix = conversion.tf1_to_ours(str(TINY / "trained"), tiny_config, str(tmp_path / "ours"))
    model = PixelSNAIL(checkpoints.read_config(str(tmp_path / "ours")))
    model.build((None, 8, 8, 3))
    checkpoints.load_weights(model, prefix, use_ema=use_ema)
    np.testing.assert_allclose(model.log_prob(tiny_reference["x_test_u8"]).numpy(),
                               tiny_reference[f"ll_test_{key}"], rtol=NETWORK_RTOL)


def test_wrong_config_is_refused(tmp_path, tiny_config):
    with pytest.raises(ValueError, match="was made with other model flags: --nr_filters=32 \(not 64\)"):
        conversion.tf1_to_ours(str(TINY / "trained"), tiny_config.replace(nr_filters=64), str(tmp_path))
    assert not os.listdir(tmp_path)

import json
import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

FIXTURES = pathlib.Path(__file__).parent / "fixtures"
TINY = FIXTURES / "tiny"
# The model flags of the tiny reference bundle, for the command-line tests.
TINY_FLAGS = ["--nr_filters=32", "--nr_resnet=1", "--attn_rep=2", "--nr_logistic_mix=3"]


@pytest.fixture(scope="session")
def tiny_reference():
    """The reference bundle made by the original code (see fixtures/tiny/README.txt)."""
    return dict(np.load(TINY / "reference.npz"))


@pytest.fixture(scope="session")
def tiny_config():
    from pixelsnail_tf.config import ModelConfig
    bundle = json.loads((TINY / "config.json").read_text())
    return ModelConfig(model=bundle["model"], dropout_p=bundle["dropout_p"], **bundle["model_opt"])


def trained_tiny_model(config, use_ema=True, **model_options):
    """The tiny bundle's trained checkpoint (made by the original code) loaded into our model."""
    from pixelsnail_tf import tf1_checkpoint
    from pixelsnail_tf.model import PixelSNAIL
    model = PixelSNAIL(config, **model_options)
    model.build((None, 8, 8, 3))
    tf1_checkpoint.load_tf1_checkpoint(model, str(TINY / "trained"), use_ema=use_ema)
    return model


def small_config(model="h12_noup_smallkey", **changes):
    """A few-thousand-parameter config of any variant, for fast structural tests."""
    from pixelsnail_tf.config import ModelConfig
    values = dict(model=model, nr_resnet=1, nr_filters=8, nr_logistic_mix=2, attn_rep=2,
                  dropout_p=0.0)
    values.update(changes)
    return ModelConfig(**values)


def pytest_configure(config):
    """Two logical CPU devices, so that multi-replica code runs on a CPU-only machine."""
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

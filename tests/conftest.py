import json
import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

FIXTURES = pathlib.Path(__file__).parent / "fixtures"
TINY = FIXTURES / "tiny"
# The same kind of bundle for the original's PixelCNN++ baseline (--model=pxpp).
PXPP = FIXTURES / "pxpp_tiny"
BUNDLES = {"tiny": TINY, "pxpp_tiny": PXPP}
# Measured figures that tests add (e.g. a flip rate), printed at the end of the run.
REPORT = []
# The model flags of the tiny reference bundle, for the command-line tests.
TINY_FLAGS = ["--nr_filters=32", "--nr_resnet=1", "--attn_rep=2", "--nr_logistic_mix=3"]


def bundle_config(directory):
    """The model config of a reference bundle (its config.json)."""
    from pixelsnail_tf.config import ModelConfig
    bundle = json.loads((directory / "config.json").read_text())
    return ModelConfig(model=bundle["model"], dropout_p=bundle["dropout_p"], **bundle["model_opt"])


@pytest.fixture(scope="session")
def tiny_reference():
    """The reference bundle made by the original code (see fixtures/tiny/README.txt)."""
    return dict(np.load(TINY / "reference.npz"))


@pytest.fixture(scope="session")
def tiny_config():
    return bundle_config(TINY)


@pytest.fixture(scope="session")
def test_images(tmp_path_factory, tiny_reference):
    """The tiny bundle's test images as a .npy file (what --images takes)."""
    path = tmp_path_factory.mktemp("images") / "test.npy"
    np.save(path, tiny_reference["x_test_u8"])
    return path


class Bundle:
    """A reference bundle made by the original code: its folder, model config and reference.npz."""

    def __init__(self, name):
        self.name, self.directory = name, BUNDLES[name]
        self.config = bundle_config(self.directory)
        self.reference = dict(np.load(self.directory / "reference.npz"))
        self.facts = json.loads((self.directory / "config.json").read_text())


_BUNDLES = {}


@pytest.fixture(scope="session", params=sorted(BUNDLES))
def bundle(request):
    """Each reference bundle in turn (the PixelSNAIL one, the PixelCNN++ one)."""
    if request.param not in _BUNDLES:
        _BUNDLES[request.param] = Bundle(request.param)
    return _BUNDLES[request.param]


def trained_tiny_model(config, use_ema=True, directory=TINY, **model_options):
    """A bundle's trained checkpoint (made by the original code) loaded into our model."""
    from pixelsnail_tf import checkpoints
    from pixelsnail_tf.models import build_model
    model = build_model(config, **model_options)
    model.build((None, 8, 8, 3))
    checkpoints.load_tf1_checkpoint(model, str(directory / "trained"), use_ema=use_ema)
    return model


def initialized_model(config, height, width, seed=0):
    """A model of `config` after a seeded data-dependent init on random images, or random code maps for
    a model of codes (labels if conditional)."""
    import keras
    from pixelsnail_tf.models import build_model
    keras.utils.set_random_seed(seed)  # the same weights in every run: a failure can be reproduced
    model = build_model(config)
    labels = np.arange(3) % config.num_classes if config.num_classes else None
    if config.model == "pxpp":  # its H/4 level must have more than one cell: the first sees no input,
        height, width = max(height, 8), max(width, 8)  # and the init would divide by a zero spread
    rng = np.random.default_rng(seed)
    if config.output == "categorical":
        data = rng.integers(0, config.num_codes, (3, height, width))
    else:
        data = rng.uniform(-1, 1, (3, height, width, 3)).astype(np.float32)
    model.initialize(data, labels)
    return model


def small_config(model="h12_noup_smallkey", **changes):
    """A few-thousand-parameter config of any variant, for fast structural tests (2 attention blocks
    where the variant has attention)."""
    from pixelsnail_tf.config import VARIANTS, ModelConfig
    values = dict(model=model, nr_resnet=1, nr_filters=8, nr_logistic_mix=2,
                  attn_rep=2 if VARIANTS[model].num_blocks else None, dropout_p=0.0)
    values.update(changes)
    return ModelConfig(**values)


def onednn_cap_forbids_bfloat16():
    """True under ONEDNN_MAX_CPU_ISA below AVX-512 (the AVX2 emulation) with oneDNN on.

    TensorFlow hands bfloat16 matmuls and convolutions to oneDNN when the real CPU has AVX-512; the cap
    then leaves oneDNN without a kernel for them (errors, segmentation faults). A real AVX2 CPU runs
    them in Eigen instead, which TF_ENABLE_ONEDNN_OPTS=0 reproduces: the bfloat16 tests run there.
    """
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA", "").upper()
    return (os.environ.get("TF_ENABLE_ONEDNN_OPTS") != "0" and cap.startswith(("SSE", "AVX"))
            and not cap.startswith("AVX512"))


def pytest_collection_modifyitems(config, items):
    if onednn_cap_forbids_bfloat16():
        skip = pytest.mark.skip(reason="bfloat16 cannot run under ONEDNN_MAX_CPU_ISA below AVX-512 "
                                       "(see conftest.onednn_cap_forbids_bfloat16)")
        for item in items:
            if "bfloat16" in item.keywords:
                item.add_marker(skip)


def pytest_configure(config):
    """Two logical CPU devices, so that multi-replica code runs on a CPU-only machine."""
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)


def pytest_xdist_auto_num_workers(config):
    """`-n auto` (setup.cfg): one worker per core, at most one per 6 GB of memory (a worker that runs
    the full-size tests holds a few GB)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    memory_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9
    return max(1, min(cores, int(memory_gb // 6)))


def pytest_sessionfinish(session):
    # A worker of pytest-xdist hands its measured figures to the controller, which prints them.
    if hasattr(session.config, "workeroutput"):
        session.config.workeroutput["report"] = list(REPORT)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    REPORT.extend(getattr(node, "workeroutput", {}).get("report", []))


def pytest_terminal_summary(terminalreporter):
    for line in REPORT:
        terminalreporter.write_line(line)

"""Choices that depend on the machine: TF32 off unless allowed, --kernels=auto, the warning for a
bfloat16 that would be emulated."""

import pytest
import tensorflow as tf

from pixelsnail_tf import cli, hardware
from pixelsnail_tf.models import build_model

NATIVE = {"avx512f", "avx512_bf16"}


@pytest.mark.parametrize("flags, environ, native", [
    (NATIVE, {}, True),
    ({"avx2", "amx_bf16"}, {}, True),
    ({"avx2", "fma"}, {}, False),
    (NATIVE, {"ONEDNN_MAX_CPU_ISA": "avx2"}, False),  # CI's cap: oneDNN stops below bfloat16
    (NATIVE, {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_BF16"}, True),
    (NATIVE, {"TF_ENABLE_ONEDNN_OPTS": "0"}, False),  # Eigen converts bfloat16 to float32 and back
    (None, {}, None),
])
def test_native_bfloat16_on_cpu(flags, environ, native):
    assert hardware.cpu_bfloat16_is_native(flags, environ) is native


def test_bfloat16_warning_only_where_it_is_emulated(monkeypatch, capsys):
    monkeypatch.setattr(hardware, "cpu_flags", lambda: NATIVE)
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS", raising=False)
    assert cli.model_options({"mixed_precision": "bfloat16"})["dtype"] == "mixed_bfloat16"
    assert capsys.readouterr().err == ""
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    cli.model_options({"mixed_precision": "bfloat16"})
    cli.model_options({"mixed_precision": "float32"})
    lines = capsys.readouterr().err.splitlines()
    assert lines == ["warning: this CPU computes bfloat16 by emulation (it needs AVX512_BF16 or AMX, and "
                     "oneDNN on): --mixed_precision=bfloat16 will likely be slower than float32"]


def test_auto_kernels_by_device(monkeypatch):
    assert cli.model_options({"kernels": "reference"})["kernels"] == "reference"
    monkeypatch.setattr(hardware, "gpus", lambda: [])
    assert cli.model_options({"kernels": "auto"})["kernels"] == "fast"
    monkeypatch.setattr(hardware, "gpus", lambda: ["a GPU"])
    assert cli.model_options({})["kernels"] == "reference"


def test_tf32_is_off_once_a_model_is_built_unless_allowed(tiny_config):
    enabled = tf.config.experimental.tensor_float_32_execution_enabled
    try:
        tf.config.experimental.enable_tensor_float_32_execution(True)  # TensorFlow's own default
        build_model(tiny_config)
        assert not enabled()
        build_model(tiny_config, **cli.model_options({"allow_tf32": True}))
        assert enabled()
        build_model(tiny_config, **cli.model_options({}))
        assert not enabled()
    finally:
        tf.config.experimental.enable_tensor_float_32_execution(False)

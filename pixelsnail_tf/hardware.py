"""What the machine computes natively, and the choices that follow from it.

- TF32: on NVIDIA GPUs since Ampere, TensorFlow computes float32 matmuls and convolutions with
  10-bit mantissas unless told not to; that breaks "float32 equals the original to 1e-5", so it is
  off unless asked for (`set_tf32`, called when a model is built).
- kernels "auto": the kernels measured fastest for the device (layers/kernels.py): on CPU "fast";
  on GPU "reference" (cuDNN's own convolutions) until a GPU measurement says otherwise.
- bfloat16: native on CPUs with AVX512_BF16 or AMX (through oneDNN) and on GPUs of compute
  capability 8.0 and up; elsewhere TensorFlow emulates it, often slower than float32. float16 is
  for GPUs (those without bfloat16 need it for mixed precision); on CPU it is emulated.
"""

import os

import tensorflow as tf

# oneDNN's instruction-set caps (ONEDNN_MAX_CPU_ISA) below the first one with bfloat16 instructions.
_ISA_WITHOUT_BF16 = ("SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE",
                     "AVX512_CORE_VNNI")
_BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def set_tf32(allowed):
    """TensorFloat-32 for float32 matmuls and convolutions on GPUs: a process-wide TensorFlow setting."""
    tf.config.experimental.enable_tensor_float_32_execution(bool(allowed))


def gpus():
    return tf.config.list_physical_devices("GPU")


def auto_kernels():
    """--kernels=auto: "reference" where there are GPUs, "fast" on CPU."""
    return "reference" if gpus() else "fast"


def cpu_flags():
    """The CPU's feature flags (Linux /proc/cpuinfo); None where they cannot be read."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return None


def cpu_bfloat16_is_native(flags, environ):
    """True when TensorFlow computes bfloat16 natively on a CPU with these feature flags under this
    environment: oneDNN on (TF_ENABLE_ONEDNN_OPTS), not capped below bfloat16 (ONEDNN_MAX_CPU_ISA), and
    the CPU has the instructions. None when the flags are unknown."""
    if environ.get("TF_ENABLE_ONEDNN_OPTS", "1").strip().lower() in ("0", "false"):
        return False
    if environ.get("ONEDNN_MAX_CPU_ISA", "ALL").strip().upper() in _ISA_WITHOUT_BF16:
        return False
    if flags is None:
        return None
    return any(flag in flags for flag in _BF16_CPU_FLAGS)


def precision_warning(precision):
    """One line when --mixed_precision=`precision` would be emulated on this machine, else None."""
    devices = gpus()
    if precision == "float16":
        return None if devices else ("float16 is for GPUs (those without bfloat16: V100, T4); TensorFlow "
                                     "emulates it on CPU: --mixed_precision=float16 will be slow here")
    if precision != "bfloat16":
        return None
    if devices:
        old = []
        for device in devices:
            capability = tf.config.experimental.get_device_details(device).get("compute_capability")
            if capability and tuple(capability) < (8, 0):
                old.append(f"{device.name} (compute capability {capability[0]}.{capability[1]})")
        if old:
            return (f"{', '.join(old)} has no native bfloat16: it will be slow; use "
                    f"--mixed_precision=float16 there")
        return None
    if cpu_bfloat16_is_native(cpu_flags(), os.environ) is False:
        return ("this CPU computes bfloat16 by emulation (it needs AVX512_BF16 or AMX, and oneDNN on): "
                "--mixed_precision=bfloat16 will likely be slower than float32")
    return None

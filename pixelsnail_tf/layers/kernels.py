"""How the layers compute: "fast" kernels (the default) or the "reference" ones, as the original.

The same math either way (tests/test_kernels.py, and the reference tests run with both):
- "reference": TensorFlow's own ops, one per step: tf.nn.conv2d, tf.nn.elu, tf.sigmoid, ...
- "fast": the 2x2 / 2x3 causal convolutions by Winograd F(2x2, k) (winograd.py), and the elementwise
  chains of the gated layers (nonlinearities, the gate) each compiled by XLA into one pass. TensorFlow
  runs every elementwise op as its own pass over memory, and bfloat16 ones slowly on CPU; the fused
  chains compute in float32 and return their input's dtype.
A SavedModel with fast kernels needs XLA JIT where it is served (export.py defaults to "reference").
"""

import tensorflow as tf

KERNELS = ("fast", "reference")


def check_kernels(kernels):
    if kernels not in KERNELS:
        raise ValueError(f"unknown kernels {kernels!r}; choose one of {', '.join(KERNELS)}")
    return kernels


def xla_fused(fn):
    """fn(*tensors) compiled by XLA into one pass: computed in float32, returned in the first
    input's dtype."""
    def fused(*tensors):
        return tf.cast(fn(*(tf.cast(t, tf.float32) for t in tensors)), tensors[0].dtype)
    fused.__name__ = f"fused_{fn.__name__}"
    return tf.function(fused, jit_compile=True)

"""How the layers compute: "fast" kernels (the default) or the "reference" ones, as the original.

The same math either way (tests/test_kernels.py, and the reference tests run with both):
- "reference": TensorFlow's own ops, one per step: tf.nn.conv2d, tf.nn.elu, tf.sigmoid, ...
- "fast": the 2x2 / 2x3 causal convolutions by Winograd F(2x2, k) (winograd.py), the nonlinearity
  and the causal padding before each computed inside its input transform; the other elementwise
  chains of the gated layers (nonlinearities, the gate) each compiled by XLA into one pass.
  TensorFlow runs every elementwise op as its own pass over memory, and bfloat16 ones slowly on CPU;
  the fused chains compute in float32 and return their input's dtype.
A SavedModel with fast kernels needs XLA JIT where it is served (export.py defaults to "reference").
"""

import logging

import tensorflow as tf

KERNELS = ("fast", "reference")
AUTO = "auto"  # the command-line choice of either by device (hardware.auto_kernels)


def check_kernels(kernels):
    if kernels not in KERNELS:
        raise ValueError(f"unknown kernels {kernels!r}; choose one of {', '.join(KERNELS)}")
    return kernels


class _ExpectedRetracing(logging.Filter):
    """Drops TensorFlow's "triggered tf.function retracing" warnings about the fused kernels below:
    they are traced once per shape and calling graph by design (every layer and image size calls
    them), which is what that warning counts."""

    def filter(self, record):
        return not ("triggered tf.function retracing" in record.getMessage()
                    and "xla_fused.<locals>" in record.getMessage())


tf.get_logger().addFilter(_ExpectedRetracing())


def xla_fused(fn):
    """fn(*tensors) compiled by XLA into one pass: computed in float32, returned (a tensor or a list
    of them) in the first input's dtype. Its gradient is compiled too and recomputes fn from the
    inputs, so that training keeps only the inputs (in their own dtype), not float32 intermediates.
    The result carries fn as `.fn`, so that a larger fused computation can include it."""
    def in_float32(tensors):
        return [tf.cast(t, tf.float32) for t in tensors]

    @tf.function(jit_compile=True)
    def forward(*tensors):
        return tf.nest.map_structure(lambda t: tf.cast(t, tensors[0].dtype), fn(*in_float32(tensors)))

    @tf.function(jit_compile=True)
    def backward(upstream, *tensors):
        inputs = in_float32(tensors)
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            outputs = tf.nest.flatten(fn(*inputs))
        grads = tape.gradient(outputs, inputs,
                              output_gradients=[tf.cast(u, tf.float32) for u in upstream])
        return [tf.cast(g, t.dtype) for g, t in zip(grads, tensors)]

    @tf.custom_gradient
    def fused(*tensors):
        return forward(*tensors), lambda *upstream: backward(list(upstream), *tensors)

    fused.fn = fn
    return fused

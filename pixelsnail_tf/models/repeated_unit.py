"""A unit of layers that a model repeats with the same structure (PixelSNAIL's blocks), run as one
function body for all its repeats.

Traced inline, every repeat adds its own copy of the unit's ops to the training step's graph, and
TensorFlow keeps state for every node of a graph it runs (its kernel): for the CIFAR config's step a
large part of its memory, whatever the batch (docs/speed.md has the figures). Here the unit
is traced once, on the first repeat's layers (the template), with every weight it reads taken from
the function's inputs (a Keras StatelessScope maps the template's variables to them), as a function
TensorFlow does not inline (`_noinline`): each repeat calls that one body with its own weights, and
the gradient is one backward body likewise. The same ops on the same values as inline.
"""

import keras
import tensorflow as tf


def _layers(layers):
    return [layer for layer in tf.nest.flatten(layers) if layer is not None]


def _variables(layers):
    return [v for layer in _layers(layers) for v in layer.variables]


class RepeatedUnit:
    """unit(layers, *tensors) = fn(layers, *tensors), for `layers` nested as `template` with weights
    of the same shapes in the same order; entries of `tensors` may be None (the same ones in every
    call). fn must read no state but the layers' weights and must not assign any (no data-dependent
    init, dropout only from seeds among the tensors). `recompute`: the gradient keeps only the
    inputs and runs the body again (tf.recompute_grad). Layers not yet built are called inline (their
    first call creates their weights)."""

    def __init__(self, fn, template, recompute=False):
        self._fn, self._template = fn, template
        self._variables = _variables(template)
        self._present = None  # which entries of `tensors` are given, fixed by the first call
        body = tf.function(self._stateless, autograph=False, experimental_attributes={"_noinline": True})
        self._call = tf.recompute_grad(body) if recompute else body

    def _stateless(self, *flat):
        weights, given = flat[:len(self._variables)], iter(flat[len(self._variables):])
        tensors = [next(given) if present else None for present in self._present]
        with keras.StatelessScope(state_mapping=list(zip(self._variables, weights))):
            return self._fn(self._template, *tensors)

    def __call__(self, layers, *tensors):
        if not all(layer.built for layer in _layers(layers)):
            return self._fn(layers, *tensors)
        variables = _variables(layers)
        if [v.shape for v in variables] != [v.shape for v in self._variables]:
            raise ValueError("a repeat of a unit must have its template's weights (shapes and order)")
        present = [t is not None for t in tensors]
        if self._present is None:
            self._present = present
        elif present != self._present:
            raise ValueError("a repeat of a unit must be given the inputs its first call was given")
        weights = [tf.convert_to_tensor(v) for v in variables]
        return self._call(*weights, *[t for t in tensors if t is not None])

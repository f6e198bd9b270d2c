"""Polyak (exponential moving) average of the model weights, as the original keeps it.

tf.train.ExponentialMovingAverage without num_updates: shadow -= (1 - decay) * (shadow - weight)
with 1 - decay computed in float32, no bias correction, shadows starting at the weights' values
when the average is created (after the data-dependent init in training).
"""

import contextlib

import tensorflow as tf


class PolyakAverage:
    """Shadow copies of `model.trainable_weights` (same order), updated by `update()`."""

    def __init__(self, model, decay=0.9995):
        self.decay = float(decay)
        self._weights = list(model.trainable_weights)
        self._variables = [w.value for w in self._weights]  # the tf.Variables behind Keras weights
        self._ema = tf.train.ExponentialMovingAverage(self.decay)
        with tf.init_scope():
            self._ema.apply(self._variables)
        self.shadows = [self._ema.average(v) for v in self._variables]

    def shadow(self, weight):
        """The average of one of the model's weights."""
        return self._ema.average(weight.value)

    def update(self):
        """One averaging step towards the current weights."""
        return self._ema.apply(self._variables)

    def copy_to_model(self):
        """Overwrites the model's weights with their averages."""
        for weight, shadow in zip(self._weights, self.shadows):
            weight.assign(shadow)

    @contextlib.contextmanager
    def swapped_in(self):
        """The model computes with averaged weights inside the block; raw weights come back after."""
        raw = [tf.identity(w.value) for w in self._weights]
        self.copy_to_model()
        try:
            yield
        finally:
            for weight, value in zip(self._weights, raw):
                weight.assign(value)

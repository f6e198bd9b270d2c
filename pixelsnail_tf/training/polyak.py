"""Polyak (exponential moving) average of the model weights, as the original keeps it.

The update of tf.train.ExponentialMovingAverage without num_updates, which the original uses:
shadow -= (shadow - weight) * (1 - decay), with 1 - decay computed in float32, no bias correction,
shadows starting at the weights' values when the average is created (after the data-dependent init
in training). Written out here because tf.train.ExponentialMovingAverage cannot update variables
of a tf.distribute strategy from a compiled step.
"""

import contextlib

import numpy as np
import tensorflow as tf


class PolyakAverage:
    """Shadow copies of `model.trainable_weights` (same order), updated by `update()`.

    Create it under the strategy scope of the model, if any: the shadows are placed like the weights.
    """

    def __init__(self, model, decay=0.9995):
        self.decay = float(decay)
        self.factor = np.float32(1.0) - np.float32(decay)  # float32 arithmetic, as the original
        self._weights = list(model.trainable_weights)
        self.shadows = [tf.Variable(w.value, trainable=False, name="ExponentialMovingAverage")
                        for w in self._weights]
        self._shadow_of = {id(w): s for w, s in zip(self._weights, self.shadows)}

    def shadow(self, weight):
        """The average of one of the model's weights."""
        return self._shadow_of[id(weight)]

    def update(self):
        """One averaging step towards the current weights (one weight after the other, as the
        optimizer's update: in a compiled step their temporaries are then never all alive at once)."""
        done = []
        for weight, shadow in zip(self._weights, self.shadows):
            with tf.control_dependencies(done):
                done = [shadow.assign_sub((shadow - weight.value) * self.factor, read_value=False)]

    def reset(self):
        """Every shadow back to its weight's current value (as at creation)."""
        for weight, shadow in zip(self._weights, self.shadows):
            shadow.assign(weight.value)

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

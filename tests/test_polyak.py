"""The Polyak average of the weights (training/polyak.py): tf.train.ExponentialMovingAverage's update
without num_updates, as the original keeps it; the averaged weights swapped in and out."""

import keras
import numpy as np
import tensorflow as tf

from pixelsnail_tf.training import PolyakAverage


def small_model():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.layers[0].kernel.assign(np.arange(6, dtype=np.float32).reshape(3, 2) / 7)
    return model


def test_updates_equal_tf_exponential_moving_average():
    """Three updates towards moving weights give TensorFlow's own average of the same weights to the bit."""
    model = small_model()
    average = PolyakAverage(model, decay=0.9)
    weights = model.trainable_weights
    reference = tf.train.ExponentialMovingAverage(decay=0.9)
    reference.apply([w.value for w in weights])
    for k in range(3):
        for w in weights:
            w.assign(w * 1.5 + 0.25 * (k + 1))
        average.update()
        reference.apply([w.value for w in weights])
        for w in weights:
            np.testing.assert_array_equal(average.shadow(w).numpy(), reference.average(w.value).numpy())


def test_swapped_in_computes_with_the_averages_and_gives_the_weights_back():
    model = small_model()
    average = PolyakAverage(model, decay=0.5)
    raw = [w.numpy() for w in model.trainable_weights]
    for w in model.trainable_weights:
        w.assign(w + 1.0)
    average.update()  # each average halfway from the raw weight to raw + 1
    moved = [w.numpy() for w in model.trainable_weights]
    with average.swapped_in():
        for w, r in zip(model.trainable_weights, raw):
            np.testing.assert_allclose(w.numpy(), r + 0.5, rtol=1e-6)
    for w, m in zip(model.trainable_weights, moved):
        np.testing.assert_array_equal(w.numpy(), m)
    average.reset()
    for w in model.trainable_weights:
        np.testing.assert_array_equal(average.shadow(w).numpy(), w.numpy())

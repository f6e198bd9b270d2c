"""The original Adam: one step from the reference bundle's gradients reproduces its state."""

import numpy as np
import pytest

from pixelsnail_tf import checkpoints
from pixelsnail_tf.models import PixelSNAIL
from pixelsnail_tf.models.base import weight_name
from pixelsnail_tf.training.optimizer import original_adam

pytestmark = pytest.mark.paths


@pytest.mark.parametrize("backprop_order", [False, True])
def test_one_step_equals_the_original(tiny_config, tiny_reference, backprop_order):
    model = PixelSNAIL(tiny_config)
    model.build((None, 8, 8, 3))
    names = {id(e.variable): e.name for e in checkpoints.tf1_name_map(model)}
    for w in model.trainable_weights:
        w.assign(tiny_reference["params_after_init/" + names[id(w)]])
    adam = original_adam(model)
    grads = [tiny_reference["grads_step1/" + names[id(w)]] for w in model.trainable_weights]
    adam.apply_gradients(grads, np.float32(tiny_reference["lr"][0]), backprop_order=backprop_order)
    assert float(adam.t.numpy()) == float(tiny_reference["adam_t_step1"]) == 2.0
    for w in model.trainable_weights:
        name, key = names[id(w)], weight_name(w)
        np.testing.assert_allclose(w.numpy(), tiny_reference["params_step1/" + name], atol=1e-6, rtol=0)
        np.testing.assert_allclose(adam.first_moment[key].numpy(),
                                   tiny_reference["adam_mom1_step1/" + name], atol=1e-6, rtol=1e-6)
        np.testing.assert_allclose(adam.second_moment[key].numpy(),
                                   tiny_reference["adam_mom2_step1/" + name], atol=1e-6, rtol=1e-6)

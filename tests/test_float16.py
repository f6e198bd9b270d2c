"""float16 mixed precision's training: a dynamic loss scale that skips steps whose gradients overflow,
as Keras' LossScaleOptimizer (its bits/dim and samplers: test_mixed_precision.py)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from pixelsnail_tf.runs import RunConfig, fit
from pixelsnail_tf.training import TrainConfig, build_trainer
from pixelsnail_tf.training.optimizer import DynamicLossScale

pytestmark = pytest.mark.paths

MIXED = "mixed_float16"


def test_loss_scale_follows_keras_rules():
    """Halved and its count reset by a non-finite step, doubled after growth_steps finite ones."""
    scale = DynamicLossScale(initial_scale=8.0, growth_steps=3)
    history = []
    for finite in (True, True, False, True, True, True, True):
        scale.update(tf.constant(finite))
        history.append((float(scale.scale.numpy()), int(scale.finite_steps.numpy())))
    assert history == [(8, 1), (8, 2), (4, 0), (4, 1), (4, 2), (8, 0), (8, 1)]
    # a summed loss of 768 terms is multiplied by scale / 2^10: the mean loss's scale, exactly
    assert float(scale.multiplier(tf.constant(768)).numpy()) == 8.0 / 1024


@pytest.mark.slow
def test_gradients_are_unscaled(tiny_config, tiny_reference):
    """The applied gradients do not depend on the loss scale (while nothing overflows) and are the
    float32 ones to float16 accuracy."""
    keras.utils.set_random_seed(0)  # the initial weights: the same in every run, whatever ran before
    trainer = build_trainer(tiny_config, TrainConfig(batch_size=4), dtype=MIXED)
    trainer.initialize(tiny_reference["x_init_u8"])
    reference = build_trainer(tiny_config, TrainConfig(batch_size=4))
    for w, v in zip(reference.model.trainable_weights, trainer.model.trainable_weights):
        w.assign(v)
    images = tf.constant(tiny_reference["x_train_u8"][0])
    _, expected = reference.loss_and_gradients(images, None, reference.step_seed(1))
    for scale in (2.0 ** 15, 2.0 ** 5):
        trainer.loss_scale.scale.assign(scale)
        _, grads = trainer.loss_and_gradients(images, None, trainer.step_seed(1))
        # float16 gradients of this model differ from float32 ones by 0.5-0.9% of each tensor's norm
        # (measured over 4 initial draws; single entries by up to 2.3% of the tensor's largest): a scale
        # not divided out, or applied twice, would be off by powers of two
        for g, e in zip(grads, expected):
            assert g.dtype == tf.float32
            assert np.linalg.norm(g.numpy() - e.numpy()) <= 2e-2 * np.linalg.norm(e.numpy())


def state(trainer):
    return [v.numpy() for v in (list(trainer.model.trainable_weights) + list(trainer.ema.shadows)
                                + list(trainer.optimizer.first_moment.values()))]


@pytest.mark.slow
def test_overflowing_step_is_skipped_and_the_next_one_applied(tiny_config, tiny_reference):
    trainer = build_trainer(tiny_config, TrainConfig(batch_size=4), dtype=MIXED)
    trainer.initialize(tiny_reference["x_init_u8"])
    trainer.loss_scale.scale.assign(2.0 ** 60)  # the scaled gradients overflow float16
    before = state(trainer)
    loss = float(trainer.train_step(tiny_reference["x_train_u8"][0]))
    assert np.isfinite(loss) and trainer.step == 0
    assert float(trainer.loss_scale.scale.numpy()) == 2.0 ** 59
    for b, a in zip(before, state(trainer)):
        np.testing.assert_array_equal(a, b)  # weights, averages, moments untouched
    trainer.loss_scale.scale.assign(2.0 ** 15)
    trainer.train_step(tiny_reference["x_train_u8"][0])
    assert trainer.step == 1 and int(trainer.loss_scale.finite_steps.numpy()) == 1
    assert all(np.all(np.isfinite(a)) for a in state(trainer))
    assert any(np.any(a != b) for a, b in zip(state(trainer), before))


@pytest.mark.slow
def test_training_skips_overflowing_steps_goes_on_and_resumes(tmp_path, tiny_config, tiny_reference):
    """fit: steps skipped while the scale comes down, the run goes on; the scale is saved and resumed;
    a float32 run resumes from the float16 run's checkpoint and the reverse."""
    data = (tiny_reference["x_train_u8"].reshape(-1, 8, 8, 3), None)
    test = (tiny_reference["x_test_u8"], None)
    run = RunConfig(save_dir=str(tmp_path / "run"), max_epochs=2, save_interval=1, num_samples=2,
                    test_batch_size=4, shuffle=False)
    trainer = build_trainer(tiny_config, TrainConfig(batch_size=4), dtype=MIXED)
    trainer.loss_scale.scale.assign(2.0 ** 20)

    def skipped(lines):
        return sum(int(line.split(": ")[1].split()[0]) for line in lines
                   if "skipped for non-finite float16 gradients" in line)

    lines = []
    fit(trainer, data, test, run, log=lines.append)
    count = skipped(lines)
    assert 0 < count < 6 and trainer.step == 6 - count
    scale = float(trainer.loss_scale.scale.numpy())
    assert scale == 2.0 ** (20 - count)
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(run.save_dir))
    assert reader.get_tensor("loss_scale/scale/.ATTRIBUTES/VARIABLE_VALUE") == scale

    resumed, resumed_lines = build_trainer(tiny_config, TrainConfig(batch_size=4), dtype=MIXED), []
    fit(resumed, data, test, RunConfig(**{**run.__dict__, "max_epochs": 3}), log=resumed_lines.append)
    # The resumed scale may still overflow (these gradients sit near float16's limit at 2^19 or so, and
    # which steps overflow varies from run to run): each skip halves it. A scale not resumed (2^15)
    # would not end at scale / 2^again.
    again = skipped(resumed_lines)
    assert resumed.step == 9 - count - again
    assert float(resumed.loss_scale.scale.numpy()) == scale / 2.0 ** again

    as_float32 = build_trainer(tiny_config, TrainConfig(batch_size=4))
    fit(as_float32, data, test, RunConfig(**{**run.__dict__, "max_epochs": 4}), log=lines.append)
    back = build_trainer(tiny_config, TrainConfig(batch_size=4), dtype=MIXED)
    fit(back, data, test, RunConfig(**{**run.__dict__, "max_epochs": 5}), log=lines.append)
    assert back.step == 15 - count - again  # the float32 checkpoint has no scale: a new one, 2^15, no skips
    assert float(back.loss_scale.scale.numpy()) == 2.0 ** 15


"""The training step against the original code's own steps (fixtures/tiny, fixtures/pxpp_tiny), on 1 and 2
replicas."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from conftest import TINY
from pixelsnail_tf import checkpoints
from pixelsnail_tf.training import TrainConfig, Trainer

pytestmark = pytest.mark.paths

# The likelihood's gradient is ill-conditioned (differences of nearby logistic CDFs): network outputs
# that differ from the original's by float32 rounding (~1e-7 relative: other kernels, summation
# orders) give gradients that differ by up to ~2e-5 of each tensor's largest entry; a float64
# computation puts ours and the original's equally far from the exact gradient. The Adam moments
# inherit that; the weights move by lr * v / sqrt(mg + 1e-6), where a near-zero gradient passes its
# absolute error through almost unscaled (the epsilon dominates): after 3 steps of size lr = 1e-3,
# about 1 weight in 10^4 differs by more than 1e-6 (at most 2.6e-5 seen). The update itself is exact
# given the original's gradients (test_optimizer.py), and so are the likelihood's gradients given its
# inputs (test_logistic_mixture.py). The second moment is quadratic in the gradients: twice their
# relative error.
GRADIENT_RTOL = 1e-4
# At a near-zero gradient g the update lr * g / sqrt(g^2 + 1e-6) passes a gradient error through with
# gain lr / sqrt(1e-6) = 1, and gradients agree to GRADIENT_RTOL of their tensor's largest entry: that
# is 1e-4 * 0.5 for the tiny bundle's smallest tensors but 1e-4 * 7,000 for pxpp's upsampling kernels,
# enough to flip the sign of a gradient of 6e-3 (seen): the update, at most lr in size, then differs
# by up to 2 lr. Only a few values come near that bound (CLOSE_FRACTION): 1.3e-3 seen (pxpp).
ATOL = 2 * 1e-3
# The Adam moments hold gradients, within GRADIENT_RTOL of the original's (the second moment: twice).
MOMENT_RTOL = 3e-4
CLOSE = 1e-6
CLOSE_FRACTION = 1e-3  # weights (and averages) farther than CLOSE from the original's, at most


def bundle_train_config(tiny_reference):
    return TrainConfig(learning_rate=1e-3, lr_decay=0.999998, polyak_decay=0.9995, batch_size=4)


def two_cpu_devices():
    cpus = tf.config.list_logical_devices("CPU")
    if len(cpus) < 2:
        pytest.skip("needs 2 logical CPU devices (set up before TensorFlow initializes)")
    return [c.name for c in cpus[:2]]


def start_from_bundle(trainer, directory=TINY):
    """The bundle's after-init checkpoint: params, EMA, zero moments, t = 1."""
    prefix = str(directory / "after_init" / "model.ckpt")
    entries, tensors, t = checkpoints.read_tf1_checkpoint(trainer.model, prefix)
    with trainer.strategy.scope():
        for e in entries:
            e.variable.assign(tensors[e.name]["raw"])
            trainer.ema.shadow(e.variable).assign(tensors[e.name]["ema"])
    assert t == 1.0 and trainer.step == 0
    return entries


def assert_state(trainer, entries, tiny_reference, suffix):
    names = {id(e.variable): e.name for e in entries}
    far = total = 0
    for w in trainer.model.trainable_weights:
        name = names[id(w)]
        key = w.path.split("/", 1)[1]
        for actual, expected in ((w.numpy(), tiny_reference[f"params_{suffix}/{name}"]),
                                 (trainer.ema.shadow(w).numpy(), tiny_reference[f"ema_{suffix}/{name}"])):
            np.testing.assert_allclose(actual, expected, atol=ATOL, rtol=0)
            far += int(np.sum(np.abs(actual - expected) > CLOSE))
            total += expected.size
        for moment, slots, power in (("mom1", trainer.optimizer.first_moment, 1),
                                     ("mom2", trainer.optimizer.second_moment, 2)):
            expected = tiny_reference[f"adam_{moment}_{suffix}/{name}"]
            np.testing.assert_allclose(slots[key].numpy(), expected, rtol=0,
                                       atol=power * MOMENT_RTOL * np.abs(expected).max())
    assert far <= CLOSE_FRACTION * total, f"{far} of {total} values differ by more than {CLOSE}"


def test_learning_rate_schedule(tiny_reference):
    config = bundle_train_config(tiny_reference)
    lrs = [config.learning_rate_at(k) for k in (1, 2, 3)]
    np.testing.assert_array_equal(np.float32(lrs), np.float32(tiny_reference["lr"]))


@pytest.mark.parametrize("kernels", ["fast", "reference"])
def test_gradients_equal_the_original(bundle, kernels):
    reference = bundle.reference
    trainer = Trainer(bundle.config, bundle_train_config(reference), kernels=kernels)
    entries = start_from_bundle(trainer, bundle.directory)
    loss, grads = trainer._replica_loss_and_gradients(tf.constant(reference["x_train_u8"][0]), None,
                                                      trainer._seed(1))
    np.testing.assert_allclose(float(loss), reference["train_loss"][0], rtol=1e-6)
    names = {id(e.variable): e.name for e in entries}
    for w, g in zip(trainer.model.trainable_weights, grads):
        expected = reference["grads_step1/" + names[id(w)]]
        np.testing.assert_allclose(g.numpy(), expected, rtol=0, atol=GRADIENT_RTOL * np.abs(expected).max())


def load_state(trainer, entries, reference, suffix):
    """The original's state after a step: weights, averages, Adam moments and t."""
    names = {id(e.variable): e.name for e in entries}
    for w in trainer.model.trainable_weights:
        name, key = names[id(w)], w.path.split("/", 1)[1]
        w.assign(reference[f"params_{suffix}/{name}"])
        trainer.ema.shadow(w).assign(reference[f"ema_{suffix}/{name}"])
        trainer.optimizer.first_moment[key].assign(reference[f"adam_mom1_{suffix}/{name}"])
        trainer.optimizer.second_moment[key].assign(reference[f"adam_mom2_{suffix}/{name}"])
    trainer.optimizer.t.assign(float(reference[f"adam_t_{suffix}"]))


def test_steps_reproduce_the_original(bundle):
    """Each step from the original's state before it: step 1 from the init, steps 2 and 3 from the
    original's state after step 1. (Run on from our own step 1, the few updates that ATOL allows to
    flip feed pxpp's later gradients: 13% of its weights then end more than 1e-6 away.)"""
    reference = bundle.reference
    trainer = Trainer(bundle.config, bundle_train_config(reference))
    entries = start_from_bundle(trainer, bundle.directory)
    losses = [float(trainer.train_step(reference["x_train_u8"][0]).numpy())]
    assert_state(trainer, entries, reference, "step1")
    load_state(trainer, entries, reference, "step1")
    assert trainer.step == 1
    losses += [float(trainer.train_step(reference["x_train_u8"][k]).numpy()) for k in (1, 2)]
    np.testing.assert_allclose(losses, reference["train_loss"], rtol=1e-6)
    assert trainer.step == 3 and float(trainer.optimizer.t.numpy()) == float(reference["adam_t_final"])
    assert_state(trainer, entries, reference, "final")


def test_two_replicas_equal_one_on_the_same_global_batch(tiny_config, tiny_reference):
    devices = two_cpu_devices()
    strategy = tf.distribute.MirroredStrategy(devices)
    trainer = Trainer(tiny_config, bundle_train_config(tiny_reference), strategy)
    entries = start_from_bundle(trainer)
    losses = []
    for k in range(3):
        batch = tf.data.Dataset.from_tensor_slices(tiny_reference["x_train_u8"][k]).batch(4)
        (images,) = list(strategy.experimental_distribute_dataset(batch))
        assert len(images.values) == 2  # 2 images on each replica
        losses.append(float(trainer.train_step(images).numpy()))
    np.testing.assert_allclose(losses, tiny_reference["train_loss"], rtol=1e-6)
    assert_state(trainer, entries, tiny_reference, "final")


@pytest.mark.parametrize("replicas", [1, 2])
def test_accumulated_micro_batches_equal_one_batch(tiny_config, tiny_reference, replicas):
    """Gradient accumulation: the bundle's batches of 4 as micro-batches (2 x 2 on one replica, 2 x 1 on
    each of two) reproduce the original's three steps on the whole batch; Adam's counter and the average
    advance once per optimizer step."""
    strategy = tf.distribute.MirroredStrategy(two_cpu_devices()[:replicas])
    config = dataclasses.replace(bundle_train_config(tiny_reference), batch_size=2 // replicas,
                                 accum_steps=2)
    assert config.images_per_step(replicas) == 4
    trainer = Trainer(tiny_config, config, strategy)
    entries = start_from_bundle(trainer)
    losses = []
    for k in range(3):
        batch = tf.data.Dataset.from_tensor_slices(tiny_reference["x_train_u8"][k]).batch(4)
        (images,) = list(strategy.experimental_distribute_dataset(batch))
        losses.append(float(trainer.train_step(images).numpy()))
    np.testing.assert_allclose(losses, tiny_reference["train_loss"], rtol=1e-6)
    assert trainer.step == 3
    assert_state(trainer, entries, tiny_reference, "final")


def test_dropout_masks_follow_seed_step_and_replica(tiny_config, tiny_reference):
    """The masks are a function of (seed, step, replica) alone: the same (seed, step) gives the same
    loss (what makes a resumed run equal an uninterrupted one: test_run_folder), another seed or step
    another, and the two replicas of a step draw different masks."""
    strategy = tf.distribute.MirroredStrategy(two_cpu_devices())
    trainer = Trainer(tiny_config.replace(dropout_p=0.5), bundle_train_config(tiny_reference), strategy,
                      seed=3)
    start_from_bundle(trainer)
    images = tiny_reference["x_train_u8"][0][:2]
    batch = tf.data.Dataset.from_tensor_slices(np.concatenate([images, images])).batch(4)
    (distributed,) = list(strategy.experimental_distribute_dataset(batch))
    replica_losses = tf.function(lambda seed: strategy.run(trainer._replica_loss_and_gradients,
                                                           (distributed, None, seed))[0])

    def losses(seed, step):
        return [float(v) for v in strategy.experimental_local_results(
            replica_losses(tf.constant([seed, step], tf.int64)))]

    first = losses(3, 1)
    assert trainer._seed(1).numpy().tolist() == [3, 1]
    assert first[0] != first[1]  # the same images on both replicas, other masks
    assert losses(3, 1) == first
    assert losses(4, 1) != first and losses(3, 2) != first

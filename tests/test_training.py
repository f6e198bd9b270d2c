"""The training step against the original code's own steps (fixtures/tiny, fixtures/pxpp_tiny), on 1 and 2
replicas."""

import dataclasses
import types

import numpy as np
import pytest
import tensorflow as tf

from conftest import TINY, small_config
from pixelsnail_tf import checkpoints
from pixelsnail_tf.models import build_model
from pixelsnail_tf.training import TrainConfig, Trainer, build_trainer, original_adam, worker_count

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


@pytest.mark.slow
@pytest.mark.parametrize("kernels", ["fast", "reference"])
def test_gradients_equal_the_original(bundle, kernels):
    reference = bundle.reference
    trainer = build_trainer(bundle.config, bundle_train_config(reference), kernels=kernels)
    entries = start_from_bundle(trainer, bundle.directory)
    loss, grads = trainer.loss_and_gradients(tf.constant(reference["x_train_u8"][0]), None,
                                                      trainer.step_seed(1))
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


@pytest.mark.slow
@pytest.mark.parametrize("recompute", [False, True])
def test_steps_reproduce_the_original(bundle, recompute):
    """Each step from the original's state before it: step 1 from the init, steps 2 and 3 from the
    original's state after step 1. (Run on from our own step 1, the few updates that ATOL allows to
    flip feed pxpp's later gradients: 13% of its weights then end more than 1e-6 away.)"""
    reference = bundle.reference
    trainer = build_trainer(bundle.config, bundle_train_config(reference), recompute=recompute)
    entries = start_from_bundle(trainer, bundle.directory)
    losses = [float(trainer.train_step(reference["x_train_u8"][0]).numpy())]
    assert_state(trainer, entries, reference, "step1")
    load_state(trainer, entries, reference, "step1")
    assert trainer.step == 1
    losses += [float(trainer.train_step(reference["x_train_u8"][k]).numpy()) for k in (1, 2)]
    np.testing.assert_allclose(losses, reference["train_loss"], rtol=1e-6)
    assert trainer.step == 3 and float(trainer.optimizer.t.numpy()) == float(reference["adam_t_final"])
    assert_state(trainer, entries, reference, "final")


@pytest.mark.slow
@pytest.mark.parametrize("model", ["h12_noup_smallkey", "model", "pxpp"])
def test_recomputed_gradients_equal_the_plain_ones(model):
    """With recompute, the backward pass computes each unit again and gets the same gradients, dropout
    included: its masks come from seeds drawn outside the unit. In float64 (reference kernels), so
    that both are exact to ~1e-7 (the attention softmax and the head stay float32) and any real
    difference would show; the loss is a fixed linear function of the mixture parameters (the
    likelihood's own gradient is ill-conditioned: GRADIENT_RTOL, which
    test_steps_reproduce_the_original covers with recompute)."""
    config = small_config(model, dropout_p=0.5)
    x = tf.constant(np.random.default_rng(0).uniform(-1, 1, (2, 8, 8, 3)), tf.float32)
    upstream = tf.constant(np.random.default_rng(1).normal(size=(2, 8, 8, 10 * config.nr_logistic_mix)),
                           tf.float32)
    plain = build_model(config, kernels="reference", dtype="float64")
    plain.initialize(x, dropout_seed=tf.constant([3, 0], tf.int64))
    gradients, calls = [], []
    for recompute in (False, True):
        model = plain if not recompute else build_model(config, kernels="reference", dtype="float64",
                                                        recompute=True)
        if recompute:
            model.build(None)
            for w, value in zip(model.weights, plain.weights):
                w.assign(value)
        # PixelCNN++'s first gated layer, traced once more to be recomputed (PixelSNAIL's blocks are
        # one body, traced once either way: test_repeated_unit.py finds the recomputation in the graph)
        first_layer = model.up[0][0][1] if model.architecture == "pixelcnn_pp" else model.ul_resnets[0][0]
        traced = []
        original_call = first_layer.call
        first_layer.call = lambda *a, **k: traced.append(1) or original_call(*a, **k)

        @tf.function
        def grads(x, model=model):
            with tf.GradientTape() as tape:
                params = model(x, training=True, dropout_seed=tf.constant([3, 1], tf.int64))
                loss = tf.reduce_sum(params * upstream)
            return tape.gradient(loss, model.trainable_weights)

        gradients.append([g.numpy() for g in grads(x)])
        calls.append(len(traced))
    assert calls == ([1, 2] if model.architecture == "pixelcnn_pp" else [1, 1])
    for a, b in zip(*gradients):
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-6 * np.abs(a).max())


@pytest.mark.slow
@pytest.mark.parametrize("recompute", [False, True])
def test_two_replicas_equal_one_on_the_same_global_batch(tiny_config, tiny_reference, recompute):
    """The original's three steps on two replicas (recomputed: each replica calls the blocks' one body
    with the mirrored weights)."""
    devices = two_cpu_devices()
    strategy = tf.distribute.MirroredStrategy(devices)
    trainer = build_trainer(tiny_config, bundle_train_config(tiny_reference), strategy, recompute=recompute)
    entries = start_from_bundle(trainer)
    losses = []
    for k in range(3):
        batch = tf.data.Dataset.from_tensor_slices(tiny_reference["x_train_u8"][k]).batch(4)
        (images,) = list(strategy.experimental_distribute_dataset(batch))
        assert len(images.values) == 2  # 2 images on each replica
        losses.append(float(trainer.train_step(images).numpy()))
    np.testing.assert_allclose(losses, tiny_reference["train_loss"], rtol=1e-6)
    assert_state(trainer, entries, tiny_reference, "final")


@pytest.mark.slow
@pytest.mark.parametrize("replicas", [1, 2])
def test_accumulated_micro_batches_equal_one_batch(tiny_config, tiny_reference, replicas):
    """Gradient accumulation: the bundle's batches of 4 as micro-batches (2 x 2 on one replica, 2 x 1 on
    each of two) reproduce the original's three steps on the whole batch; Adam's counter and the average
    advance once per optimizer step."""
    strategy = tf.distribute.MirroredStrategy(two_cpu_devices()[:replicas])
    config = dataclasses.replace(bundle_train_config(tiny_reference), batch_size=2 // replicas,
                                 accum_steps=2)
    assert config.images_per_step(replicas) == 4
    trainer = build_trainer(tiny_config, config, strategy)
    entries = start_from_bundle(trainer)
    losses = []
    for k in range(3):
        batch = tf.data.Dataset.from_tensor_slices(tiny_reference["x_train_u8"][k]).batch(4)
        (images,) = list(strategy.experimental_distribute_dataset(batch))
        losses.append(float(trainer.train_step(images).numpy()))
    np.testing.assert_allclose(losses, tiny_reference["train_loss"], rtol=1e-6)
    assert trainer.step == 3
    assert_state(trainer, entries, tiny_reference, "final")


@pytest.mark.slow
def test_workers_average_their_gradients_as_the_original(tiny_config, tiny_reference):
    """With several workers (the original's MPI processes) the summed gradients are divided by their
    number: after the first step Adam's first moment, 0.05 g, is half the original's single-process
    one with 2 workers; with worker_gradients="sum" it is the original's."""
    for semantics, share in (("mean", 0.5), ("sum", 1.0)):
        trainer = build_trainer(tiny_config, dataclasses.replace(bundle_train_config(tiny_reference),
                                                           worker_gradients=semantics))
        assert trainer.workers == 1
        trainer.workers = 2  # as worker_count gives for a TF_CONFIG cluster of two
        entries = start_from_bundle(trainer)
        trainer.train_step(tiny_reference["x_train_u8"][0])
        names = {id(e.variable): e.name for e in entries}
        for w in trainer.model.trainable_weights:
            expected = share * tiny_reference[f"adam_mom1_step1/{names[id(w)]}"]
            actual = trainer.optimizer.first_moment[w.path.split("/", 1)[1]].numpy()
            np.testing.assert_allclose(actual, expected, rtol=0,
                                       atol=MOMENT_RTOL * np.abs(expected).max() + 1e-12)


def test_worker_count_from_the_cluster():
    def strategy(cluster, task_type="worker"):
        resolver = types.SimpleNamespace(task_type=task_type,
                                         cluster_spec=lambda: tf.train.ClusterSpec(cluster))
        return types.SimpleNamespace(cluster_resolver=resolver)

    assert worker_count(strategy({"worker": ["a:1", "b:1"]})) == 2
    assert worker_count(strategy({"chief": ["c:1"], "worker": ["a:1", "b:1"], "ps": ["p:1"]})) == 3
    assert worker_count(strategy({}, task_type=None)) == 1
    assert worker_count(tf.distribute.get_strategy()) == 1


@pytest.mark.slow
def test_dropout_masks_follow_seed_step_and_replica(tiny_config, tiny_reference):
    """The masks are a function of (seed, step, replica) alone: the same (seed, step) gives the same
    loss (what makes a resumed run equal an uninterrupted one: test_run_folder), another seed or step
    another, and the two replicas of a step draw different masks."""
    strategy = tf.distribute.MirroredStrategy(two_cpu_devices())
    trainer = build_trainer(tiny_config.replace(dropout_p=0.5), bundle_train_config(tiny_reference), strategy,
                      seed=3)
    start_from_bundle(trainer)
    images = tiny_reference["x_train_u8"][0][:2]
    batch = tf.data.Dataset.from_tensor_slices(np.concatenate([images, images])).batch(4)
    (distributed,) = list(strategy.experimental_distribute_dataset(batch))
    replica_losses = tf.function(lambda seed: strategy.run(trainer.loss_and_gradients,
                                                           (distributed, None, seed))[0])

    def losses(seed, step):
        return [float(v) for v in strategy.experimental_local_results(
            replica_losses(tf.constant([seed, step], tf.int64)))]

    first = losses(3, 1)
    assert trainer.step_seed(1).numpy().tolist() == [3, 1]
    assert first[0] != first[1]  # the same images on both replicas, other masks
    assert losses(3, 1) == first
    assert losses(4, 1) != first and losses(3, 2) != first


def test_the_trainer_is_given_its_model_and_optimizer(tiny_config):
    """Trainer(model, optimizer, ...) trains what it is given: a model and optimizer of the caller's
    making, built under the strategy's scope; anything else is refused with one line."""
    strategy = tf.distribute.MirroredStrategy(two_cpu_devices())
    config = bundle_train_config(None)
    with strategy.scope():
        model = build_model(tiny_config)
        model.build(None)
        optimizer = original_adam(model)
    trainer = Trainer(model, optimizer, config, strategy)
    assert trainer.model is model and trainer.optimizer is optimizer and trainer.step == 0
    outside = build_model(tiny_config)
    outside.build(None)
    other = build_model(tiny_config)
    other.build(None)
    for args, message in [((build_model(tiny_config), optimizer), "needs a built model"),
                          ((outside, original_adam(outside)), "not created under the strategy's scope"),
                          ((model, original_adam(other)), "does not update this model's trainable weights")]:
        with pytest.raises(ValueError, match=message) as error:
            Trainer(*args, config, strategy)
        assert "\n" not in str(error.value)


@pytest.mark.slow
def test_the_average_moves_towards_the_weights_before_the_update(tiny_config, tiny_reference):
    """The Polyak average is updated first, then Adam (the order the original's reference data was made
    with): after a step each average is shadow - (shadow - w) * (1 - decay) of the weight w *before* the
    step. With decay 0.5 and learning rate 0.1 the other order is half a step of the weights away (up to
    0.05), where float32 rounding of one update is ~1e-7: a test that tells the two orders apart."""
    trainer = build_trainer(tiny_config, TrainConfig(learning_rate=0.1, polyak_decay=0.5, batch_size=4))
    start_from_bundle(trainer)
    weights = trainer.model.trainable_weights
    for w in weights:  # averages away from the weights, so that both terms of the update count
        trainer.ema.shadow(w).assign(w.numpy() + 0.01)
    before = [w.numpy() for w in weights]
    shadows = [trainer.ema.shadow(w).numpy() for w in weights]
    trainer.train_step(tiny_reference["x_train_u8"][0])
    half = np.float32(0.5)
    gap = 0.0
    for w, w0, s0 in zip(weights, before, shadows):
        np.testing.assert_allclose(trainer.ema.shadow(w).numpy(), s0 - (s0 - w0) * half, rtol=1e-6, atol=1e-7)
        gap = max(gap, float(np.abs((s0 - (s0 - w.numpy()) * half) - (s0 - (s0 - w0) * half)).max()))
    assert gap > 1e-2  # what the average after the update would have been instead

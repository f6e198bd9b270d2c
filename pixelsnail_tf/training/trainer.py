"""Training with the original's recipe, a step at a time (Trainer), on a tf.distribute strategy.

Data-dependent init, then per step summed-nats loss, gradients
summed over replicas (over workers: averaged, as the original), Polyak average, the original
Adam. Order within a step (fixed here; the original left the EMA and Adam updates unordered in its
train.py, and its reference data was made this way):
  1. loss and gradients at the current weights (dropout on), per replica, summed over replicas
     (with accum_steps = K: each replica's images in K micro-batches, one after the other, their
     gradients summed: the gradient of the whole batch's summed loss, in 1/K of the memory);
  2. the Polyak average moves towards the weights *before* this step's update;
  3. the original Adam updates the weights with lr = learning_rate * lr_decay**step (step from 1).
Under float16 (dtype "mixed_float16") the loss is scaled dynamically (optimizer.DynamicLossScale):
a step with non-finite gradients does neither 2 nor 3 and halves the scale.
"""

import dataclasses
import os

import tensorflow as tf

from pixelsnail_tf.models import build_model
from pixelsnail_tf.training.optimizer import DynamicLossScale, all_finite, original_adam
from pixelsnail_tf.training.polyak import PolyakAverage


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """The original train.py's optimization flags, same names and defaults (the run's length,
    checkpoints and seed are RunConfig's)."""

    learning_rate: float = 1e-3
    lr_decay: float = 0.999998
    polyak_decay: float = 0.9995
    batch_size: int = 8  # per replica and micro-batch, as the original's per-GPU batch
    init_batch_size: int = 8
    accum_steps: int = 1  # micro-batches per optimizer step (gradient accumulation)
    # Across the workers of a multi-worker run (TF_CONFIG): "mean", as the original (each MPI process
    # summed over its GPUs, then the processes averaged), or "sum" over every replica. The scale of
    # the gradients matters through Adam's epsilon.
    worker_gradients: str = "mean"

    def __post_init__(self):
        if self.accum_steps < 1:
            raise ValueError(f"accum_steps must be >= 1, got {self.accum_steps}")
        if self.worker_gradients not in ("mean", "sum"):
            raise ValueError(f"worker_gradients must be mean or sum, got {self.worker_gradients!r}")

    def images_per_step(self, replicas):
        """Images of one optimizer step over all replicas and micro-batches (the global batch)."""
        return self.batch_size * self.accum_steps * replicas

    def learning_rate_at(self, step):
        """The rate step `step` (1-based) uses: the original decays it before every step."""
        return self.learning_rate * self.lr_decay ** step


class Trainer:
    """A model, its Polyak average and its optimizer's state, trained a step at a time on `strategy`.

    The caller builds the model and the optimizer under the strategy's scope (`build_trainer` does, from
    configs); the Trainer adds the average (and, for a float16 model, the dynamic loss scale).
    """

    def __init__(self, model, optimizer, config, strategy=None, seed=0):
        """model: a built ImageModel; optimizer: optimizer.original_adam(model) (or any OriginalAdam over
        the model's trainable weights, in their order); config: TrainConfig. Dropout masks are a function
        of (seed, step, replica): a resumed run draws those of an uninterrupted one."""
        self.config = config
        self.seed = seed
        self.strategy = strategy or tf.distribute.get_strategy()
        if not model.built:
            raise ValueError("the Trainer needs a built model (model.build(None) creates its weights)")
        if not self.strategy.extended.variable_created_in_scope(model.trainable_weights[0].value):
            raise ValueError("the model's weights were not created under the strategy's scope: build the "
                             "model and its optimizer inside `with strategy.scope():`")
        if [id(v) for v in optimizer.updated_variables] != [id(w.value) for w in model.trainable_weights]:
            raise ValueError("the optimizer does not update this model's trainable weights (make it with "
                             "original_adam(model))")
        self.model, self.optimizer = model, optimizer
        with self.strategy.scope():
            self.ema = PolyakAverage(model, config.polyak_decay)
            self.loss_scale = DynamicLossScale() if model.compute_dtype == "float16" else None
        self.workers = worker_count(self.strategy)
        self._step = tf.function(self._distributed_step)

    @property
    def step(self):
        """Training steps done so far (the original Adam's counter t starts at 1)."""
        return int(self.optimizer.t.numpy()) - 1

    def initialize(self, images, labels=None):
        """The original's data-dependent init on the whole init batch; the average starts there."""
        with self.strategy.scope():
            self.model.initialize(images, labels, dropout_seed=self.step_seed(0))
            self.ema.reset()

    def step_seed(self, step):
        """The seed [2] of step `step`'s dropout masks (step 0: the data-dependent init's)."""
        return tf.constant([self.seed, step], tf.int64)

    def _micro_batch_loss_and_gradients(self, images, labels, dropout_seed):
        distribution = self.model.distribution
        x = distribution.from_stored(images)
        with tf.GradientTape() as tape:
            params = self.model(x, labels, training=True, dropout_seed=dropout_seed)
            loss = -tf.reduce_sum(distribution.log_prob(x, params))
            if self.loss_scale is None:
                return loss, _dense(tape.gradient(loss, self.model.trainable_weights))
            multiplier = self.loss_scale.multiplier(tf.size(x))
            scaled = loss * multiplier
        return loss, [g / multiplier for g in _dense(tape.gradient(scaled, self.model.trainable_weights))]

    def loss_and_gradients(self, images, labels=None, step_seed=None):
        """This replica's summed loss (nats) and its gradients at the current weights, with the dropout
        masks of step_seed (default: the next step's); with accum_steps K, over its K micro-batches in
        turn (micro-batch k's masks from its own seed), summed. What a step applies, summed over replicas."""
        if step_seed is None:
            step_seed = self.step_seed(self.step + 1)
        replica = tf.distribute.get_replica_context().replica_id_in_sync_group
        dropout_seed = tf.random.experimental.stateless_fold_in(step_seed, replica)
        micro, count = self.config.batch_size, self.config.accum_steps
        if count == 1:
            return self._micro_batch_loss_and_gradients(images, labels, dropout_seed)
        tf.debugging.assert_equal(tf.shape(images)[0], micro * count,
                                  "a replica's batch must be batch_size x accum_steps images")

        def accumulate(k, loss, grads):
            part = slice(k * micro, (k + 1) * micro)
            step_loss, step_grads = self._micro_batch_loss_and_gradients(
                images[part], None if labels is None else labels[part],
                tf.random.experimental.stateless_fold_in(dropout_seed, k))
            return k + 1, loss + step_loss, [g + s for g, s in zip(grads, step_grads)]

        zeros = [tf.zeros(w.shape, w.dtype) for w in self.model.trainable_weights]
        # one micro-batch at a time: its activations are freed before the next one's are made
        _, loss, grads = tf.while_loop(lambda k, *_: k < count, accumulate,
                                       (tf.constant(0), tf.constant(0.0), zeros), parallel_iterations=1)
        return loss, grads

    def _distributed_step(self, images, labels, learning_rate, step_seed):
        loss, grads = self.strategy.run(self.loss_and_gradients, (images, labels, step_seed))
        loss = self.strategy.reduce(tf.distribute.ReduceOp.SUM, loss, axis=None)
        grads = [self.strategy.reduce(tf.distribute.ReduceOp.SUM, g, axis=None) for g in grads]
        if self.workers > 1 and self.config.worker_gradients == "mean":
            grads = [g / self.workers for g in grads]
        if self.loss_scale is None:
            self._update(grads, learning_rate)
            return loss
        finite = all_finite(grads)
        tf.cond(finite, lambda: self._update(grads, learning_rate), tf.no_op)
        self.loss_scale.update(finite)
        return loss

    def _update(self, grads, learning_rate):
        self.ema.update()
        # With recomputation the gradients waiting for their update are a large part of the step's peak
        # memory: update in backpropagation order. Without, the activations dominate and updating
        # during backpropagation measured a higher peak (docs/speed.md).
        self.optimizer.apply_gradients(grads, learning_rate, backprop_order=self.model.recompute)
        return tf.no_op()

    def train_step(self, images, labels=None):
        """One step on a (distributed) batch of uint8 images; returns the summed loss in nats. Under
        float16 a step with non-finite gradients is skipped: `step` stays where it was."""
        learning_rate = tf.constant(self.config.learning_rate_at(self.step + 1), tf.float32)
        return self._step(images, labels, learning_rate, self.step_seed(self.step + 1))


def build_trainer(model_config, train_config, strategy=None, seed=0, **model_options):
    """A Trainer of a new model of `model_config` and its original Adam, made under the strategy's scope.

    model_options: build_model's: `dtype` ("mixed_bfloat16" or "mixed_float16": bfloat16 or float16
    compute, float32 weights, loss, gradients, Adam and averages; float16 with a dynamic loss scale),
    `kernels`, `allow_tf32`, `recompute`."""
    strategy = strategy or tf.distribute.get_strategy()
    with strategy.scope():
        model = build_model(model_config, **model_options)
        model.build(None)
        optimizer = original_adam(model)
    return Trainer(model, optimizer, train_config, strategy, seed)


def _dense(gradients):
    """Gradients as dense tensors (an embedding's comes as IndexedSlices of the codes it looked up)."""
    return [tf.convert_to_tensor(g) for g in gradients]


def worker_count(strategy):
    """Processes of a multi-worker strategy (chief included); 1 for any other."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return 1
    spec = resolver.cluster_spec().as_dict()
    return sum(len(spec.get(kind, [])) for kind in ("chief", "worker"))


def make_strategy(nr_gpu=None):
    """The tf.distribute strategy for `nr_gpu` replicas (the original's --nr_gpu).

    TF_CONFIG set: MultiWorkerMirroredStrategy across its workers. Otherwise the first nr_gpu local
    GPUs (None: all of them); on a machine without GPUs, nr_gpu logical CPU devices, so the same
    multi-replica code runs; some GPUs but fewer than asked: ValueError. Call before TensorFlow
    touches its devices.
    """
    if os.environ.get("TF_CONFIG"):
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_physical_devices("GPU")
    count = nr_gpu if nr_gpu is not None else max(len(gpus), 1)
    if count < 1:
        raise ValueError(f"--nr_gpu must be >= 1, got {count}")
    if gpus:
        if len(gpus) < count:
            raise ValueError(f"--nr_gpu={count} but only {len(gpus)} GPUs are visible")
        devices = [f"/gpu:{i}" for i in range(count)]
    else:
        cpu = tf.config.list_physical_devices("CPU")[0]
        if count > 1 and len(tf.config.get_logical_device_configuration(cpu) or []) < count:
            tf.config.set_logical_device_configuration(
                cpu, [tf.config.LogicalDeviceConfiguration()] * count)
        devices = [f"/cpu:{i}" for i in range(count)]
    return tf.distribute.MirroredStrategy(devices)

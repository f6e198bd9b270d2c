"""The original's training recipe on a tf.distribute strategy: data-dependent init, then per step
summed-nats loss, gradients summed over replicas, Polyak average, the original Adam.

Order within a step (fixed here; the original left the EMA and Adam updates unordered, see
ORIGINAL.md 7.5, and its reference data was made this way):
  1. loss and gradients at the current weights (dropout on), per replica, summed over replicas;
  2. the Polyak average moves towards the weights *before* this step's update;
  3. the original Adam updates the weights with lr = learning_rate * lr_decay**step (step from 1).
"""

import dataclasses
import os

import tensorflow as tf

from pixelsnail_tf import checkpointing
from pixelsnail_tf.ema import PolyakAverage
from pixelsnail_tf.images import uint8_to_float
from pixelsnail_tf.logistic_mixture import discretized_mix_logistic_log_prob
from pixelsnail_tf.model import build_model


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """The original train.py's optimization flags, same names and defaults (the run's length,
    checkpoints and seed are fit.RunConfig's)."""

    learning_rate: float = 1e-3
    lr_decay: float = 0.999998
    polyak_decay: float = 0.9995
    batch_size: int = 8  # per replica, as the original's per-GPU batch
    init_batch_size: int = 8

    def learning_rate_at(self, step):
        """The rate step `step` (1-based) uses: the original decays it before every step."""
        return self.learning_rate * self.lr_decay ** step


class Trainer:
    """Model, Polyak average and optimizer state of one run, placed by `strategy`."""

    def __init__(self, model_config, train_config, strategy=None, seed=0, **model_options):
        """model_options: PixelSNAIL's `dtype` ("mixed_bfloat16": bfloat16 compute, float32 weights,
        loss, gradients, Adam and averages) and `kernels`. Dropout masks are a function of (seed,
        step, replica): a resumed run draws those of an uninterrupted one."""
        self.config = train_config
        self.seed = seed
        self.strategy = strategy or tf.distribute.get_strategy()
        with self.strategy.scope():
            self.model = build_model(model_config, **model_options)
            self.model.build(None)
            self.ema = PolyakAverage(self.model, train_config.polyak_decay)
            self.optimizer = checkpointing.original_adam(self.model)
        self._step = tf.function(self._distributed_step)

    @property
    def step(self):
        """Training steps done so far (the original Adam's counter t starts at 1)."""
        return int(self.optimizer.t.numpy()) - 1

    def initialize(self, images, labels=None):
        """The original's data-dependent init on the whole init batch; the average starts there."""
        with self.strategy.scope():
            self.model.initialize(images, labels, dropout_seed=self._seed(0))
            self.ema.reset()

    def checkpoint(self, **extra):
        return checkpointing.model_checkpoint(self.model, self.ema, optimizer=self.optimizer, **extra)

    def _seed(self, step):
        return tf.constant([self.seed, step], tf.int64)

    def _replica_loss_and_gradients(self, images, labels, step_seed):
        x = uint8_to_float(images)
        weights = self.model.trainable_weights
        replica = tf.distribute.get_replica_context().replica_id_in_sync_group
        dropout_seed = tf.random.experimental.stateless_fold_in(step_seed, replica)
        with tf.GradientTape() as tape:
            params = self.model(x, labels, training=True, dropout_seed=dropout_seed)
            loss = -tf.reduce_sum(discretized_mix_logistic_log_prob(x, params))
        return loss, tape.gradient(loss, weights)

    def _distributed_step(self, images, labels, learning_rate, step_seed):
        loss, grads = self.strategy.run(self._replica_loss_and_gradients, (images, labels, step_seed))
        loss = self.strategy.reduce(tf.distribute.ReduceOp.SUM, loss, axis=None)
        grads = [self.strategy.reduce(tf.distribute.ReduceOp.SUM, g, axis=None) for g in grads]
        self.ema.update()
        self.optimizer.apply_gradients(grads, learning_rate)
        return loss

    def train_step(self, images, labels=None):
        """One step on a (distributed) batch of uint8 images; returns the summed loss in nats."""
        learning_rate = tf.constant(self.config.learning_rate_at(self.step + 1), tf.float32)
        return self._step(images, labels, learning_rate, self._seed(self.step + 1))


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

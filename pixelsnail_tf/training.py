"""Training with the original's recipe: the step (Trainer) and train.py's epoch loop (fit).

The step, on a tf.distribute strategy: data-dependent init, then per step summed-nats loss, gradients
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

The epoch loop: start or resume, train, evaluate, sample, summarize, checkpoint.
A run lives in `save_dir`: `config.json` (the model config), `flags.txt` (the flags of its newest
start, when the command gives them), `ckpt-<step>.*` (tf.train.
CheckpointManager: weights, Polyak averages, Adam state, epoch, batch position and images per step),
`samples.png` (enlarged) and `samples_1x.png`, TensorBoard logs under `logs/train` and
`logs/test` (with the hyper-parameters for TensorBoard's HParams view), and `.lock` (run_folder: one trainer at a time).
Running the same command again resumes from the newest checkpoint: same weights, averages, moments,
learning rate (derived from the step) and data position.
"""

import dataclasses
import math
import os
import signal
import time
from typing import Optional

import keras
import numpy as np
import tensorflow as tf
from tensorboard.plugins.hparams import api as hp

from pixelsnail_tf import checkpoints, evaluation, run_folder
from pixelsnail_tf.data import train_batches
from pixelsnail_tf.ema import PolyakAverage
from pixelsnail_tf.errors import first_line
from pixelsnail_tf.images import write_grid_pngs
from pixelsnail_tf.logistic_mixture import bits_per_dim
from pixelsnail_tf.model import build_model
from pixelsnail_tf.optimizer import DynamicLossScale, all_finite, original_adam
from pixelsnail_tf.sampling import CachedSampler, draw_noise


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
    """Model, Polyak average and optimizer state of one run, placed by `strategy`."""

    def __init__(self, model_config, train_config, strategy=None, seed=0, **model_options):
        """model_options: build_model's: `dtype` ("mixed_bfloat16" or "mixed_float16": bfloat16 or
        float16 compute, float32 weights, loss, gradients, Adam and averages; float16 with a dynamic
        loss scale, `loss_scale`), `kernels`, `allow_tf32`, `recompute`. Dropout masks are a function
        of (seed, step, replica): a resumed run draws those of an uninterrupted one."""
        self.config = train_config
        self.seed = seed
        self.strategy = strategy or tf.distribute.get_strategy()
        with self.strategy.scope():
            self.model = build_model(model_config, **model_options)
            self.model.build(None)
            self.ema = PolyakAverage(self.model, train_config.polyak_decay)
            self.optimizer = original_adam(self.model)
            self.loss_scale = (DynamicLossScale() if self.model.compute_dtype == "float16" else None)
        self.workers = worker_count(self.strategy)
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

    def checkpoint(self, with_loss_scale=True, **extra):
        """The run's state as a tf.train.Checkpoint (the float16 loss scale too, if any and wanted)."""
        if self.loss_scale is not None and with_loss_scale:
            extra["loss_scale"] = self.loss_scale
        return checkpoints.model_checkpoint(self.model, self.ema, optimizer=self.optimizer, **extra)

    def _seed(self, step):
        return tf.constant([self.seed, step], tf.int64)

    def _loss_and_gradients(self, images, labels, dropout_seed):
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

    def _replica_loss_and_gradients(self, images, labels, step_seed):
        """This replica's summed loss and gradients; with accum_steps K, over its K micro-batches in
        turn (micro-batch k's dropout masks from its own seed), summed."""
        replica = tf.distribute.get_replica_context().replica_id_in_sync_group
        dropout_seed = tf.random.experimental.stateless_fold_in(step_seed, replica)
        micro, count = self.config.batch_size, self.config.accum_steps
        if count == 1:
            return self._loss_and_gradients(images, labels, dropout_seed)
        tf.debugging.assert_equal(tf.shape(images)[0], micro * count,
                                  "a replica's batch must be batch_size x accum_steps images")

        def accumulate(k, loss, grads):
            part = slice(k * micro, (k + 1) * micro)
            step_loss, step_grads = self._loss_and_gradients(
                images[part], None if labels is None else labels[part],
                tf.random.experimental.stateless_fold_in(dropout_seed, k))
            return k + 1, loss + step_loss, [g + s for g, s in zip(grads, step_grads)]

        zeros = [tf.zeros(w.shape, w.dtype) for w in self.model.trainable_weights]
        # one micro-batch at a time: its activations are freed before the next one's are made
        _, loss, grads = tf.while_loop(lambda k, *_: k < count, accumulate,
                                       (tf.constant(0), tf.constant(0.0), zeros), parallel_iterations=1)
        return loss, grads

    def _distributed_step(self, images, labels, learning_rate, step_seed):
        loss, grads = self.strategy.run(self._replica_loss_and_gradients, (images, labels, step_seed))
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
        # during backpropagation measured a higher peak (benchmarks/README.md).
        self.optimizer.apply_gradients(grads, learning_rate, backprop_order=self.model.recompute)
        return tf.no_op()

    def train_step(self, images, labels=None):
        """One step on a (distributed) batch of uint8 images; returns the summed loss in nats. Under
        float16 a step with non-finite gradients is skipped: `step` stays where it was."""
        learning_rate = tf.constant(self.config.learning_rate_at(self.step + 1), tf.float32)
        return self._step(images, labels, learning_rate, self._seed(self.step + 1))


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


@dataclasses.dataclass(frozen=True)
class RunConfig:
    save_dir: str
    max_epochs: int = 5000
    save_interval: int = 10
    num_samples: int = 16
    shuffle: bool = True
    seed: int = 42
    init_checkpoint: Optional[str] = None  # an original TF1 checkpoint to continue from
    test_batch_size: int = 16
    flags: Optional[str] = None  # the flagfile of the command that runs it: written at every start


class TrainingStopped(Exception):
    """SIGTERM or Ctrl-C (SIGINT, handled alike): the loop saves its position and stops."""


class NonFiniteLoss(RuntimeError):
    pass


def _check_save_dir(run, model_config):
    """Refuses a save_dir that cannot be written or holds a run of another model config; returns
    True when config.json is still to be written (after the run's start has succeeded)."""
    try:
        tf.io.gfile.makedirs(run.save_dir)
        probe = os.path.join(run.save_dir, ".write_test")
        with tf.io.gfile.GFile(probe, "w") as f:
            f.write("")
        tf.io.gfile.remove(probe)
    except (OSError, tf.errors.OpError) as error:
        raise ValueError(f"cannot write to --save_dir={run.save_dir} ({error})") from None
    if not tf.io.gfile.exists(os.path.join(run.save_dir, checkpoints.CONFIG_FILE)):
        return True  # a resume then checks the flags against the checkpoint's tensors
    saved = checkpoints.read_config(run.save_dir)
    differences = checkpoints.config_differences(saved, model_config)
    if differences:
        raise ValueError(f"{run.save_dir} holds a run with another model config: " + "; ".join(differences))
    return False


def _check_finite(trainer):
    """True when every weight, average and Adam moment is finite (checked before each save)."""
    tensors = (list(trainer.model.trainable_weights) + list(trainer.ema.shadows)
               + list(trainer.optimizer.first_moment.values())
               + list(trainer.optimizer.second_moment.values()))
    return bool(all_finite(tensors))


def _check_loss_scale(trainer, epoch):
    """After a skipped float16 step: at the smallest loss scale, training has diverged."""
    scale = float(trainer.loss_scale.scale.numpy())
    if scale < trainer.loss_scale.MIN_SCALE:
        raise NonFiniteLoss(f"non-finite gradients at step {trainer.step + 1} (epoch {epoch}) even with the "
                            f"float16 loss scale down to {scale:g}; the last good checkpoint is kept")


def _worker_save_dir(strategy, save_dir):
    """save_dir for the chief; a folder of its own inside it for every other worker of a multi-worker
    run (each worker takes part in every save, and only the chief's files are the run's)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return save_dir
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    if resolver.task_type == "chief" or (not has_chief and resolver.task_id == 0):
        return save_dir
    return os.path.join(save_dir, f"{resolver.task_type}_{resolver.task_id}")


def fit(trainer, train_data, test_data, run, log=print):
    """Trains until run.max_epochs; returns normally, or raises NonFiniteLoss / TrainingStopped.

    The folder is locked for the whole run (a second trainer on it is refused); the newest complete
    checkpoint is resumed, found by step from the files; config.json is written only once the run has
    started; a checkpoint is never written over, nor with a non-finite value in it.
    """
    run = dataclasses.replace(run, save_dir=_worker_save_dir(trainer.strategy, run.save_dir))
    config_missing = _check_save_dir(run, trainer.model.config)
    stop = {"signal": None}

    def stop_requested(*_):
        if stop["signal"] is not None:
            raise TrainingStopped(f"signal {stop['signal']}")

    previous = {number: signal.signal(number, lambda n, frame: stop.update(signal=n))
                for number in (signal.SIGTERM, signal.SIGINT)}
    try:
        with run_folder.RunLock(run.save_dir):
            run_folder.remove_temporary_files(run.save_dir)
            _fit(trainer, train_data, test_data, run, config_missing, stop_requested, log)
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _fit(trainer, train_data, test_data, run, config_missing, stop_requested, log):
    config = trainer.config
    epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
    batch = tf.Variable(0, dtype=tf.int64, trainable=False)
    images, labels = train_data
    global_batch = config.images_per_step(trainer.strategy.num_replicas_in_sync)
    # the data position counts batches: a resume must use the same global batch (0: not recorded,
    # in checkpoints written before it was)
    saved_global_batch = tf.Variable(0, dtype=tf.int64, trainable=False)
    manager = tf.train.CheckpointManager(
        trainer.checkpoint(epoch=epoch, batch=batch, global_batch=saved_global_batch), run.save_dir,
        max_to_keep=5)
    latest = run_folder.newest_checkpoint(run.save_dir)
    if latest:
        try:
            differences = checkpoints.weight_differences(trainer.model, latest)
            if differences:
                raise ValueError(f"cannot resume from {latest}: it holds another model than these model "
                                 f"flags make\n" + "\n".join(differences))
            # the run's whole state, but what older checkpoints lack (global_batch), or a checkpoint of
            # another precision (loss_scale: a float16 run from another starts a new scale)
            saved = {name.split("/")[0] for name, _ in tf.train.list_variables(latest)}
            if "global_batch" in saved and (trainer.loss_scale is None or "loss_scale" in saved):
                state = manager.checkpoint
            else:
                state = trainer.checkpoint(epoch=epoch, batch=batch, with_loss_scale="loss_scale" in saved,
                                           **({"global_batch": saved_global_batch} if "global_batch" in saved
                                              else {}))
            state.restore(latest).assert_existing_objects_matched()
        except (AssertionError, IndexError, tf.errors.OpError) as error:  # e.g. truncated files
            raise ValueError(f"cannot resume from {latest}: {first_line(error)}") from None
        if int(saved_global_batch.numpy()) not in (0, global_batch):
            raise ValueError(f"{run.save_dir} was trained with {int(saved_global_batch.numpy())} images "
                             f"per step and this run has {global_batch} (--batch_size x replicas x "
                             f"--accum_steps): resume "
                             f"with the same, or start another --save_dir")
        log(f"resuming {latest}: step {trainer.step}, epoch {int(epoch.numpy())}, "
            f"batch {int(batch.numpy())}")
    elif run.init_checkpoint:
        prefix = checkpoints.resolve_prefix(run.init_checkpoint)
        with trainer.strategy.scope():
            checkpoints.load_tf1_training_state(trainer.model, trainer.ema, trainer.optimizer, prefix)
        log(f"starting from original checkpoint {prefix} (step {trainer.step})")
    else:
        first = np.random.default_rng([run.seed, 0]).permutation(len(images))[:config.init_batch_size]
        trainer.initialize(images[first], None if labels is None else labels[first])
        log(f"data-dependent init on {len(first)} images")
    saved_global_batch.assign(global_batch)
    if config_missing:
        checkpoints.write_config(run.save_dir, trainer.model.config)
    if run.flags is not None:
        run_folder.write_flags(run.save_dir, run.flags)

    def save():
        prefix = os.path.join(run.save_dir, f"ckpt-{trainer.step}")
        if run_folder.exists(prefix):  # this step's state is saved already (a resume that took no step)
            return prefix
        if not _check_finite(trainer):
            raise NonFiniteLoss(f"non-finite weights after step {trainer.step}: not saved; the newest "
                                f"checkpoint ({run_folder.newest_checkpoint(run.save_dir)}) is the last "
                                f"finite one")
        return manager.save(checkpoint_number=trainer.step)

    # train and test bits/dim under one tag in two runs (logs/train, logs/test): one chart in TensorBoard
    writer = {part: tf.summary.create_file_writer(os.path.join(run.save_dir, "logs", part))
              for part in ("train", "test")}
    with writer["train"].as_default(step=trainer.step):
        hp.hparams({name: value for name, value in {**trainer.model.config.to_dict(),
                                                   **dataclasses.asdict(config)}.items()
                    if value is not None})
    dims = int(np.prod(images.shape[1:]))
    try:
        stop_requested()
        while int(epoch.numpy()) < run.max_epochs:
            current = int(epoch.numpy())
            steps = len(images) // global_batch
            progress = keras.utils.Progbar(steps, unit_name="step")
            dataset = train_batches(images, labels, global_batch, current, run.seed, run.shuffle,
                                    skip=int(batch.numpy()))
            bpds, skipped, start = [], 0, time.perf_counter()
            for element in trainer.strategy.experimental_distribute_dataset(dataset):
                tick, before = time.perf_counter(), trainer.step
                loss = float(trainer.train_step(*element).numpy())
                bpd = bits_per_dim(-loss, dims * global_batch)
                if trainer.step == before:  # float16: non-finite gradients, skipped; the scale halved
                    _check_loss_scale(trainer, current)
                    batch.assign_add(1)
                    skipped += 1
                    stop_requested()
                    continue
                if not math.isfinite(bpd):
                    raise NonFiniteLoss(f"non-finite training loss at step {trainer.step} (epoch "
                                        f"{current}); the last good checkpoint is kept")
                batch.assign_add(1)
                bpds.append(bpd)
                seconds = time.perf_counter() - tick
                progress.update(int(batch.numpy()), values=[("bpd", bpd),
                                                            ("images/s", global_batch / seconds)])
                with writer["train"].as_default(step=trainer.step):
                    tf.summary.scalar("bpd", bpd)
                    tf.summary.scalar("learning_rate", config.learning_rate_at(trainer.step))
                    tf.summary.scalar("images_per_sec", global_batch / seconds)
                    tf.summary.scalar("step_seconds", seconds)
                    if trainer.loss_scale is not None:
                        tf.summary.scalar("loss_scale", trainer.loss_scale.scale)
                stop_requested()
            epoch.assign_add(1)
            batch.assign(0)
            if current % run.save_interval == 0 or current + 1 == run.max_epochs:
                save()  # first: a stop during the evaluation loses nothing
                _end_of_interval(trainer, test_data, run, writer, current, bpds, start, log,
                                 stop_requested)
            if skipped:
                log(f"epoch {current}: {skipped} steps skipped for non-finite float16 gradients (loss "
                    f"scale now {float(trainer.loss_scale.scale.numpy()):g})")
    except TrainingStopped:
        prefix = save()
        log(f"stopped: saved {prefix} (epoch {int(epoch.numpy())}, batch {int(batch.numpy())}); run the "
            f"same command to resume")
        raise
    finally:
        for part in writer.values():
            part.flush()


def _end_of_interval(trainer, test_data, run, writer, epoch, bpds, start, log, stop_requested):
    """Test bpd and samples with the Polyak-averaged weights; summaries. stop_requested() is called
    between batches and rows (it raises TrainingStopped to stop)."""
    test_images, test_labels = test_data
    with trainer.ema.swapped_in():
        ll = evaluation.log_likelihood(trainer.model, test_images, test_labels,
                                       batch_size=run.test_batch_size, verbose=False,
                                       after_batch=stop_requested)
        test_bpd = evaluation.summary(ll, test_images.shape)["bpd"]
        grid = None
        if run.num_samples > 0:
            height, width = test_images.shape[1:3]
            distribution = trainer.model.distribution
            noise = draw_noise(distribution, run.num_samples, height, width, run.seed)
            labels = (tf.range(run.num_samples) % trainer.model.config.num_classes
                      if trainer.model.config.num_classes else None)
            sampler = CachedSampler(trainer.model, progress=stop_requested)
            drawn = distribution.to_stored(sampler(noise, labels)).numpy()
            grid = write_grid_pngs(run.save_dir, distribution.pictures(drawn))
    train_bpd = float(np.mean(bpds)) if bpds else float("nan")
    with writer["test"].as_default(step=trainer.step):
        tf.summary.scalar("bpd", test_bpd)
        if grid is not None:
            tf.summary.image("samples", grid[None], max_outputs=1)
    with writer["train"].as_default(step=trainer.step):
        tf.summary.scalar("epoch_bpd", train_bpd)
    log(f"epoch {epoch}: train bpd {train_bpd:.4f}, test bpd {test_bpd:.4f} (EMA), step "
        f"{trainer.step}, {time.perf_counter() - start:.0f}s")

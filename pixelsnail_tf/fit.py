"""The epoch loop of train.py: start or resume, train, evaluate, sample, summarize, checkpoint.

A run lives in `save_dir`: `config.json` (the model config), `ckpt-<step>.*` (tf.train.
CheckpointManager: weights, Polyak averages, Adam state, epoch and batch position), `samples.png`,
and TensorBoard logs under `logs/`. Running the same command again resumes from the latest
checkpoint: same weights, averages, moments, learning rate (derived from the step) and data position.
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

from pixelsnail_tf import checkpointing, evaluation, tf1_checkpoint
from pixelsnail_tf.cached_sampling import CachedSampler
from pixelsnail_tf.data import train_batches
from pixelsnail_tf.images import float_to_uint8, image_grid
from pixelsnail_tf.logistic_mixture import bits_per_dim
from pixelsnail_tf.sampling import draw_noise


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


class TrainingStopped(Exception):
    """SIGTERM or Ctrl-C: the loop saves its position and stops."""


class NonFiniteLoss(RuntimeError):
    pass


def _prepare_save_dir(run, model_config):
    """Checks or writes config.json; refuses a save_dir made with another model config."""
    try:
        tf.io.gfile.makedirs(run.save_dir)
        probe = os.path.join(run.save_dir, ".write_test")
        with tf.io.gfile.GFile(probe, "w") as f:
            f.write("")
        tf.io.gfile.remove(probe)
    except (OSError, tf.errors.OpError) as error:
        raise ValueError(f"cannot write to --save_dir={run.save_dir} ({error})") from None
    if tf.io.gfile.exists(os.path.join(run.save_dir, checkpointing.CONFIG_FILE)):
        saved = checkpointing.read_config(run.save_dir)
        differences = checkpointing.config_differences(saved, model_config)
        if differences:
            raise ValueError(f"{run.save_dir} holds a run with another model config: "
                             + "; ".join(differences))
    else:
        checkpointing.write_config(run.save_dir, model_config)


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
    """Trains until run.max_epochs; returns normally, or raises NonFiniteLoss / TrainingStopped."""
    model_config, config = trainer.model.config, trainer.config
    run = dataclasses.replace(run, save_dir=_worker_save_dir(trainer.strategy, run.save_dir))
    _prepare_save_dir(run, model_config)
    epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
    batch = tf.Variable(0, dtype=tf.int64, trainable=False)
    manager = tf.train.CheckpointManager(trainer.checkpoint(epoch=epoch, batch=batch), run.save_dir,
                                         max_to_keep=5)
    images, labels = train_data
    global_batch = config.batch_size * trainer.strategy.num_replicas_in_sync
    if manager.latest_checkpoint:
        manager.checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched()
        log(f"resuming {manager.latest_checkpoint}: step {trainer.step}, epoch {int(epoch.numpy())}, "
            f"batch {int(batch.numpy())}")
    elif run.init_checkpoint:
        prefix = tf1_checkpoint.resolve_prefix(run.init_checkpoint)
        with trainer.strategy.scope():
            checkpointing.load_tf1_training_state(trainer.model, trainer.ema, trainer.optimizer, prefix)
        log(f"starting from original checkpoint {prefix} (step {trainer.step})")
    else:
        first = np.random.default_rng([run.seed, 0]).permutation(len(images))[:config.init_batch_size]
        trainer.initialize(images[first], None if labels is None else labels[first])
        log(f"data-dependent init on {len(first)} images")

    stop = {"signal": None}
    previous = signal.signal(signal.SIGTERM, lambda number, frame: stop.update(signal=number))
    writer = tf.summary.create_file_writer(os.path.join(run.save_dir, "logs"))
    dims = int(np.prod(images.shape[1:]))
    try:
        while int(epoch.numpy()) < run.max_epochs:
            current = int(epoch.numpy())
            steps = len(images) // global_batch
            progress = keras.utils.Progbar(steps, unit_name="step")
            dataset = train_batches(images, labels, global_batch, current, run.seed, run.shuffle,
                                    skip=int(batch.numpy()))
            bpds, start = [], time.perf_counter()
            for element in trainer.strategy.experimental_distribute_dataset(dataset):
                tick = time.perf_counter()
                loss = float(trainer.train_step(*element).numpy())
                bpd = bits_per_dim(-loss, dims * global_batch)
                if not math.isfinite(bpd):
                    raise NonFiniteLoss(f"non-finite training loss at step {trainer.step} (epoch "
                                        f"{current}); the last good checkpoint is kept")
                batch.assign_add(1)
                bpds.append(bpd)
                seconds = time.perf_counter() - tick
                progress.update(int(batch.numpy()), values=[("bpd", bpd),
                                                            ("images/s", global_batch / seconds)])
                with writer.as_default(step=trainer.step):
                    tf.summary.scalar("train/bpd", bpd)
                    tf.summary.scalar("train/learning_rate", config.learning_rate_at(trainer.step))
                    tf.summary.scalar("train/images_per_sec", global_batch / seconds)
                    tf.summary.scalar("train/step_seconds", seconds)
                if stop["signal"] is not None:
                    raise TrainingStopped(f"signal {stop['signal']}")
            epoch.assign_add(1)
            batch.assign(0)
            if current % run.save_interval == 0 or current + 1 == run.max_epochs:
                _end_of_interval(trainer, test_data, run, writer, current, bpds, start, log)
                manager.save(checkpoint_number=trainer.step)
    except (KeyboardInterrupt, TrainingStopped):
        manager.save(checkpoint_number=trainer.step)
        log(f"stopped: saved {manager.latest_checkpoint} (epoch {int(epoch.numpy())}, batch "
            f"{int(batch.numpy())}); run the same command to resume")
        raise TrainingStopped() from None
    finally:
        signal.signal(signal.SIGTERM, previous)
        writer.flush()


def _end_of_interval(trainer, test_data, run, writer, epoch, bpds, start, log):
    """Test bpd and samples with the Polyak-averaged weights; summaries."""
    test_images, test_labels = test_data
    with trainer.ema.swapped_in():
        ll = evaluation.log_likelihood(trainer.model, test_images, test_labels,
                                       batch_size=run.test_batch_size, verbose=False)
        test_bpd = evaluation.summary(ll, test_images.shape)["bpd"]
        grid = None
        if run.num_samples > 0:
            height, width = test_images.shape[1:3]
            u_mix, u_logistic = draw_noise(run.num_samples, height, width,
                                           trainer.model.config.nr_logistic_mix, run.seed)
            labels = (tf.range(run.num_samples) % trainer.model.config.num_classes
                      if trainer.model.config.num_classes else None)
            grid = image_grid(float_to_uint8(CachedSampler(trainer.model)(u_mix, u_logistic, labels)))
            tf.io.write_file(os.path.join(run.save_dir, "samples.png"), tf.io.encode_png(grid))
    train_bpd = float(np.mean(bpds)) if bpds else float("nan")
    with writer.as_default(step=trainer.step):
        tf.summary.scalar("test/bpd", test_bpd)
        tf.summary.scalar("train/epoch_bpd", train_bpd)
        if grid is not None:
            tf.summary.image("samples", grid[None], max_outputs=1)
    log(f"epoch {epoch}: train bpd {train_bpd:.4f}, test bpd {test_bpd:.4f} (EMA), step "
        f"{trainer.step}, {time.perf_counter() - start:.0f}s")

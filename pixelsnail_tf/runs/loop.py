"""A training run in a folder (fit): start or resume, train, evaluate, sample, summarize, checkpoint.

A run lives in `save_dir`: `config.json` (the model config), `flags.txt` (the flags of its newest
start, when the command gives them), `ckpt-<step>.*` (tf.train.CheckpointManager: weights, Polyak
averages, Adam state, epoch, batch position and images per step), `samples.png` (enlarged) and
`samples_1x.png`, TensorBoard logs under `logs/train` and `logs/test` (with the hyper-parameters for
TensorBoard's HParams view), and `.lock` (run_folder.py: one trainer at a time).
Running the same command again resumes from the newest checkpoint: same weights, averages, moments,
learning rate (derived from the step) and data position.
"""

import dataclasses
import math
import os
import signal
import time

import keras
import numpy as np
import tensorflow as tf
from tensorboard.plugins.hparams import api as hp

from pixelsnail_tf import checkpoints, evaluation, memory
from pixelsnail_tf.data import train_batches
from pixelsnail_tf.distributions import bits_per_dim
from pixelsnail_tf.errors import first_line, reason
from pixelsnail_tf.images import completion_rows, write_grid_pngs
from pixelsnail_tf.runs import run_folder
from pixelsnail_tf.sampling import CachedSampler, complete, draw_noise
from pixelsnail_tf.training.optimizer import all_finite


@dataclasses.dataclass(frozen=True)
class RunConfig:
    save_dir: str
    max_epochs: int = 5000
    save_interval: int = 10
    num_samples: int = 16
    shuffle: bool = True
    seed: int = 42
    init_checkpoint: str | None = None  # an original TF1 checkpoint to continue from
    test_batch_size: int = 16
    flags: str | None = None  # the flagfile of the command that runs it: written at every start
    data_source: str = "the data"  # how errors about the data name where they came from


class TrainingStopped(Exception):
    """SIGTERM or Ctrl-C (SIGINT, handled alike): the loop saves its position and stops."""


# completions.png: this many test images, each completed this many times from its top half.
COMPLETED_IMAGES = 4
COMPLETION_DRAWS = 3


class CheckpointNotSaved(RuntimeError):
    """A checkpoint could not be written (its partial files are removed; the older ones stay)."""


class NonFiniteLoss(RuntimeError):
    pass


def check_data(distribution, global_batch, train_data, test_data, source="the data"):
    """ValueError (one line, naming `source`) unless both splits hold what the model is a distribution
    over (the test split of the training images' size), the training split has at least one global batch,
    and the images have more than one pixel."""
    (train_images, _), (test_images, _) = train_data, test_data
    for split, array in (("training", train_images), ("test", test_images)):
        distribution.check_array(array, f"{source}'s {split} data")
    if tuple(test_images.shape[1:]) != tuple(train_images.shape[1:]):
        raise ValueError(f"{source}'s test data are of shape {tuple(test_images.shape[1:])} and its training "
                         f"data {tuple(train_images.shape[1:])}: a model is trained and tested on one shape")
    if len(train_images) < global_batch:
        raise ValueError(f"{len(train_images)} training images are fewer than one global batch "
                         f"({global_batch}: --batch_size x replicas x --accum_steps)")
    if train_images.shape[1] * train_images.shape[2] < 2:
        raise ValueError("1x1 images cannot be trained on: no pixel has another to be predicted "
                         "from, and the data-dependent init would divide by their zero spread")


def check_sizes(trainer, run, height, width):
    """ValueError (one line) where a batch of the training step, the init, the test evaluation or the
    samples cannot fit in this machine's memory (memory.forward_bytes: a lower bound)."""
    config, train = trainer.model.config, trainer.config
    for what, batch, whole_image, advice in [
            ("a training batch", train.batch_size, True, "lower --batch_size or the image size"),
            ("the init batch", train.init_batch_size, True, "lower --init_batch_size or the image size"),
            ("a test batch", run.test_batch_size, True, "lower the image size"),
            ("the samples", run.num_samples, False, "lower --num_samples or the image size"),
            ("the completions", COMPLETED_IMAGES * COMPLETION_DRAWS if run.num_samples else 0, False,
             "lower the image size")]:
        memory.check_fits(memory.forward_bytes(config, batch, height, width, whole_image),
                          f"{what} of {batch} images of {height}x{width}", advice)


def _run_checkpoint(trainer, with_loss_scale=True, **extra):
    """The run's state as a tf.train.Checkpoint: model, averages and Adam (the float16 loss scale too, if
    any and wanted), + extra."""
    if trainer.loss_scale is not None and with_loss_scale:
        extra["loss_scale"] = trainer.loss_scale
    return checkpoints.model_checkpoint(trainer.model, trainer.ema, optimizer=trainer.optimizer, **extra)


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
        foreign = run_folder.foreign_files(run.save_dir)
        if foreign and not run_folder.checkpoint_steps(run.save_dir):
            raise ValueError(f"--save_dir={run.save_dir} holds {foreign[0]} and no run: a new run starts in "
                             f"an empty or new folder (nothing in it is replaced)")
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
    replicas = trainer.strategy.num_replicas_in_sync
    check_data(trainer.model.distribution, trainer.config.images_per_step(replicas), train_data, test_data,
               source=run.data_source)
    check_sizes(trainer, run, *train_data[0].shape[1:3])
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
    # Where the run stands, saved with it. The data position counts batches: a resume must use the same
    # global batch (0: not recorded, in checkpoints written before it was).
    position = {name: tf.Variable(0, dtype=tf.int64, trainable=False)
                for name in ("epoch", "batch", "global_batch")}
    epoch, batch = position["epoch"], position["batch"]
    global_batch = trainer.config.images_per_step(trainer.strategy.num_replicas_in_sync)
    manager = tf.train.CheckpointManager(_run_checkpoint(trainer, **position), run.save_dir, max_to_keep=5)
    _resume_or_start(trainer, manager, position, global_batch, train_data, run, log)
    position["global_batch"].assign(global_batch)
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
        try:
            return manager.save(checkpoint_number=trainer.step)
        except tf.errors.OpError as error:  # e.g. a full disk: the older checkpoints stay
            run_folder.remove_temporary_files(run.save_dir)
            newest = run_folder.newest_checkpoint(run.save_dir) or "none yet"
            raise CheckpointNotSaved(f"cannot save {prefix}: {reason(error)}; the newest checkpoint: "
                                     f"{newest}") from None

    writer = _summary_writers(trainer, run.save_dir)
    try:
        stop_requested()
        while int(epoch.numpy()) < run.max_epochs:
            current = int(epoch.numpy())
            bpds, skipped, start = _train_epoch(trainer, train_data, run, position, global_batch, writer,
                                                stop_requested)
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


def _resume_or_start(trainer, manager, position, global_batch, train_data, run, log):
    """The run's state from its newest checkpoint, else from run.init_checkpoint (an original one), else
    the data-dependent init on the first init batch of the run's seed."""
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
                kept = {name: v for name, v in position.items() if name != "global_batch" or name in saved}
                state = _run_checkpoint(trainer, with_loss_scale="loss_scale" in saved, **kept)
            state.restore(latest).assert_existing_objects_matched()
        except (AssertionError, IndexError, tf.errors.OpError) as error:  # e.g. truncated files
            raise ValueError(f"cannot resume from {latest}: {first_line(error)}") from None
        saved_global_batch = int(position["global_batch"].numpy())
        if saved_global_batch not in (0, global_batch):
            raise ValueError(f"{run.save_dir} was trained with {saved_global_batch} images per step and this "
                             f"run has {global_batch} (--batch_size x replicas x --accum_steps): resume "
                             f"with the same, or start another --save_dir")
        log(f"resuming {latest}: step {trainer.step}, epoch {int(position['epoch'].numpy())}, "
            f"batch {int(position['batch'].numpy())}")
    elif run.init_checkpoint:
        prefix = checkpoints.resolve_prefix(run.init_checkpoint)
        with trainer.strategy.scope():
            checkpoints.load_tf1_training_state(trainer.model, trainer.ema, trainer.optimizer, prefix)
        log(f"starting from original checkpoint {prefix} (step {trainer.step})")
    else:
        images, labels = train_data
        first = np.random.default_rng([run.seed, 0]).permutation(len(images))[:trainer.config.init_batch_size]
        trainer.initialize(images[first], None if labels is None else labels[first])
        log(f"data-dependent init on {len(first)} images")


def _summary_writers(trainer, save_dir):
    """TensorBoard writers of logs/train and logs/test (train and test bits/dim under one tag in two runs:
    one chart), the hyper-parameters written to the first."""
    writer = {part: tf.summary.create_file_writer(os.path.join(save_dir, "logs", part))
              for part in ("train", "test")}
    with writer["train"].as_default(step=trainer.step):
        hp.hparams({name: value for name, value in {**trainer.model.config.to_dict(),
                                                   **dataclasses.asdict(trainer.config)}.items()
                    if value is not None})
    return writer


def _train_epoch(trainer, train_data, run, position, global_batch, writer, stop_requested):
    """The rest of the current epoch from the saved batch position; (bits/dim of each step taken, steps
    skipped for non-finite float16 gradients, start time)."""
    images, labels = train_data
    current, epoch_start = int(position["epoch"].numpy()), int(position["batch"].numpy())
    dims = int(np.prod(images.shape[1:]))
    progress = keras.utils.Progbar(len(images) // global_batch, unit_name="step")
    dataset = train_batches(images, labels, global_batch, current, run.seed, run.shuffle, skip=epoch_start)
    bpds, skipped, start = [], 0, time.perf_counter()
    for element in trainer.strategy.experimental_distribute_dataset(dataset):
        tick, before = time.perf_counter(), trainer.step
        loss = float(trainer.train_step(*element).numpy())
        bpd = bits_per_dim(-loss, dims * global_batch)
        if trainer.step == before:  # float16: non-finite gradients, skipped; the scale halved
            _check_loss_scale(trainer, current)
            position["batch"].assign_add(1)
            skipped += 1
            stop_requested()
            continue
        if not math.isfinite(bpd):
            raise NonFiniteLoss(f"non-finite training loss at step {trainer.step} (epoch "
                                f"{current}); the last good checkpoint is kept")
        position["batch"].assign_add(1)
        bpds.append(bpd)
        seconds = time.perf_counter() - tick
        progress.update(int(position["batch"].numpy()), values=[("bpd", bpd),
                                                                ("images/s", global_batch / seconds)])
        with writer["train"].as_default(step=trainer.step):
            tf.summary.scalar("bpd", bpd)
            tf.summary.scalar("learning_rate", trainer.config.learning_rate_at(trainer.step))
            tf.summary.scalar("images_per_sec", global_batch / seconds)
            tf.summary.scalar("step_seconds", seconds)
            if trainer.loss_scale is not None:
                tf.summary.scalar("loss_scale", trainer.loss_scale.scale)
        stop_requested()
    return bpds, skipped, start


def _write_completions(model, test_data, seed, save_dir):
    """completions.png (and _1x): the first COMPLETED_IMAGES test images, their top half given and the
    rest drawn COMPLETION_DRAWS times by the fast sampler; returns the unscaled grid."""
    images, labels = test_data
    images = np.asarray(images[:COMPLETED_IMAGES])
    labels = None if labels is None or not model.config.num_classes else labels[:COMPLETED_IMAGES]
    given_rows = images.shape[1] // 2
    completions = complete(model, images, given_rows=given_rows, num_samples=COMPLETION_DRAWS, seed=seed,
                           labels=labels, batch_size=len(images) * COMPLETION_DRAWS)
    pictures = model.distribution.pictures
    cells, columns = completion_rows(pictures(images), np.full(len(images), given_rows * images.shape[2]),
                                     pictures(completions))
    return write_grid_pngs(save_dir, cells, columns=columns, name="completions")


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
            completed = _write_completions(trainer.model, test_data, run.seed, run.save_dir)
    train_bpd = float(np.mean(bpds)) if bpds else float("nan")
    with writer["test"].as_default(step=trainer.step):
        tf.summary.scalar("bpd", test_bpd)
        if grid is not None:
            tf.summary.image("samples", grid[None], max_outputs=1)
            tf.summary.image("completions", completed[None], max_outputs=1)
    with writer["train"].as_default(step=trainer.step):
        tf.summary.scalar("epoch_bpd", train_bpd)
    log(f"epoch {epoch}: train bpd {train_bpd:.4f}, test bpd {test_bpd:.4f} (EMA), step "
        f"{trainer.step}, {time.perf_counter() - start:.0f}s")

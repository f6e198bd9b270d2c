"""Train PixelSNAIL with the original's recipe on tf.distribute (one or many GPUs, or CPU replicas).

  pixelsnail-train --dataset=cifar10 --nr_gpu=8 --save_dir=runs/cifar10
  pixelsnail-train --dataset=npz --data_dir=mydata --nr_filters=64 --nr_resnet=1 --attn_rep=2
  pixelsnail-train --dataset=npz --data_dir=codes --output=categorical --num_codes=512  (a VQ-VAE prior)

Rerunning the same command resumes from the newest checkpoint in --save_dir; so does
`pixelsnail-train --save_dir=DIR` alone: the run's folder records its flags (DIR/flags.txt).
"""

import math
import os
import sys

import keras
import tensorflow as tf
from absl import flags

from pixelsnail_tf import cli, data
from pixelsnail_tf.config import PRESETS
from pixelsnail_tf.errors import reason
from pixelsnail_tf.runs import CheckpointNotSaved, NonFiniteLoss, RunConfig, TrainingStopped, fit, run_folder
from pixelsnail_tf.training import TrainConfig, build_trainer, make_strategy

# Ranges checked when the flags are parsed; NaN fails every comparison, so each asks for a finite
# number first.
RANGES = [("learning_rate", lambda v: v > 0, "> 0"),
          ("lr_decay", lambda v: 0 < v <= 1, "in (0, 1]"),
          ("polyak_decay", lambda v: 0 <= v < 1, "in [0, 1)"),
          ("dropout_p", lambda v: 0 <= v < 1, "in [0, 1)")]
# What a resumed run may set otherwise than its folder's flags.txt records: how long and how often,
# the optimizer's rates from here on, where the data is, how it computes. Every other flag given must
# agree with the record (the model, the data and its order, the batch).
MAY_CHANGE_ON_RESUME = {"max_epochs", "save_interval", "num_samples", "learning_rate", "lr_decay",
                        "polyak_decay", "nr_gpu", "accum_steps", "data_dir", "kernels", "mixed_precision",
                        "allow_tf32", "recompute"}


def define_flags(fv):
    d, r = TrainConfig(), RunConfig(save_dir="")
    flags.DEFINE_string("dataset", None, data.DATASET_HELP + "; default cifar10", flag_values=fv)
    flags.DEFINE_enum("data_set", None, list(data.ORIGINAL_NAMES), "the original's name: cifar or imagenet",
                      flag_values=fv)
    flags.DEFINE_string("data_dir", None, "where the data set is (default ./data; for downloads "
                        "through tensorflow_datasets: its own data directory); see pixelsnail-evaluate "
                        "--help for the layouts", flag_values=fv)
    flags.DEFINE_string("save_dir", None, "the run's folder: checkpoints, config.json, flags.txt, "
                        "samples.png, logs/ (default runs/<dataset>; for folder:PATH runs/<PATH's name>)",
                        flag_values=fv)
    flags.DEFINE_integer("save_interval", r.save_interval, "checkpoint, evaluate and sample every this many "
                         "epochs (epoch 0 and the last epoch included)", lower_bound=1, flag_values=fv)
    flags.DEFINE_string("init_checkpoint", None, "start from an original TF1 checkpoint (weights, averages, "
                        "Adam state and its step count; the learning rate follows that step)", flag_values=fv)
    flags.DEFINE_bool("class_conditional", False, "condition on class labels (one-hot into every gated "
                      "layer, as PixelCNN++)", flag_values=fv)
    flags.DEFINE_float("learning_rate", d.learning_rate, "initial learning rate", flag_values=fv)
    flags.DEFINE_float("lr_decay", d.lr_decay, "learning rate multiplied by this before every step",
                       flag_values=fv)
    flags.DEFINE_integer("batch_size", d.batch_size, "images per replica per step", lower_bound=1,
                         flag_values=fv)
    flags.DEFINE_integer("accum_steps", d.accum_steps, "micro-batches of --batch_size images per replica "
                         "whose gradients add up to one optimizer step (gradient accumulation: the "
                         "update of a K times larger batch, in the memory of one micro-batch)",
                         lower_bound=1, flag_values=fv)
    flags.DEFINE_enum("worker_gradients", d.worker_gradients, ["mean", "sum"], "with TF_CONFIG (several "
                      "machines): the gradients of the workers averaged, as the original's MPI processes "
                      "(each summing over its own GPUs), or summed over every replica as on one machine",
                      flag_values=fv)
    flags.DEFINE_integer("init_batch_size", d.init_batch_size, "images of the data-dependent init",
                         lower_bound=1, flag_values=fv)
    flags.DEFINE_float("dropout_p", 0.5, "dropout probability in every gated residual layer", flag_values=fv)
    flags.DEFINE_enum("preset", None, sorted(PRESETS), "start from a named model config (the published "
                      "cifar10, cifar10_pool2, imagenet32, or the small demo); model flags and --dropout_p "
                      "given explicitly override it", flag_values=fv)
    flags.DEFINE_integer("max_epochs", r.max_epochs, "epochs to train", lower_bound=1, flag_values=fv)
    flags.DEFINE_integer("nr_gpu", None, "replicas: local GPUs to use (default all), or logical CPU "
                         "devices on a machine without GPUs", lower_bound=1, flag_values=fv)
    flags.DEFINE_float("polyak_decay", d.polyak_decay, "decay of the Polyak average of the weights",
                       flag_values=fv)
    flags.DEFINE_integer("seed", r.seed, "seed of the data order, init batch and sample noise",
                         lower_bound=0, upper_bound=2**32 - 1, flag_values=fv)
    flags.DEFINE_bool("shuffle", r.shuffle, "shuffle the training set every epoch", flag_values=fv)
    flags.DEFINE_integer("num_samples", r.num_samples, "images drawn every save interval (0: none)",
                         lower_bound=0, flag_values=fv)
    flags.DEFINE_string("image_size", None, "H,W of the training images (default: the data's; "
                        "folder:PATH data is resized to it, default 32,32); recorded in the run's "
                        "flags.txt, where sampling and export take it from", flag_values=fv)
    flags.register_validator("image_size", lambda text: text is None or cli.image_size_is_valid(text),
                             message=cli.IMAGE_SIZE_FORM, flag_values=fv)
    cli.define_model_flags(fv)
    cli.define_precision_flag(fv)
    cli.define_kernels_flag(fv)
    flags.DEFINE_bool("recompute", False, "keep only each attention block's input (PixelCNN++: each "
                      "gated layer pair's) for the backward pass and compute the rest again there: the "
                      "same gradients in less memory, for about a third more compute (docs/speed.md)",
                      flag_values=fv)
    for name, accept, wanted in RANGES:
        flags.register_validator(name, lambda v, accept=accept: math.isfinite(v) and accept(v),
                                 message=f"--{name} must be a finite number {wanted}", flag_values=fv)


def own_flag_names():
    names = flags.FlagValues()
    define_flags(names)
    return sorted(names)


def recorded_flags(directory):
    """The flags of the run in `directory` (its flags.txt, read as this program's), or None: the one
    reader of flags.txt for every program."""
    return run_folder.read_flags(directory, define_flags)


def take_recorded_flags(values, save_dir):
    """Flags not given take the values that save_dir's flags.txt records (their names are returned); a
    given one that contradicts the record (and may not change on resume) is refused."""
    recorded = recorded_flags(save_dir)
    taken = set()
    for name in sorted(recorded or ()):
        if name == "save_dir" or recorded[name].value == values[name].value:
            continue
        if not values[name].present:
            values[name].value = recorded[name].value
            taken.add(name)
        elif name not in MAY_CHANGE_ON_RESUME:
            raise ValueError(f"{values[name].serialize()} contradicts the run in {save_dir}, which has "
                             f"{recorded[name].serialize() or f'no --{name}'}; omit it to resume, or start "
                             f"another --save_dir")
    return taken


def flagfile(values):
    """The flags of this start as an absl flagfile (flags with no value left out)."""
    lines = [values[name].serialize() for name in own_flag_names()]
    return "".join(f"{line}\n" for line in lines if line)


def default_save_dir(dataset):
    """runs/<dataset>, or runs/<the folder's name> for folder:PATH."""
    if dataset.startswith(data.FOLDER):
        dataset = os.path.basename(os.path.abspath(dataset[len(data.FOLDER):])) or "folder"
    return os.path.join("runs", dataset)


def main(values):
    dataset = values.dataset or data.ORIGINAL_NAMES.get(values.data_set, "cifar10")
    save_dir = values.save_dir or default_save_dir(dataset)
    try:
        taken = take_recorded_flags(values, save_dir)
        dataset = values.dataset = values.dataset or data.ORIGINAL_NAMES.get(values.data_set, "cifar10")
        strategy = make_strategy(values.nr_gpu)  # first: multi-worker collectives start with the program
        keras.utils.set_random_seed(values.seed)  # the initial draw of the weights, dropout
        wanted = cli.image_size(values.image_size) if values.image_size else None
        train_images, train_labels = data.load_split(dataset, "train", values.data_dir, wanted)
        test_images, test_labels = data.load_split(dataset, "test", values.data_dir, wanted)
        size = list(train_images.shape[1:3])
        if wanted is not None and wanted != size:
            source = f" (recorded in {save_dir}/flags.txt)" if "image_size" in taken else ""
            raise ValueError(f"--image_size={values.image_size}{source}, but the training images are "
                             f"{size[0]}x{size[1]}")
        values.image_size = f"{size[0]},{size[1]}"
        num_classes = 0
        if values.class_conditional:
            if train_labels is None:
                raise ValueError(f"--class_conditional needs labels, and {dataset} has none")
            num_classes = int(max(train_labels.max(), test_labels.max())) + 1
        else:
            train_labels = test_labels = None
        if values.preset:
            overrides = cli.explicit_model_flags(values)
            if values["dropout_p"].present:
                overrides["dropout_p"] = values.dropout_p
            model_config = PRESETS[values.preset].replace(num_classes=num_classes, **overrides)
        else:
            model_config = cli.model_config_from_flags(values.flag_values_dict(),
                                                       dropout_p=values.dropout_p, num_classes=num_classes)
        train_config = TrainConfig(
            learning_rate=values.learning_rate, lr_decay=values.lr_decay, polyak_decay=values.polyak_decay,
            batch_size=values.batch_size, init_batch_size=values.init_batch_size,
            accum_steps=values.accum_steps, worker_gradients=values.worker_gradients)
        run = RunConfig(save_dir=save_dir, max_epochs=values.max_epochs,
                        save_interval=values.save_interval, num_samples=values.num_samples,
                        shuffle=values.shuffle, seed=values.seed, init_checkpoint=values.init_checkpoint,
                        flags=flagfile(values), data_source=f"--dataset={dataset}")
        trainer = build_trainer(model_config, train_config, strategy, seed=values.seed,
                                recompute=values.recompute, **cli.model_options(values.flag_values_dict()))
        fit(trainer, (train_images, train_labels), (test_images, test_labels), run)
    except (NonFiniteLoss, CheckpointNotSaved) as error:
        cli.fail(error)
    except TrainingStopped:
        sys.exit(0)
    except KeyboardInterrupt:
        cli.fail("interrupted before training started; nothing was written")
    except (ValueError, FileNotFoundError) as error:
        cli.fail(error)
    except tf.errors.OpError as error:  # e.g. a disk that is full while writing a summary
        cli.fail(f"TensorFlow stopped the run: {reason(error)}")


def run():
    cli.run_program(sys.modules[__name__])

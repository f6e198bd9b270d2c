"""Train PixelSNAIL with the original's recipe on tf.distribute (one or many GPUs, or CPU replicas).

  python train.py --dataset=cifar10 --nr_gpu=8 --save_dir=runs/cifar10
  python train.py --dataset=npz --data_dir=mydata --nr_filters=64 --nr_resnet=1 --attn_rep=2

Rerunning the same command resumes from the latest checkpoint in --save_dir.
"""

import math
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app, flags  # noqa: E402

from pixelsnail_tf import cli, data  # noqa: E402
from pixelsnail_tf.config import PRESETS  # noqa: E402
from pixelsnail_tf.fit import NonFiniteLoss, RunConfig, TrainingStopped, fit  # noqa: E402
from pixelsnail_tf.training import TrainConfig, Trainer, make_strategy  # noqa: E402

DEFAULTS = TrainConfig()
RUN_DEFAULTS = RunConfig(save_dir="")
flags.DEFINE_string("dataset", None, "cifar10, imagenet32 or npz (<data_dir>/train.npz, test.npz with "
                    "uint8 x [N,H,W,3] and optional int y); default cifar10")
flags.DEFINE_enum("data_set", None, list(data.ORIGINAL_NAMES), "the original's name: cifar or imagenet")
flags.DEFINE_string("data_dir", "./data", "data root (see evaluate.py --help for the layouts)")
flags.DEFINE_string("save_dir", None, "the run's folder: checkpoints, config.json, samples.png, logs/ "
                    "(default runs/<dataset>)")
flags.DEFINE_integer("save_interval", RUN_DEFAULTS.save_interval, "checkpoint, evaluate and sample every "
                     "this many epochs (epoch 0 and the last epoch included)", lower_bound=1)
flags.DEFINE_string("init_checkpoint", None, "start from an original TF1 checkpoint (weights, averages, "
                    "Adam state and its step count; the learning rate follows that step)")
flags.DEFINE_bool("class_conditional", False, "condition on class labels (one-hot into every gated "
                  "layer, as PixelCNN++)")
flags.DEFINE_float("learning_rate", DEFAULTS.learning_rate, "initial learning rate")
flags.DEFINE_float("lr_decay", DEFAULTS.lr_decay, "learning rate multiplied by this before every step")
flags.DEFINE_integer("batch_size", DEFAULTS.batch_size, "images per replica per step", lower_bound=1)
flags.DEFINE_integer("init_batch_size", DEFAULTS.init_batch_size, "images of the data-dependent init",
                     lower_bound=1)
flags.DEFINE_float("dropout_p", 0.5, "dropout probability in every gated residual layer")
flags.DEFINE_enum("preset", None, sorted(PRESETS), "start from a named model config (the published "
                  "cifar10, cifar10_pool2, imagenet32, or the small demo); model flags and --dropout_p "
                  "given explicitly override it")
flags.DEFINE_integer("max_epochs", RUN_DEFAULTS.max_epochs, "epochs to train", lower_bound=1)
flags.DEFINE_integer("nr_gpu", None, "replicas: local GPUs to use (default all), or logical CPU "
                     "devices on a machine without GPUs")
flags.DEFINE_float("polyak_decay", DEFAULTS.polyak_decay, "decay of the Polyak average of the weights")
flags.DEFINE_integer("seed", RUN_DEFAULTS.seed, "seed of the data order, init batch and sample noise")
flags.DEFINE_bool("shuffle", RUN_DEFAULTS.shuffle, "shuffle the training set every epoch")
flags.DEFINE_integer("num_samples", RUN_DEFAULTS.num_samples, "images drawn every save interval (0: none)",
                     lower_bound=0)
cli.define_model_flags()
cli.define_precision_flag()
cli.define_kernels_flag()
flags.adopt_module_key_flags(cli)
FLAGS = flags.FLAGS

# Ranges that absl checks when it parses the flags (one line and exit status 1 otherwise); NaN fails
# every comparison, so each check asks for a finite number first.
for name, accept, wanted in [("learning_rate", lambda v: v > 0, "> 0"),
                             ("lr_decay", lambda v: 0 < v <= 1, "in (0, 1]"),
                             ("polyak_decay", lambda v: 0 <= v < 1, "in [0, 1)"),
                             ("dropout_p", lambda v: 0 <= v < 1, "in [0, 1)")]:
    flags.register_validator(name, lambda v, accept=accept: math.isfinite(v) and accept(v),
                             message=f"--{name} must be a finite number {wanted}")


def main(argv):
    del argv
    dataset = FLAGS.dataset or data.ORIGINAL_NAMES.get(FLAGS.data_set, "cifar10")
    try:
        strategy = make_strategy(FLAGS.nr_gpu)  # first: multi-worker collectives start with the program
        keras.utils.set_random_seed(FLAGS.seed)  # the initial draw of the weights, dropout
        train_images, train_labels = data.load_split(dataset, "train", FLAGS.data_dir)
        test_images, test_labels = data.load_split(dataset, "test", FLAGS.data_dir)
        num_classes = 0
        if FLAGS.class_conditional:
            if train_labels is None:
                raise ValueError(f"--class_conditional needs labels, and {dataset} has none")
            num_classes = int(max(train_labels.max(), test_labels.max())) + 1
        else:
            train_labels = test_labels = None
        if FLAGS.preset:
            overrides = cli.explicit_model_flags(FLAGS)
            if FLAGS["dropout_p"].present:
                overrides["dropout_p"] = FLAGS.dropout_p
            model_config = PRESETS[FLAGS.preset].replace(num_classes=num_classes, **overrides)
        else:
            model_config = cli.model_config_from_flags(FLAGS.flag_values_dict(),
                                                       dropout_p=FLAGS.dropout_p, num_classes=num_classes)
        train_config = TrainConfig(
            learning_rate=FLAGS.learning_rate, lr_decay=FLAGS.lr_decay, polyak_decay=FLAGS.polyak_decay,
            batch_size=FLAGS.batch_size, init_batch_size=FLAGS.init_batch_size)
        run = RunConfig(save_dir=FLAGS.save_dir or os.path.join("runs", dataset),
                        max_epochs=FLAGS.max_epochs, save_interval=FLAGS.save_interval,
                        num_samples=FLAGS.num_samples, shuffle=FLAGS.shuffle, seed=FLAGS.seed,
                        init_checkpoint=FLAGS.init_checkpoint)
        if len(train_images) < train_config.batch_size * strategy.num_replicas_in_sync:
            raise ValueError(f"{len(train_images)} training images are fewer than one global batch")
        trainer = Trainer(model_config, train_config, strategy,
                          **cli.model_options(FLAGS.flag_values_dict()))
        fit(trainer, (train_images, train_labels), (test_images, test_labels), run)
    except NonFiniteLoss as error:
        cli.fail(error)
    except TrainingStopped:
        sys.exit(0)
    except KeyboardInterrupt:
        cli.fail("interrupted before training started; nothing was written")
    except (ValueError, FileNotFoundError) as error:
        cli.fail(error)
    except tf.errors.OpError as error:  # e.g. a disk that is full while saving: older checkpoints stay
        cli.fail(cli.first_line(error))


if __name__ == "__main__":
    app.run(main)

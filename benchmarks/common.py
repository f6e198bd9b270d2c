"""What the benchmarks share: their flags, the scheduling knobs and the one-line machine description."""

import os
import platform

import tensorflow as tf
from absl import flags

from pixelsnail_tf import cli
from pixelsnail_tf.distributions import distribution_of
from pixelsnail_tf.models import build_model
from pixelsnail_tf.sampling import draw_noise


def define_flags(what):
    """--batch_size, --iters, --image_size and the model flags of evaluate.py."""
    flags.DEFINE_integer("batch_size", 8, f"images per {what}")
    flags.DEFINE_integer("iters", 5, f"timed repetitions of the {what} (after one untimed warm-up)",
                          lower_bound=1)
    flags.DEFINE_integer("image_size", 32, "height and width of the images")
    cli.define_model_flags()
    cli.define_precision_flag()
    cli.define_kernels_flag()
    flags.adopt_module_key_flags(cli)


EXECUTORS = {"default": "", "single_threaded": "SINGLE_THREADED_EXECUTOR"}


def define_scheduling_flags(executor=True):
    """--inter_op_threads and (executor=True) --executor: TensorFlow's knobs for the cost of scheduling
    an op."""
    flags.DEFINE_integer("inter_op_threads", 0, "TensorFlow's inter-op thread pool (0: its default, one per "
                         "core): how many ops of a graph may run at once", lower_bound=0)
    if executor:
        flags.DEFINE_enum("executor", "default", list(EXECUTORS), "the executor of the timed functions: "
                          "default (TensorFlow's, schedules each op on the inter-op pool) or single_threaded "
                          "(runs the ops in order on the calling thread, as tf.data's small functions)")


def define_sampling_flags():
    """--num_samples, --image_size, the scheduling knobs and the model flags of evaluate.py (the
    benchmarks of the samplers)."""
    flags.DEFINE_integer("num_samples", 8, "images drawn together")
    flags.DEFINE_integer("image_size", 32, "height and width of the images")
    define_scheduling_flags()
    cli.define_model_flags()
    cli.define_precision_flag()
    cli.define_kernels_flag()
    flags.adopt_module_key_flags(cli)


def model_and_noise():
    """For the samplers' benchmarks, after --inter_op_threads is set: the model of the flags (dropout
    off) built for --image_size, and the noise of --num_samples images (seed 0)."""
    set_inter_op_threads()
    values = flags.FLAGS.flag_values_dict()
    config = cli.model_config_from_flags(values, dropout_p=0.0)
    model = build_model(config, **cli.model_options(values))
    size = values["image_size"]
    model.build((None, size, size, 3))
    return config, model, draw_noise(distribution_of(config), values["num_samples"], size, size, seed=0)


def set_inter_op_threads():
    """--inter_op_threads, before TensorFlow starts its thread pools."""
    if flags.FLAGS.inter_op_threads:
        tf.config.threading.set_inter_op_parallelism_threads(flags.FLAGS.inter_op_threads)


def executor():
    """The context in which tf.functions run with --executor."""
    return tf.experimental.function_executor_type(EXECUTORS[flags.FLAGS.executor])


def machine():
    """One line naming the CPU (or GPU) this ran on."""
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        return ", ".join(tf.config.experimental.get_device_details(g).get("device_name", g.name)
                         for g in gpus)
    cpu = platform.processor()
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        cpu = names[0] if names else cpu
    return f"{cpu}, {len(os.sched_getaffinity(0))} cores available"

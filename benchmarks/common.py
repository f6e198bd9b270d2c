"""What the benchmarks share: their flags and the one-line machine description."""

import os
import platform

import tensorflow as tf
from absl import flags

from pixelsnail_tf import cli


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

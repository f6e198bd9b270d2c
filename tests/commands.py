"""Runs a command-line program of pixelsnail_tf.commands inside the test process (no TensorFlow start-up
per call): its flags parsed from argv as absl would, its main run, the outcome returned as a
subprocess would report it. The console commands themselves are run as processes in test_install."""

import contextlib
import dataclasses
import io
import os
import sysconfig

from absl import flags, logging
import tensorflow as tf


@dataclasses.dataclass
class Outcome:
    returncode: int
    stdout: str
    stderr: str


def installed_command(name):
    """Path of the console command `name` of the environment pytest runs in (its bin/), activated or not:
    the one on PATH may belong to another Python."""
    return os.path.join(sysconfig.get_path("scripts"), name)


def invoke(module, *argv):
    """Outcome of `pixelsnail-<module> argv...`. An exception other than SystemExit propagates: where
    the program would print a traceback, the test fails."""
    values = flags.FlagValues()
    module.define_flags(values)
    stdout, stderr = io.StringIO(), io.StringIO()
    verbosity, tf_level = logging.get_verbosity(), tf.get_logger().level
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            try:
                values(["program", *argv])
                values.validate_all_flags()
            except flags.Error as error:  # what absl.app prints for a flag it cannot parse
                raise SystemExit(f"FATAL Flags parsing error: {error}") from None
            module.main(values)
        code = 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
        if isinstance(exit_.code, str):
            stderr.write(exit_.code + "\n")
    finally:
        logging.set_verbosity(verbosity)
        tf.get_logger().setLevel(tf_level)
    return Outcome(code, stdout.getvalue(), stderr.getvalue())

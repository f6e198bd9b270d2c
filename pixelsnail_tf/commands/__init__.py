"""The command-line programs: train, evaluate, sample, export, convert (flags -> config -> library call).

Each module defines its flags on a FlagValues (`define_flags`), works on the parsed values (`main`)
and is run as a program by `run()`: the console commands `pixelsnail-<name>` (setup.cfg) and the
top-level scripts (`train.py`, ...) call it.

Importing this package loads TensorFlow with its C++ start-up lines (oneDNN, CUDA probing, a missing GPU driver) kept off
the terminal; `--verbosity=N` (or -v) on the command line shows them again.
"""

import os
import sys


def _load_tensorflow_quietly():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "tensorflow" in sys.modules or any(a.startswith(("--verbosity", "-v")) for a in sys.argv[1:]):
        return
    # TensorFlow's C++ libraries write these lines to file descriptor 2 while they load, before any
    # setting can reach them; Python's own errors are raised after the descriptor is restored.
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            import keras  # noqa: F401
            import tensorflow
            tensorflow.config.list_physical_devices()  # probes the GPU driver (a line when absent)
    finally:
        os.dup2(saved, 2)
        os.close(saved)


_load_tensorflow_quietly()

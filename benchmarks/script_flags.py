"""Flags the benchmark scripts share without importing TensorFlow: --original_repo, checked, and the
parsing of a script that runs other scripts (compare.py, knobs.py)."""

import os
import sys

from absl import flags


def define_original_repo_flag():
    """--original_repo: a checkout of neocxi/pixelsnail-public; any other folder is one line at start."""
    flags.DEFINE_string("original_repo", None, "folder of a neocxi/pixelsnail-public checkout", required=True)
    flags.register_validator("original_repo",
                             lambda path: os.path.isfile(os.path.join(path, "pixel_cnn_pp", "model.py")),
                             "must be a checkout of neocxi/pixelsnail-public (with pixel_cnn_pp/model.py)")


def parse_known(argv):
    """absl's flags_parser for app.run in a script that passes flags on: its own flags parsed, the rest
    returned (argv[0] first); a bad value of its own is one line, as absl says it for a plain script."""
    try:
        return flags.FLAGS(argv, known_only=True)
    except flags.Error as error:
        sys.exit(f"{os.path.basename(argv[0])}: {error}")

"""Sizes checked against the machine before anything is allocated.

A size the user or a client chooses (an image size, a batch, a count of samples) is compared here with
what the machine has, so that one that cannot fit ends in one line instead of TensorFlow's raw
out-of-memory message or the kernel's kill. The estimates are lower bounds (one tensor that must exist
at once), so a size refused here could never have run; one accepted may still be too large.
"""

import os
import shutil

_FLOAT_BYTES = 4


def machine_memory():
    """Bytes of memory this process may use: the machine's, or its container's limit where lower."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(path) as f:
                total = min(total, int(f.read().strip()))
        except (OSError, ValueError):  # no such file, or "max"
            continue
    return total


def readable(nbytes):
    """'3.2 GB' (powers of 1000)."""
    for unit in ("bytes", "kB", "MB", "GB", "TB", "PB"):
        if nbytes < 1000 or unit == "PB":
            return f"{nbytes:.0f} {unit}" if unit == "bytes" else f"{nbytes:.1f} {unit}"
        nbytes /= 1000


def forward_bytes(config, batch, height, width, whole_image=True):
    """A lower bound of the memory of `batch` images through a model of ModelConfig `config`: its residual
    stream (nr_filters channels per pixel) and, for PixelSNAIL over the whole image, one block's
    attention weights (every pixel against every pixel). whole_image=False: one pixel step of the fast
    sampler, whose attention reads cached keys and values instead."""
    pixels = batch * height * width
    stream = pixels * config.nr_filters * _FLOAT_BYTES
    attention = pixels * height * width * _FLOAT_BYTES if whole_image and config.num_blocks else 0
    return stream + attention


def check_fits(nbytes, what, advice):
    """ValueError (one line) when `nbytes` exceed the machine's memory: '<what> needs at least ...'."""
    available = machine_memory()
    if nbytes > available:
        raise ValueError(f"{what} needs at least {readable(nbytes)}, more than this machine's "
                         f"{readable(available)} of memory; {advice}")


def check_disk(folder, nbytes, what, advice):
    """ValueError (one line) when writing `nbytes` to `folder` would not fit on its disk."""
    free = shutil.disk_usage(folder).free
    if nbytes > free:
        raise ValueError(f"{what} would take {readable(nbytes)}, more than the {readable(free)} free in "
                         f"{folder}; {advice}")

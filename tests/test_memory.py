"""Sizes against the machine (pixelsnail_tf.memory): the lower bounds, and the one-line refusals."""

import shutil

import pytest

from conftest import small_config
from pixelsnail_tf import memory


def test_forward_bytes_is_the_stream_plus_one_attention_matrix():
    attention = small_config(nr_filters=8)  # PixelSNAIL: blocks of attention
    assert memory.forward_bytes(attention, 2, 4, 8) == 2 * 32 * 8 * 4 + 2 * 32 * 32 * 4
    assert memory.forward_bytes(attention, 2, 4, 8, whole_image=False) == 2 * 32 * 8 * 4  # one pixel step
    assert memory.forward_bytes(small_config(model="pxpp"), 2, 4, 8) == 2 * 32 * 8 * 4  # no attention


def test_readable_sizes():
    assert [memory.readable(n) for n in (999, 1000, 25_300_000_000, 3.1e15, 8e20)] == [
        "999 bytes", "1.0 kB", "25.3 GB", "3.1 PB", "800000.0 PB"]


def test_what_does_not_fit_is_one_line(monkeypatch, tmp_path):
    monkeypatch.setattr(memory, "machine_memory", lambda: 2_000_000_000)
    memory.check_fits(2_000_000_000, "a batch", "lower it")
    with pytest.raises(ValueError) as error:
        memory.check_fits(2_000_000_001, "a batch", "lower it")
    assert str(error.value) == ("a batch needs at least 2.0 GB, more than this machine's 2.0 GB of memory; "
                                "lower it")
    free = shutil.disk_usage(tmp_path).free
    memory.check_disk(tmp_path, free // 2, "the samples", "lower --num_samples")
    with pytest.raises(ValueError, match=f"the samples would take .* more than the .* free in {tmp_path}; "):
        memory.check_disk(tmp_path, free * 2, "the samples", "lower --num_samples")


def test_machine_memory_is_at_most_the_physical_memory():
    import os
    assert 0 < memory.machine_memory() <= os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")

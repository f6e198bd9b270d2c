"""The one line a user reads of an exception (pixelsnail_tf.errors)."""

import tensorflow as tf

from pixelsnail_tf.errors import first_line, reason


def test_first_line_drops_what_follows_and_shortens():
    error = tf.errors.NotFoundError(None, None, "no such file: a.ckpt\n\t [[{{node RestoreV2}}]]")
    assert first_line(error) == "no such file: a.ckpt"
    assert first_line(ValueError("x" * 50), limit=10) == "xxxxxxx..."
    assert first_line(KeyError()) == "KeyError"


def test_reason_keeps_the_system_s_cause_at_the_end():
    error = tf.errors.ResourceExhaustedError(None, None, "Failed to flush 9 bytes to file /runs/" + "a" * 200
                                             + "/ckpt-4_temp/part: No space left on device [Op:SaveV2]")
    line = reason(error)
    assert len(line) == 120 and line.startswith("...")
    assert line.endswith("ckpt-4_temp/part: No space left on device")
    assert reason(OSError("Read-only file system")) == "Read-only file system"

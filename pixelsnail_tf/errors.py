"""Turning exceptions into the one line a user reads."""

import re


def first_line(error, limit=None):
    """The first line of an exception's message (TensorFlow's carry stack traces after it), at most
    `limit` characters; the exception's type where it has no message."""
    lines = str(getattr(error, "message", error)).strip().splitlines()
    line = lines[0] if lines else type(error).__name__
    return line if limit is None or len(line) <= limit else line[:limit - 3] + "..."


def reason(error, limit=120):
    """The cause in an exception's first line, at most `limit` characters: TensorFlow's I/O errors end
    with the system's reason ("... ; No space left on device [Op:SaveV2]"), so the end is kept."""
    line = re.sub(r"\s*\[Op:\w+\]\s*$", "", first_line(error))
    return line if len(line) <= limit else "..." + line[-(limit - 3):]

"""Turning exceptions into the one line a user reads."""


def first_line(error, limit=None):
    """The first line of an exception's message (TensorFlow's carry stack traces after it), at most
    `limit` characters; the exception's type where it has no message."""
    lines = str(getattr(error, "message", error)).strip().splitlines()
    line = lines[0] if lines else type(error).__name__
    return line if limit is None or len(line) <= limit else line[:limit - 3] + "..."

"""Readable causes for PyAV errors: FFmpeg's message without its errno and the file name."""
from __future__ import annotations

import re

_ERRNO = re.compile(r"^\[Errno -?\d+\]\s*")


def av_cause(e: BaseException) -> str:
    """``[Errno 1094995529] Invalid data found when processing input: 'x.mp4'`` becomes
    ``Invalid data found when processing input`` (the caller names the file)."""
    text = getattr(e, "strerror", None)
    if not isinstance(text, str) or not text:
        text = _ERRNO.sub("", str(e))
        filename = getattr(e, "filename", None)
        if filename:
            text = text.replace(f": {filename!r}", "").replace(f": '{filename}'", "")
    return text.strip().rstrip(".") or type(e).__name__

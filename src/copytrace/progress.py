"""How far the engine work of one request has got, for a job's progress.

The loops whose length grows with the media report it: decoding (the time decoded over the
file's duration) and the blocked audio alignment (rows done over rows). ``reporting(callback)``
sets ``callback(stage, fraction)`` for the calling thread; ``report`` calls it, at most every
``min_interval_s``, and does nothing outside ``reporting`` (one context-variable read).
A request may go through several stages (a video's frames, then its soundtrack, then the
alignment against each candidate), each from 0 to 1.
"""
from __future__ import annotations

import contextvars
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class _Reporter:
    def __init__(self, callback: Callable[[str, float], None], min_interval_s: float) -> None:
        self.callback = callback
        self.min_interval_s = min_interval_s
        self.last = (None, -float("inf"))  # stage, time of the last call

    def __call__(self, stage: str, fraction: float) -> None:
        now = time.monotonic()
        if stage == self.last[0] and now - self.last[1] < self.min_interval_s:
            return
        self.last = (stage, now)
        self.callback(stage, min(1.0, max(0.0, float(fraction))))


_current: contextvars.ContextVar[_Reporter | None] = contextvars.ContextVar(
    "copytrace_progress", default=None)


@contextmanager
def reporting(callback: Callable[[str, float], None] | None,
              min_interval_s: float = 0.5) -> Iterator[None]:
    """Within this block (on this thread) progress goes to ``callback(stage, fraction)``;
    None: nowhere. A stage's first report always passes, then one per ``min_interval_s``."""
    token = _current.set(None if callback is None else _Reporter(callback, min_interval_s))
    try:
        yield
    finally:
        _current.reset(token)


def report(stage: str, fraction: float) -> None:
    r = _current.get()
    if r is not None:
        r(stage, fraction)

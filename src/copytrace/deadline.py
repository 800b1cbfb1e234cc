"""A time limit for the engine work of one request, checked cooperatively.

Threads cannot be stopped from outside, so the loops that take time with the length of the
media check the limit themselves: decoding (each audio frame, each video frame) and the
blocked audio similarity (each row block). ``within(seconds)`` sets the limit for the calling
thread; past it, the next ``check()`` raises ``DeadlineExceeded``, which unwinds like any error:
nothing is written to the store before a file has been described, so a stopped request leaves
it as it was. Outside ``within`` a check costs one context-variable read and does nothing.
"""
from __future__ import annotations

import contextvars
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from copytrace.errors import CopytraceError


class DeadlineExceeded(CopytraceError):
    """The work ran past its time limit and was stopped."""

    def __init__(self, limit_s: float, where: str) -> None:
        self.limit_s = limit_s
        self.where = where
        super().__init__(f"stopped after the time limit of {limit_s:g} s ({where})")


@dataclass(frozen=True)
class Deadline:
    limit_s: float
    at: float  # time.monotonic() past which work stops


_current: contextvars.ContextVar[Deadline | None] = contextvars.ContextVar(
    "copytrace_deadline", default=None)


@contextmanager
def within(limit_s: float | None) -> Iterator[Deadline | None]:
    """Work in this block (on this thread) stops at the first check after ``limit_s`` seconds;
    None or 0: no limit. A limit already set by an outer block is kept when it is earlier."""
    if not limit_s:
        yield _current.get()
        return
    if limit_s < 0:
        raise ValueError(f"a time limit is a positive number of seconds, not {limit_s}")
    outer = _current.get()
    mine = Deadline(float(limit_s), time.monotonic() + float(limit_s))
    token = _current.set(mine if outer is None or mine.at < outer.at else outer)
    try:
        yield _current.get()
    finally:
        _current.reset(token)


def check(where: str) -> None:
    """Raise ``DeadlineExceeded`` when the calling thread's time limit has passed; ``where``
    names the stage for the error ("decoding audio")."""
    d = _current.get()
    if d is not None and time.monotonic() > d.at:
        raise DeadlineExceeded(d.limit_s, where)


def remaining_s() -> float | None:
    """Seconds left before the limit (None: no limit)."""
    d = _current.get()
    return None if d is None else d.at - time.monotonic()

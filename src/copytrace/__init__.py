"""copytrace: find which registered works a suspect file copies, and exactly where.

Importing this package is cheap: no torch, no model load. ``copytrace.open(db)`` returns a
``Library`` (see ``copytrace.engine``).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"

if TYPE_CHECKING:
    from copytrace.engine import EngineConfig, Library


def open(db: str | None = None, config: EngineConfig | None = None,
         create: bool = True) -> Library:
    """Open (or create) a copytrace library at ``db`` (a directory). See ``Library``.
    ``create=False`` raises ``copytrace.errors.LibraryNotFoundError`` when there is none."""
    from copytrace.engine import Library

    return Library.open(db, config, create=create)


__all__ = ["__version__", "open"]

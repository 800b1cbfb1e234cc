"""Errors users see. Each names the file (when there is one) and the cause."""
from __future__ import annotations


class CopytraceError(Exception):
    """Base class for every error copytrace raises on purpose."""


class MediaError(CopytraceError):
    """A file could not be decoded: corrupt, truncated, unsupported, or over a limit."""

    def __init__(self, path: str, cause: str) -> None:
        super().__init__(f"{path}: {cause}")
        self.path = path
        self.cause = cause

    def __reduce__(self):  # picklable, so worker processes can send it back
        return type(self), (self.path, self.cause)


class NotMediaError(MediaError):
    """The content is not media at all (plain text, an unknown format, a named pipe, a
    device): skipped inside folders, an error when the file is named explicitly."""


class UnknownWorkError(CopytraceError):
    def __init__(self, work_id: str) -> None:
        super().__init__(f"no registered work with id {work_id!r}")
        self.work_id = work_id

    def __reduce__(self):
        return type(self), (self.work_id,)


class StoreError(CopytraceError):
    """The catalogue or index is unusable (wrong model, corrupt file, locked too long)."""


class LibraryNotFoundError(StoreError):
    """No library at the given path, and the caller did not ask to create one."""


class ModelError(CopytraceError):
    """A descriptor model is missing, or its files disagree with its registry entry."""


class LedgerError(CopytraceError):
    """The registration log, a checkpoint, a proof or a key does not verify or is malformed."""

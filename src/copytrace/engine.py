"""The Library: the only place where decode, describe, index, align and report meet.

    lib = copytrace.open("~/my-library")
    lib.add("poster.jpg", title="Poster")
    result = lib.query("suspect.png")

A Library probes each file once (``media.probe.MediaInfo``), asks every registered signal
(``signals/``: visual, audio, ...) that describes such a file for its descriptors, stores them
in one transaction, and for a query gathers each signal's scored matches into one ranking. How
a signal describes, finds and scores is its own business (``signals/base.py``).
"""
from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from copytrace.config import DEFAULT_MIN_SCORE, EngineConfig
from copytrace.errors import CopytraceError, MediaError, NotMediaError, StoreError
from copytrace.media.probe import MediaInfo, Sniffed, file_sha256, probe, sniff
from copytrace.signals.base import Query, Signal, build_signals
from copytrace.signals.frames import describe_video_frames, suppress_query_overlaps
from copytrace.store import Store
from copytrace.types import Descriptors, QueryInfo, QueryResult, Work

log = logging.getLogger(__name__)

__all__ = ["DEFAULT_MIN_SCORE", "AddResult", "EngineConfig", "Library", "default_db_path",
           "describe_video_frames", "file_sha256", "iter_media_paths", "suppress_query_overlaps"]

FLUSH_EVERY_WORKS = 256
_KIND_NAMES = {"text": "plain text"}  # how an error names a sniffed kind no signal describes
FLUSH_EVERY_S = 30.0


def default_db_path() -> Path:
    """``$COPYTRACE_DB``, else ``$XDG_DATA_HOME/copytrace``, else ``~/.local/share/copytrace``."""
    env = os.environ.get("COPYTRACE_DB")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "copytrace"


@dataclass(frozen=True)
class AddResult:
    path: str
    work: Work
    created: bool


def _utf8(text: str) -> str:
    """A title from a command line or a file name, storable as text (bytes that are not UTF-8
    become U+FFFD)."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _check_query_args(top_k: int) -> None:
    if top_k < 1:
        raise ValueError("top_k must be >= 1")


def iter_media_paths(paths: Iterable[str]) -> Iterator[tuple[str, bool]]:
    """Expand folders recursively (sorted). Yields (path, named_explicitly).

    Inside folders, named pipes, sockets and devices are skipped without being opened (logged);
    a sub-folder that cannot be listed is yielded as explicit, so reading it reports why.
    Symbolic links to folders are not followed (no loops)."""
    for p in paths:
        if os.path.isdir(p):
            yield from _walk_folder(p)
        else:
            yield p, True


def _walk_folder(folder: str) -> Iterator[tuple[str, bool]]:
    from copytrace.media.probe import special_file_kind

    unreadable: list[str] = []
    for dirpath, dirnames, filenames in os.walk(folder, onerror=lambda e: unreadable.append(e.filename)):
        yield from ((d, True) for d in unreadable)
        unreadable.clear()
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            path = os.path.join(dirpath, name)
            try:
                special = special_file_kind(os.stat(path).st_mode)
            except OSError:
                special = None  # a broken link or a loop: reading it says which
            if special:
                log.info("skipping %s: %s", path, special)
                continue
            yield path, False
    yield from ((d, True) for d in unreadable)


class Library:
    """A registry of works on disk plus the signals (``signals/``) that describe and search it."""

    def __init__(self, store: Store, config: EngineConfig) -> None:
        self.store = store
        self.config = config
        self.signals: list[Signal] = build_signals(config, store)
        self._by_name = {s.name: s for s in self.signals}
        store.unindexed = frozenset(s.name for s in self.signals if not s.indexed)

    @classmethod
    def open(cls, db: str | os.PathLike | None = None, config: EngineConfig | None = None,
             create: bool = True) -> Library:
        """``create=False`` raises LibraryNotFoundError when ``db`` holds no library."""
        root = db if db is not None else default_db_path()
        config = config or EngineConfig()
        return cls(Store(root, create=create, index=config.index), config)

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Library:  # noqa: PYI034 - Self needs Python 3.11
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def signal(self, name: str) -> Signal:
        """The library's signal of that name (``EngineConfig.signals``)."""
        if name not in self._by_name:
            raise ValueError(f"this library does not use the {name!r} signal "
                             f"(EngineConfig.signals: {', '.join(self._by_name)})")
        return self._by_name[name]

    # The models of the built-in signals, as earlier versions named them.
    image_spec = property(lambda self: self.signal("visual").spec)
    encoder = property(lambda self: self.signal("visual").encoder)
    verifier = property(lambda self: self.signal("visual").verifier.local)
    audio_spec = property(lambda self: self.signal("audio").spec)
    audio_encoder = property(lambda self: self.signal("audio").encoder)

    # -- describe ---------------------------------------------------------------------------
    def describe(self, path: str | MediaInfo, media_type: str | None = None,
                 for_query: bool = False) -> tuple[list[Descriptors], float | None]:
        """Decode and describe a file (a path of the sniffed ``media_type``, or what ``probe``
        returned for it). Returns (descriptors of each signal that found something, in the
        order of ``EngineConfig.signals``; the announced duration in seconds)."""
        if isinstance(path, MediaInfo):
            media = path
        else:
            if media_type is None:
                raise ValueError("describe(path) needs the media_type that sniff(path) gave")
            media = probe(path, Sniffed(media_type, ""), sha256="")
        describing = [s for s in self.signals if s.describes(media)]
        if not describing:
            kinds = ", ".join(sorted({t for s in self.signals for t in s.media_types}))
            kind = _KIND_NAMES.get(media.media_type, media.media_type)
            raise NotMediaError(media.path, f"content is {kind}, not {kinds} media (the signals "
                                f"of this library: {', '.join(self._by_name)})")
        found = [s.describe(media, for_query) for s in describing]
        descriptors = [d for d in found if d is not None]
        if not descriptors:
            raise MediaError(media.path, f"nothing to describe ({', '.join(s.name for s in describing)})")
        return descriptors, media.duration_s

    def _window_stats(self, descriptors: list[Descriptors]):
        """What is stored beside a new work's descriptors, so that no query pays for it."""
        return [st for d in descriptors for st in self.signal(d.signal).window_stats(d)]

    # -- add --------------------------------------------------------------------------------
    def add(self, path: str, title: str | None = None) -> AddResult:
        result = self._add_one(path, title)
        if result.created:
            self.store.flush()
        return result

    def add_many(
        self,
        paths: Iterable[str],
        title: str | None = None,
        on_result: Callable[[str, AddResult | CopytraceError], None] | None = None,
    ) -> tuple[list[AddResult], list[CopytraceError]]:
        """Add files and folders (recursively). Bad files are reported and skipped.

        Inside folders, files whose content is not media at all are skipped silently (logged);
        files named explicitly always count.
        """
        added: list[AddResult] = []
        failed: list[CopytraceError] = []
        pending, last_flush = 0, time.monotonic()
        try:
            for path, explicit in iter_media_paths(paths):
                try:
                    res = self._add_one(path, title)
                except MediaError as e:
                    if not explicit and isinstance(e, NotMediaError):
                        log.info("skipping non-media file %s (%s)", path, e.cause)
                        continue
                    failed.append(e)
                    if on_result:
                        on_result(path, e)
                    continue
                added.append(res)
                pending += res.created
                if pending >= FLUSH_EVERY_WORKS or time.monotonic() - last_flush > FLUSH_EVERY_S:
                    self.store.flush()
                    pending, last_flush = 0, time.monotonic()
                if on_result:
                    on_result(path, res)
        finally:
            if pending:
                self.store.flush()
        return added, failed

    def _add_one(self, path: str, title: str | None) -> AddResult:
        sniffed = sniff(path)
        try:
            str(Path(path).resolve()).encode("utf-8")
        except UnicodeEncodeError:
            raise MediaError(path, "file name is not valid UTF-8 (the catalogue keeps names "
                             "as text); rename the file") from None
        sha = file_sha256(path)
        existing = self.store.catalog.find_sha(sha)
        if existing is not None:
            return AddResult(path, existing, False)
        descriptors, duration_s = self.describe(probe(path, sniffed, sha))
        work = Work(
            work_id=sha[:16], title=_utf8(title or Path(path).stem), path=str(Path(path).resolve()),
            media_type=sniffed.media_type, sha256=sha, duration_s=duration_s,
            added_at=time.time(), model=descriptors[0].model,
        )
        stored, created = self.store.add(work, descriptors, self._window_stats(descriptors))
        return AddResult(path, stored, created)

    def add_descriptors(
        self,
        descriptors: Descriptors | list[Descriptors],
        title: str,
        media_type: str = "video",
        duration_s: float | None = None,
        path: str = "",
        sha256: str | None = None,
        flush: bool = True,
    ) -> AddResult:
        """Register a work from descriptors computed elsewhere (another machine, a pipeline that
        already decoded the media, a migration), without its file.

        ``descriptors``: one signal's, or a list with one per signal (a video's frames and its
        soundtrack make one work). They must come from the models this library describes with
        (same ids, same dims, L2-normalised rows, sorted times). ``path`` may name the work's
        media file (boundary refinement and image verification then use it) or stay empty.
        ``duration_s`` defaults to the last descriptor's end (None for a still image or a
        text, as ``add`` gives it).
        ``sha256`` identifies the work's content; by default it is the hash of the descriptors
        themselves, so adding the same descriptors twice registers one work. ``flush=False``
        defers the index write, for bulk loads: call ``flush()`` once at the end (the catalogue
        is already durable).
        """
        descs = [descriptors] if isinstance(descriptors, Descriptors) else list(descriptors)
        kinds = sorted({t for s in self.signals for t in s.media_types})
        if media_type not in kinds:
            names = [repr(t) for t in kinds]
            raise ValueError(f"media_type must be {', '.join(names[:-1])} or {names[-1]}, "
                             f"not {media_type!r}")
        if not descs:
            raise ValueError("no descriptors: a work needs at least one")
        if len({d.signal for d in descs}) != len(descs):
            raise ValueError("one Descriptors per signal: a work has one set of each")
        for d in descs:
            signal = self.signal(d.signal)
            if media_type not in signal.media_types:
                raise ValueError(f"media_type {media_type!r} is not one the {d.signal} signal "
                                 f"describes ({', '.join(signal.media_types)})")
            signal.check_descriptors(d)
        if sha256 is None:
            h = hashlib.sha256()
            for d in descs:
                for part in (d.model, d.signal, media_type):
                    h.update(part.encode() + b"\0")
                for arr in (d.starts_s, d.ends_s, d.vectors):
                    h.update(np.ascontiguousarray(arr).tobytes())
            sha256 = h.hexdigest()
        existing = self.store.catalog.find_sha(sha256)
        if existing is not None:
            return AddResult(path, existing, False)
        if duration_s is None:  # the last row's end; stills (every row at 0 s), texts: none
            duration_s = max((float(d.ends_s.max()) for d in descs
                              if self.signal(d.signal).timed), default=0.0) or None
        work = Work(
            work_id=sha256[:16], title=title, path=str(Path(path).resolve()) if path else "",
            media_type=media_type, sha256=sha256, duration_s=duration_s, added_at=time.time(),
            model=descs[0].model,
        )
        stored, created = self.store.add(work, descs, self._window_stats(descs))
        if created and flush:
            self.store.flush()
        return AddResult(path, stored, created)

    def flush(self) -> None:
        """Write pending index changes (after ``add_descriptors(..., flush=False)``)."""
        self.store.flush()

    # -- catalogue --------------------------------------------------------------------------
    def works(self) -> list[Work]:
        return self.store.catalog.works()

    def get(self, work_id: str) -> Work:
        return self.store.catalog.get(work_id)

    def remove(self, work_id: str) -> Work:
        return self.store.remove(work_id)

    # -- query ------------------------------------------------------------------------------
    def query(self, path: str, top_k: int = 10, min_score: float | None = None) -> QueryResult:
        """Rank registered works for one file. ``min_score`` defaults to the calibrated 0.5."""
        t0 = time.perf_counter()
        _check_query_args(top_k)
        media = probe(path)
        descriptors, _ = self.describe(media, for_query=True)
        return self._rank(media, descriptors, top_k, min_score, t0)

    def query_descriptors(self, descriptors: Descriptors | list[Descriptors], media_type: str,
                          top_k: int = 10, min_score: float | None = None, path: str = "",
                          duration_s: float | None = None) -> QueryResult:
        """Rank registered works for a query described elsewhere (another machine, a benchmark's
        synthesised media): one ``Descriptors`` per signal, as ``describe(..., for_query=True)``
        gives them. ``path`` names the query's file when it is at hand (image verification and
        boundary refinement read it); without it those stages are skipped (cosine evidence,
        coarse boundaries)."""
        t0 = time.perf_counter()
        _check_query_args(top_k)
        descs = [descriptors] if isinstance(descriptors, Descriptors) else list(descriptors)
        media = MediaInfo(path, media_type, "", "", duration_s)
        return self._rank(media, descs, top_k, min_score, t0)

    def _rank(self, media: MediaInfo, descriptors: list[Descriptors], top_k: int,
              min_score: float | None, t0: float) -> QueryResult:
        """Every signal's matches for its descriptors, in one ranking by calibrated score."""
        min_score = DEFAULT_MIN_SCORE if min_score is None else float(min_score)
        self._check_models(descriptors)
        matches = []
        for d in descriptors:
            matches.extend(self.signal(d.signal).find(Query(media, d), top_k))
        matches.sort(key=lambda m: -m.score)
        matches = [m for m in matches if m.score >= min_score][:top_k]
        info = QueryInfo(path=media.path, media_type=media.media_type,
                         duration_s=media.duration_s, sha256=media.sha256)
        return QueryResult(info, time.perf_counter() - t0, tuple(matches))

    def _check_models(self, descriptors: list[Descriptors]) -> None:
        stored = self.store.catalog.signals()
        for d in descriptors:
            others = stored.get(d.signal, set()) - {d.model}
            if others:
                raise StoreError(
                    f"library {self.store.root} holds {d.signal} descriptors of model "
                    f"{', '.join(sorted(others))}, but this copytrace describes with {d.model}; "
                    "re-register the works with this model or use the matching copytrace version"
                )

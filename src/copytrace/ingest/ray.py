"""``copytrace add --ray``: decode and describe files on a Ray cluster, register them here.

A Ray Data pipeline reads the list of files; a fixed pool of encoder actors (one CPU each, the
library's models at the library's precision, so INT8 where the CPU runs it exactly) sniffs,
hashes and describes each file; the driver registers every described file with
``Library.add_descriptors`` under the file's sha256, exactly as ``Library.add`` would (same work
id, title, path, descriptors and window statistics), and flushes the index as ``add_many`` does.

Idempotent and resumable by content: the set of sha256 already in the catalogue goes to every
actor, which hashes a file first and skips describing it when it is registered. The catalogue
commits one work per transaction, so a run that dies (killed driver, lost cluster, failed
actor) keeps what it registered; the next run re-hashes, skips those files and describes only
the rest. The index catches up with the catalogue when the library is next opened (the store
reconciles them).

Results come back in the order of the file list (``preserve_order``), so when two files hold
the same content the one listed first names the work, as with plain ``add``.

Local Ray (``address=""``) starts a private cluster of ``workers`` CPUs for the run; ``"auto"``
or ``"ray://host:10001"`` joins a running one, whose workers need copytrace (and its model
files) installed and the media paths readable at the same place.
"""
from __future__ import annotations

import logging
import os
import pickle
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from copytrace.config import EngineConfig
from copytrace.engine import (
    FLUSH_EVERY_S,
    FLUSH_EVERY_WORKS,
    AddResult,
    Library,
    iter_media_paths,
)
from copytrace.errors import CopytraceError, MediaError, NotMediaError

log = logging.getLogger(__name__)


def _ray():
    try:
        import ray
        import ray.data  # Ray Data: the [data] part of the extra
    except ModuleNotFoundError as e:
        raise ModuleNotFoundError(
            "copytrace add --ray needs Ray Data: pip install 'copytrace[ray]'") from e
    return ray


@dataclass(frozen=True)
class RayIngestConfig:
    """``address``: "" starts a local Ray for the run; "auto" or "ray://host:10001" joins one.
    ``workers``: encoder actors, one CPU each (0: one per CPU Ray has)."""

    address: str = ""
    workers: int = 0
    flush_every_works: int = FLUSH_EVERY_WORKS
    flush_every_s: float = FLUSH_EVERY_S

    def __post_init__(self) -> None:
        if self.workers < 0:
            raise ValueError("RayIngestConfig.workers must be >= 0 (0: one per CPU)")


@dataclass
class IngestProgress:
    """Counts so far. ``described``: files the actors decoded and described in this run;
    ``known``: files skipped before describing because their content was already registered."""

    files: int
    done: int = 0
    added: int = 0
    known: int = 0
    failed: int = 0
    described: int = 0
    elapsed_s: float = 0.0

    @property
    def eta_s(self) -> float | None:
        if not self.done or self.done >= self.files:
            return None if not self.done else 0.0
        return self.elapsed_s / self.done * (self.files - self.done)


class DescribeActor:
    """One encoder: sniffs, hashes and (unless registered) describes one file per call."""

    def __init__(self, db: str, config: EngineConfig, known: frozenset) -> None:
        from copytrace.index.base import IndexConfig

        # The actor only describes: it never opens the library's index (which may be a
        # Milvus server the driver alone writes to).
        self.lib = Library.open(db, replace(config, index=IndexConfig()), create=False)
        self.known = known

    def __call__(self, batch: dict) -> dict:
        from copytrace.media.probe import file_sha256, probe, sniff

        out = {k: [] for k in ("path", "state", "sha256", "media_type", "payload", "cause")}
        for path, explicit in zip(batch["path"], batch["explicit"]):
            path = str(path)
            state, sha, media_type, payload, cause = "failed", "", "", b"", ""
            try:
                sniffed = sniff(path)
                media_type = sniffed.media_type
                sha = file_sha256(path)
                if sha in self.known:
                    state = "known"
                else:
                    descriptors, duration_s = self.lib.describe(probe(path, sniffed, sha))
                    payload = pickle.dumps((descriptors, duration_s), protocol=5)
                    state = "described"
            except MediaError as e:
                cause = e.cause
                if isinstance(e, NotMediaError) and not bool(explicit):
                    state = "skipped"
            for k, v in zip(out, (path, state, sha, media_type, payload, cause)):
                out[k].append(v)
        return out


def _title(path: str, title: str | None) -> str:
    text = title or Path(path).stem  # as Library.add names a work
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def add_with_ray(
    library: Library,
    paths: Iterable[str],
    config: RayIngestConfig | None = None,
    title: str | None = None,
    on_result: Callable[[str, AddResult | CopytraceError], None] | None = None,
    on_progress: Callable[[IngestProgress], None] | None = None,
) -> tuple[list[AddResult], list[CopytraceError], IngestProgress]:
    """Register files and folders (recursively) through Ray; the results as ``add_many``'s,
    plus the run's counts. Files inside folders that are not media are skipped (logged)."""
    config = config or RayIngestConfig()
    ray = _ray()
    items = []
    for path, explicit in iter_media_paths(paths):
        try:
            str(Path(path).resolve()).encode("utf-8")
        except UnicodeEncodeError:
            items.append({"path": path, "explicit": True, "bad_name": True})
            continue
        items.append({"path": path, "explicit": explicit, "bad_name": False})
    progress = IngestProgress(files=len(items))
    added: list[AddResult] = []
    failed: list[CopytraceError] = []
    t0 = time.perf_counter()

    def report(path: str, res: AddResult | CopytraceError | None) -> None:
        progress.done += 1
        progress.elapsed_s = time.perf_counter() - t0
        if isinstance(res, CopytraceError):
            failed.append(res)
            progress.failed += 1
        elif res is not None:
            added.append(res)
        if res is not None and on_result:
            on_result(path, res)
        if on_progress:
            on_progress(progress)

    for it in items:
        if it["bad_name"]:
            report(it["path"], MediaError(it["path"], "file name is not valid UTF-8 (the "
                                          "catalogue keeps names as text); rename the file"))
    items = [{"path": it["path"], "explicit": it["explicit"]} for it in items
             if not it["bad_name"]]
    if not items:
        return added, failed, progress

    started = not ray.is_initialized()
    if started:
        local = config.address in ("", "local")
        ray.init(address=None if local else config.address,
                 num_cpus=(config.workers or os.cpu_count()) if local else None,
                 include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
    try:
        workers = config.workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        actor_config = library.config
        if actor_config.threads == 0:
            actor_config = replace(actor_config, threads=1)  # one core per actor
        ctx = ray.data.DataContext.get_current()
        ctx.execution_options.preserve_order = True
        ctx.enable_progress_bars = False
        known = frozenset(w.sha256 for w in library.works())
        ds = ray.data.from_items(items, override_num_blocks=min(len(items), 64 * workers))
        ds = ds.map_batches(
            DescribeActor, batch_size=1, batch_format="numpy", num_cpus=1,
            compute=ray.data.ActorPoolStrategy(size=workers),
            fn_constructor_args=(str(library.store.root), actor_config, known))
        pending, last_flush = 0, time.monotonic()
        try:
            for row in ds.iter_rows():
                path, state = str(row["path"]), str(row["state"])
                res: AddResult | CopytraceError | None = None
                if state == "described":
                    descriptors, duration_s = pickle.loads(row["payload"])
                    progress.described += 1
                    res = library.add_descriptors(
                        descriptors, title=_title(path, title), media_type=str(row["media_type"]),
                        duration_s=duration_s, path=path, sha256=str(row["sha256"]), flush=False)
                    pending += res.created
                    progress.added += res.created
                    progress.known += not res.created
                elif state == "known":
                    res = AddResult(path, library.store.catalog.find_sha(str(row["sha256"])), False)
                    progress.known += 1
                elif state == "failed":
                    res = MediaError(path, str(row["cause"]))
                else:
                    log.info("skipping non-media file %s (%s)", path, row["cause"])
                report(path, res)
                if pending and (pending >= config.flush_every_works
                                or time.monotonic() - last_flush > config.flush_every_s):
                    library.flush()
                    pending, last_flush = 0, time.monotonic()
        finally:
            if pending:
                library.flush()
    finally:
        if started:
            ray.shutdown()
    return added, failed, progress

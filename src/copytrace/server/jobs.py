"""Engine workers and persistent jobs.

``EnginePool`` runs engine calls (query, add) on worker threads that each own a ``Library``
(one encoder and one SQLite connection per thread), in two lanes: *short* for requests answered
while the client waits and *long* for jobs, so a long upload never delays a short query, and no
engine call ever runs on the threads that answer listings.

``JobStore`` keeps every job in ``jobs.sqlite`` in the library folder. When a server starts,
jobs a previous process left queued or running are marked failed (their uploads deleted):
a job is never lost silently.
"""
from __future__ import annotations

import json
import logging
import queue
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)
JOBS_FILE = "jobs.sqlite"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id     TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    key_id     TEXT,
    filename   TEXT NOT NULL,
    state      TEXT NOT NULL,   -- queued | running | done | failed
    stage      TEXT NOT NULL,
    progress   REAL NOT NULL,
    status     INTEGER,         -- the HTTP status the request would have had
    result     TEXT,            -- JSON
    error      TEXT,
    upload     TEXT,            -- the temporary file(s), one a line, while the job holds them
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
"""


@dataclass(frozen=True)
class Job:
    job_id: str
    kind: str
    key_id: str | None
    filename: str
    state: str
    stage: str
    progress: float
    status: int | None
    result: dict | None
    error: str | None
    created_at: float
    updated_at: float

    def to_dict(self) -> dict:
        return {"job_id": self.job_id, "kind": self.kind, "filename": self.filename,
                "state": self.state, "stage": self.stage, "progress": self.progress,
                "status": self.status, "result": self.result, "error": self.error,
                "created_at": self.created_at, "updated_at": self.updated_at}


_COLS = ("job_id, kind, key_id, filename, state, stage, progress, status, result, error, "
         "created_at, updated_at")


def _job(row) -> Job:
    return Job(*row[:8], json.loads(row[8]) if row[8] else None, *row[9:])


class JobStore:
    def __init__(self, library_root: str | Path) -> None:
        self.path = Path(library_root) / JOBS_FILE
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False,
                                   timeout=30.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def fail_unfinished(self) -> list[str]:
        """Mark the jobs of a server that stopped as failed; returns their uploads to delete."""
        with self._lock:
            rows = self._db.execute(
                "SELECT job_id, upload FROM jobs WHERE state IN ('queued', 'running')").fetchall()
            self._db.execute(
                "UPDATE jobs SET state = 'failed', stage = 'failed', status = 500, upload = NULL, "
                "error = 'the server stopped before this job finished; send the file again', "
                "updated_at = ? WHERE state IN ('queued', 'running')", (time.time(),))
        if rows:
            log.warning("%d unfinished job(s) of a previous server marked failed", len(rows))
        return [p for r in rows if r[1] for p in r[1].split("\n")]  # a batch holds several

    def prune(self, older_than_s: float) -> int:
        """Drop finished jobs last updated more than ``older_than_s`` ago."""
        with self._lock:
            cur = self._db.execute("DELETE FROM jobs WHERE state IN ('done', 'failed') AND "
                                   "updated_at < ?", (time.time() - older_than_s,))
        return cur.rowcount

    def create(self, kind: str, key_id: str | None, filename: str, upload: str) -> Job:
        now = time.time()
        job_id = uuid.uuid4().hex
        with self._lock:
            self._db.execute(
                "INSERT INTO jobs VALUES (?, ?, ?, ?, 'queued', 'queued', 0, NULL, NULL, NULL, "
                "?, ?, ?)", (job_id, kind, key_id, filename, upload, now, now))
        return self.get(job_id)

    def update(self, job_id: str, state: str, stage: str, progress: float,
               status: int | None = None, result: dict | None = None,
               error: str | None = None) -> None:
        """A finished job (done or failed) is never changed again: the first ending counts
        (a job failed past its time limit stays failed when its worker returns later)."""
        finished = state in ("done", "failed")
        with self._lock:
            self._db.execute(
                "UPDATE jobs SET state = ?, stage = ?, progress = ?, status = ?, result = ?, "
                "error = ?, updated_at = ?" + (", upload = NULL" if finished else "") +
                " WHERE job_id = ? AND state NOT IN ('done', 'failed')",
                (state, stage, progress, status, json.dumps(result) if result is not None else None,
                 error, time.time(), job_id))

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            row = self._db.execute(f"SELECT {_COLS} FROM jobs WHERE job_id = ?",
                                   (job_id,)).fetchone()
        return None if row is None else _job(row)

    def recent(self, key_id: str | None, limit: int) -> list[Job]:
        sql, args = f"SELECT {_COLS} FROM jobs", []
        if key_id is not None:
            sql, args = sql + " WHERE key_id = ?", [key_id]
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY created_at DESC LIMIT ?",
                                    (*args, limit)).fetchall()
        return [_job(r) for r in rows]


def _done_future() -> Future:
    f: Future = Future()
    f.set_result(None)
    return f


class EnginePool:
    """Worker threads over one library folder, each with its own ``Library``."""

    def __init__(self, open_library: Callable[[], object], short_workers: int, long_workers: int,
                 first_library=None) -> None:
        if short_workers < 1 or long_workers < 1:
            raise ValueError("the engine pool needs at least one short and one long worker")
        self._open = open_library
        self._queues = {"short": queue.Queue(), "long": queue.Queue()}
        self._threads: list[threading.Thread] = []
        self._given = first_library  # the caller's library: the first short worker uses it
        self._started: dict[Future, Future] = {}  # submitted work -> set when it begins
        for lane, n in (("short", short_workers), ("long", long_workers)):
            for i in range(n):
                lib = first_library if lane == "short" and i == 0 else None
                t = threading.Thread(target=self._work, args=(lane, lib), daemon=True,
                                     name=f"copytrace-{lane}-{i}")
                t.start()
                self._threads.append(t)

    def submit(self, lane: str, fn: Callable[[object], object]) -> Future:
        fut: Future = Future()
        self._started[fut] = Future()
        self._queues[lane].put((fn, fut))
        return fut

    def started(self, fut: Future) -> Future:
        """A future done when a worker begins ``fut``'s work (a request's time limit counts
        from then, not from when it was queued)."""
        return self._started.get(fut) or _done_future()

    def pending(self, lane: str) -> int:
        return self._queues[lane].qsize()

    def _work(self, lane: str, lib) -> None:
        own = lib is None
        try:
            while True:
                item = self._queues[lane].get()
                if item is None:
                    return
                fn, fut = item
                begun = self._started.pop(fut, None)
                if not fut.set_running_or_notify_cancel():
                    continue
                if begun is not None and begun.set_running_or_notify_cancel():
                    begun.set_result(None)
                try:
                    if lib is None:
                        lib = self._open()
                    fut.set_result(fn(lib))
                except BaseException as e:  # noqa: BLE001 - the future carries it to the request
                    fut.set_exception(e)
        finally:
            if own and lib is not None:
                lib.close()

    def close(self, timeout_s: float = 30.0) -> None:
        for t in self._threads:
            self._queues["short" if "-short-" in t.name else "long"].put(None)
        deadline = time.monotonic() + timeout_s
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))

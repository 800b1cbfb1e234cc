"""The SQLite catalogue: works, their files' hashes, and every descriptor with its times.

The catalogue is the single source of truth. Descriptors are stored here so an index can always
be rebuilt without decoding media again. Each work is written in one transaction, so a crash
(even ``kill -9``) leaves it either fully registered or absent.
"""
from __future__ import annotations

import getpass
import secrets
import sqlite3
import time
from dataclasses import dataclass

import numpy as np

from copytrace.errors import StoreError, UnknownWorkError
from copytrace.ledger import entry as ledger_entry
from copytrace.ledger.log import SCHEMA as LEDGER_SCHEMA
from copytrace.ledger.log import MerkleLog
from copytrace.types import Descriptors, Work

# 2: the registration log (ledger_* tables); a version-1 catalogue gets its works logged once,
# as "backfill" entries, when this copytrace first opens it.
SCHEMA_VERSION = 2


@dataclass(frozen=True)
class WindowStats:
    """One number per descriptor row of a work's ``signal``, derived at registration (``kind``
    "typicality": the audio windows' typicality to the model's cohort); ``key`` names what it
    was derived with, so a changed model or cohort never reads stale numbers."""

    signal: str
    kind: str
    key: str
    values: np.ndarray


_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS works (
    work_id    TEXT PRIMARY KEY,
    sha256     TEXT NOT NULL UNIQUE,
    title      TEXT NOT NULL,
    path       TEXT NOT NULL,
    media_type TEXT NOT NULL,
    duration_s REAL,
    added_at   REAL NOT NULL,
    model      TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS descriptors (
    work_id   TEXT NOT NULL REFERENCES works(work_id) ON DELETE CASCADE,
    signal    TEXT NOT NULL,
    model     TEXT NOT NULL,
    first_vid INTEGER NOT NULL UNIQUE,
    n         INTEGER NOT NULL,
    dims      INTEGER NOT NULL,
    starts_s  BLOB NOT NULL,
    ends_s    BLOB NOT NULL,
    vectors   BLOB NOT NULL,
    PRIMARY KEY (work_id, signal)
);
-- Per-window numbers derived from a work's descriptors at registration (the audio windows'
-- typicality to the model's cohort), keyed by what they were derived with.
CREATE TABLE IF NOT EXISTS window_stats (
    work_id TEXT NOT NULL REFERENCES works(work_id) ON DELETE CASCADE,
    signal  TEXT NOT NULL,
    kind    TEXT NOT NULL,
    key     TEXT NOT NULL,
    n       INTEGER NOT NULL,
    data    BLOB NOT NULL,
    PRIMARY KEY (work_id, signal, kind)
);
"""


@dataclass(frozen=True)
class RowTable:
    """Where each work's vectors sit in the id space of one signal, sorted by ``first_vid``."""

    first_vid: np.ndarray  # int64
    n: np.ndarray  # int64
    work_id: np.ndarray  # object (str)

    def locate(self, vids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Map vector ids to (row index into this table, offset inside the work); -1 if unknown."""
        vids = np.asarray(vids, dtype=np.int64)
        if len(self.first_vid) == 0:
            missing = np.full(vids.shape, -1, dtype=np.int64)
            return missing, missing.copy()
        pos = np.clip(np.searchsorted(self.first_vid, vids, side="right") - 1, 0, None)
        offset = vids - self.first_vid[pos]
        ok = (vids >= 0) & (offset >= 0) & (offset < self.n[pos])
        return np.where(ok, pos, -1), np.where(ok, offset, -1)


def default_registrant() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


class Catalog:
    def __init__(self, path: str, timeout_s: float = 60.0, registrant: str | None = None) -> None:
        self.path = path
        self.registrant = registrant or default_registrant()
        try:
            self._db = sqlite3.connect(
                path, timeout=timeout_s, isolation_level=None, check_same_thread=False
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.executescript(_SCHEMA + LEDGER_SCHEMA)
            self.ledger = MerkleLog(self._db)
            version = self.get_meta("schema_version")
            if version is not None and int(version) > SCHEMA_VERSION:
                raise StoreError(
                    f"{path}: catalogue schema {version} is newer than this copytrace "
                    f"({SCHEMA_VERSION}); upgrade copytrace"
                )
            if version is None or int(version) < SCHEMA_VERSION:
                self._migrate()
        except sqlite3.DatabaseError as e:
            raise StoreError(f"{path}: not a usable copytrace catalogue: {e}") from None

    def _migrate(self) -> None:
        """Create or upgrade the schema in one transaction: the library's id (the log's
        origin) and, for works registered before the log existed, one backfill entry each."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            version = self.get_meta("schema_version")
            if version is None or int(version) < SCHEMA_VERSION:
                db.execute("INSERT OR IGNORE INTO meta VALUES ('library_id', ?)",
                           (secrets.token_hex(8),))
                for work in self.works():
                    if self.ledger.latest_entry(work.work_id) is None:
                        self._log_registration(work, self.descriptor_rows(work.work_id),
                                               "backfill")
                db.execute("INSERT INTO meta VALUES ('schema_version', ?) ON CONFLICT(key) "
                           "DO UPDATE SET value = excluded.value", (str(SCHEMA_VERSION),))
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    def library_id(self) -> str:
        return self.get_meta("library_id") or ""

    def close(self) -> None:
        self._db.close()

    # -- meta -------------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def generation(self) -> int:
        return int(self.get_meta("generation") or 0)

    # -- works ------------------------------------------------------------------------------
    def find_sha(self, sha256: str) -> Work | None:
        row = self._db.execute(_WORK_SELECT + " WHERE w.sha256 = ?", (sha256,)).fetchone()
        return None if row is None else _work(row)

    def get(self, work_id: str) -> Work:
        row = self._db.execute(_WORK_SELECT + " WHERE w.work_id = ?", (work_id,)).fetchone()
        if row is None:
            raise UnknownWorkError(work_id)
        return _work(row)

    def works(self) -> list[Work]:
        rows = self._db.execute(_WORK_SELECT + " ORDER BY w.added_at, w.work_id").fetchall()
        return [_work(r) for r in rows]

    def works_page(self, limit: int, offset: int = 0) -> list[Work]:
        """``limit`` works from ``offset`` on, in the order of ``works()``."""
        rows = self._db.execute(_WORK_SELECT + " ORDER BY w.added_at, w.work_id LIMIT ? OFFSET ?",
                                (limit, offset)).fetchall()
        return [_work(r) for r in rows]

    def count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM works").fetchone()[0])

    def insert(self, work: Work, descriptors: list[Descriptors],
               stats: list[WindowStats] = ()) -> tuple[Work, bool]:
        """Register a work, its descriptors and their window statistics atomically. Returns
        (work, created).

        If a work with the same content hash exists (also when another process registered it
        a moment ago), nothing is written and the existing work is returned.
        """
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            existing = db.execute("SELECT work_id FROM works WHERE sha256 = ?", (work.sha256,))
            row = existing.fetchone()
            if row is not None:
                db.execute("ROLLBACK")
                return self.get(row[0]), False
            db.execute(
                "INSERT INTO works VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (work.work_id, work.sha256, work.title, work.path, work.media_type,
                 work.duration_s, work.added_at, work.model),
            )
            next_vid = int(self.get_meta("next_vid") or 0)
            rows = ledger_entry.descriptor_rows(descriptors)
            for signal, model, n, dims, starts, ends, vectors in rows:
                db.execute(
                    "INSERT INTO descriptors VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (work.work_id, signal, model, next_vid, n, dims, starts, ends, vectors),
                )
                next_vid += max(n, 1)
            for st in stats:
                data = np.ascontiguousarray(st.values, dtype=np.float32)
                db.execute("INSERT INTO window_stats VALUES (?, ?, ?, ?, ?, ?)",
                           (work.work_id, st.signal, st.kind, st.key, data.size, data.tobytes()))
            stored = self.get(work.work_id)
            self._log_registration(stored, rows, self.registrant)
            self._bump(next_vid)
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        return stored, True

    def _log_registration(self, work: Work, rows, by: str) -> None:
        data = ledger_entry.canonical(ledger_entry.registration(work, rows, by, time.time()))
        self.ledger.append(work.work_id, "register", data)

    def delete(self, work_id: str) -> Work:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            work = self.get(work_id)
            db.execute("DELETE FROM window_stats WHERE work_id = ?", (work_id,))
            db.execute("DELETE FROM descriptors WHERE work_id = ?", (work_id,))
            db.execute("DELETE FROM works WHERE work_id = ?", (work_id,))
            data = ledger_entry.canonical(ledger_entry.removal(work, self.registrant, time.time()))
            self.ledger.append(work_id, "remove", data)
            self._bump(None)
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        return work

    def _bump(self, next_vid: int | None) -> None:
        self._db.execute(
            "INSERT INTO meta VALUES ('generation', '1') ON CONFLICT(key) "
            "DO UPDATE SET value = CAST(value AS INTEGER) + 1"
        )
        if next_vid is not None:
            self._db.execute(
                "INSERT INTO meta VALUES ('next_vid', ?) ON CONFLICT(key) DO UPDATE SET value = ?",
                (str(next_vid), str(next_vid)),
            )
        self._db.execute(
            "INSERT INTO meta VALUES ('updated_at', ?) ON CONFLICT(key) DO UPDATE SET value = ?",
            (repr(time.time()), repr(time.time())),
        )

    # -- descriptors ------------------------------------------------------------------------
    def descriptors(self, work_id: str, signal: str) -> Descriptors | None:
        row = self._db.execute(
            "SELECT model, n, dims, starts_s, ends_s, vectors FROM descriptors "
            "WHERE work_id = ? AND signal = ?",
            (work_id, signal),
        ).fetchone()
        if row is None:
            return None
        model, n, dims, starts, ends, vectors = row
        return Descriptors(
            vectors=np.frombuffer(vectors, np.float32).reshape(n, dims),
            starts_s=np.frombuffer(starts, np.float64),
            ends_s=np.frombuffer(ends, np.float64),
            model=model,
            signal=signal,
        )

    def descriptor_rows(self, work_id: str) -> list[tuple]:
        """A work's descriptor rows as stored (signal, model, n, dims, starts, ends, vectors)."""
        return [(r[0], r[1], int(r[2]), int(r[3]), bytes(r[4]), bytes(r[5]), bytes(r[6]))
                for r in self._db.execute(
                    "SELECT signal, model, n, dims, starts_s, ends_s, vectors FROM descriptors "
                    "WHERE work_id = ?", (work_id,))]

    def window_stats(self, work_id: str, signal: str, kind: str, key: str) -> np.ndarray | None:
        """A work's stored per-window numbers of ``kind``, or None when there are none or they
        were derived with something other than ``key``."""
        row = self._db.execute(
            "SELECT key, n, data FROM window_stats WHERE work_id = ? AND signal = ? AND kind = ?",
            (work_id, signal, kind),
        ).fetchone()
        if row is None or row[0] != key:
            return None
        return np.frombuffer(row[2], np.float32, count=row[1])

    _STATS_MISMATCH = (
        "FROM window_stats s LEFT JOIN descriptors d ON d.work_id = s.work_id "
        "AND d.signal = s.signal WHERE d.n IS NULL OR d.n != s.n"
    )

    def stats_mismatches(self) -> list[tuple[str, str, str, int, int]]:
        """(work, signal, kind, numbers stored, descriptor rows) wherever the two disagree."""
        return self._db.execute(
            "SELECT s.work_id, s.signal, s.kind, s.n, COALESCE(d.n, 0) " + self._STATS_MISMATCH
        ).fetchall()

    def drop_mismatched_stats(self) -> int:
        """Delete window statistics that disagree with their descriptors (they are derived:
        the engine computes them again when they are missing)."""
        return self._db.execute(
            "DELETE FROM window_stats WHERE rowid IN (SELECT s.rowid " + self._STATS_MISMATCH + ")"
        ).rowcount

    def dims(self, signal: str) -> int | None:
        row = self._db.execute(
            "SELECT dims FROM descriptors WHERE signal = ? AND n > 0 LIMIT 1", (signal,)
        ).fetchone()
        return None if row is None else int(row[0])

    def signals(self) -> dict[str, set[str]]:
        """signal -> the descriptor models stored for it."""
        out: dict[str, set[str]] = {}
        for signal, model in self._db.execute("SELECT DISTINCT signal, model FROM descriptors"):
            out.setdefault(signal, set()).add(model)
        return out

    def rows(self, signal: str) -> RowTable:
        rows = self._db.execute(
            "SELECT first_vid, n, work_id FROM descriptors WHERE signal = ? ORDER BY first_vid",
            (signal,),
        ).fetchall()
        return RowTable(
            first_vid=np.array([r[0] for r in rows], dtype=np.int64),
            n=np.array([r[1] for r in rows], dtype=np.int64),
            work_id=np.array([r[2] for r in rows], dtype=object),
        )

    def iter_vectors(self, signal: str, first_vids: np.ndarray):
        """Yield (first_vid, vectors) for the given rows of one signal."""
        for fv in first_vids.tolist():
            row = self._db.execute(
                "SELECT n, dims, vectors FROM descriptors WHERE signal = ? AND first_vid = ?",
                (signal, fv),
            ).fetchone()
            if row is not None:
                yield fv, np.frombuffer(row[2], np.float32).reshape(row[0], row[1])


_WORK_SELECT = (
    "SELECT w.work_id, w.title, w.path, w.media_type, w.sha256, w.duration_s, w.added_at, "
    "w.model, (SELECT COALESCE(SUM(d.n), 0) FROM descriptors d WHERE d.work_id = w.work_id) "
    "FROM works w"
)


def _work(row) -> Work:
    return Work(
        work_id=row[0], title=row[1], path=row[2], media_type=row[3], sha256=row[4],
        duration_s=row[5], added_at=row[6], model=row[7], n_descriptors=int(row[8]),
    )


"""A library directory: the SQLite catalogue plus one FAISS index file per signal.

The index files are caches derived from the catalogue. Opening a store compares each index with
the catalogue and repairs the difference (vectors of works added or removed since the file was
written), so a crash between a catalogue commit and an index write loses nothing: every work the
catalogue holds is searchable. Index files are replaced atomically (write, fsync, rename) under
an exclusive lock, so concurrent writers never interleave partial files.
"""
from __future__ import annotations

import fcntl
import logging
import os
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from copytrace.errors import LibraryNotFoundError, StoreError
from copytrace.index.base import IndexBackend, IndexConfig, ReferenceIndex
from copytrace.index.faiss import FaissFileBackend, FaissIndex
from copytrace.store.catalog import Catalog, RowTable, WindowStats
from copytrace.types import Descriptors, Work

log = logging.getLogger(__name__)

CATALOG_FILE = "catalog.sqlite"
LOCK_FILE = "write.lock"
KEY_FILE = "ledger.key"  # the log's Ed25519 signing key (0600); $COPYTRACE_LEDGER_KEY overrides
PUBLIC_KEY_FILE = "ledger.pub"  # its verifier key, to hand to whoever checks proofs


class Store:
    def __init__(self, root: str | os.PathLike, create: bool = True,
                 ledger_key: str | os.PathLike | None = None,
                 index: IndexConfig | None = None) -> None:
        self.root = Path(root).expanduser()
        self.index_config = index or IndexConfig.from_env()
        self._key_path = Path(ledger_key or os.environ.get("COPYTRACE_LEDGER_KEY")
                              or self.root / KEY_FILE).expanduser()
        self._signer = None
        if not create and not (self.root / CATALOG_FILE).is_file():
            what = "folder holds no copytrace catalogue" if self.root.is_dir() else "no such folder"
            raise LibraryNotFoundError(
                f"no library at {self.root} ({what}; {CATALOG_FILE} missing)")
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(f"cannot create library directory {self.root}: {e}") from None
        if not self.root.is_dir():
            raise StoreError(f"library path {self.root} is not a directory")
        self.catalog = Catalog(str(self.root / CATALOG_FILE))
        self.backend = self._backend()
        self._indexes: dict[str, ReferenceIndex] = {}
        self._rows: dict[str, RowTable] = {}
        self._synced_gen: dict[str, int] = {}
        # Signals whose descriptors are not dense vectors (signals/base.py ``Signal.indexed``):
        # kept in the catalogue only, never in a vector index.
        self.unindexed: frozenset[str] = frozenset()

    def _backend(self) -> IndexBackend:
        if self.index_config.backend == "milvus":
            from copytrace.index.milvus import MilvusBackend

            return MilvusBackend(self.index_config, self.catalog.library_id())
        return FaissFileBackend(self.root, self.index_config)

    def close(self) -> None:
        self.catalog.close()
        close_backend = getattr(self.backend, "close", None)
        if close_backend is not None:
            close_backend()

    # -- writes -----------------------------------------------------------------------------
    def add(self, work: Work, descriptors: list[Descriptors],
            stats: list[WindowStats] = ()) -> tuple[Work, bool]:
        """Commit a work to the catalogue. The index files catch up at ``flush``."""
        return self.catalog.insert(work, descriptors, stats)

    def remove(self, work_id: str) -> Work:
        work = self.catalog.delete(work_id)
        self.flush()
        return work

    # -- the registration log ----------------------------------------------------------
    def signer(self):
        """The log's signing key, created (0600) on first use; its verifier key is written
        beside the catalogue as ledger.pub."""
        if self._signer is None:
            from copytrace.ledger.note import Signer

            origin = f"copytrace.local/{self.catalog.library_id()}"
            self._signer = Signer.load_or_create(self._key_path, origin)
            pub = self.root / PUBLIC_KEY_FILE
            if not pub.exists() or pub.read_text().strip() != self._signer.vkey:
                tmp = pub.with_name(pub.name + f".tmp{os.getpid()}")
                tmp.write_text(self._signer.vkey + "\n")
                os.replace(tmp, pub)
        return self._signer

    def checkpoint(self) -> str:
        """The latest signed checkpoint, signing a new one when the log has grown since."""
        from copytrace.ledger.note import Checkpoint

        log = self.catalog.ledger
        size, latest = log.size(), log.latest_checkpoint()
        if latest is not None and latest[0] == size:
            return latest[1]
        signer = self.signer()
        note = signer.sign(Checkpoint(signer.name, size, log.root(size)).text())
        log.save_checkpoint(size, note)
        return note

    def prove(self, work_id: str) -> dict:
        """Inclusion proof of the work's latest log entry in the latest checkpoint."""
        from copytrace.errors import LedgerError
        from copytrace.ledger.proofs import inclusion_proof

        seq = self.catalog.ledger.latest_entry(work_id)
        if seq is None:
            raise LedgerError(f"no log entry for work {work_id!r}")
        return inclusion_proof(self.catalog.ledger, seq, self.checkpoint(), self.signer().vkey)

    def consistency(self, old_note: str) -> dict:
        """Consistency proof from a checkpoint someone saved to the log now, checked before it
        is returned (LedgerError when the log was rolled back or rewritten since)."""
        from copytrace.ledger.proofs import check_consistency, consistency_proof

        vkey = self.signer().vkey
        proof = consistency_proof(self.catalog.ledger, old_note, self.checkpoint(), vkey)
        check_consistency(proof, vkey)
        return proof

    def flush(self) -> None:
        """Bring every index file up to date with the catalogue (atomically, under the lock),
        and sign a checkpoint of the registration log."""
        self.checkpoint()
        with self._write_lock():
            for signal in (set(self.catalog.signals()) | set(self._indexes)) - self.unindexed:
                index = self.index(signal)
                if signal in self._indexes:
                    self._indexes[signal] = self.backend.persist(signal, index)
            dir_fd = os.open(self.root, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)

    @contextmanager
    def _write_lock(self):
        fd = os.open(self.root / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    # -- reads ------------------------------------------------------------------------------
    def index(self, signal: str) -> ReferenceIndex:
        """The signal's index, synchronised with the catalogue's current contents."""
        gen = self.catalog.generation()
        if signal in self._indexes and self._synced_gen.get(signal) == gen:
            return self._indexes[signal]
        rows = self.catalog.rows(signal)
        index = self._indexes.get(signal)
        if index is None:
            index = self.backend.open(signal)
        if index is None:
            dims = self.catalog.dims(signal)
            index = self.backend.create(signal, dims) if dims else None
        if index is not None:
            self._reconcile(signal, index, rows)
            self._indexes[signal] = index
        self._rows[signal] = rows
        self._synced_gen[signal] = gen
        return index if index is not None else FaissIndex(1)  # nothing registered: empty

    def rows(self, signal: str) -> RowTable:
        self.index(signal)
        return self._rows[signal]

    def _reconcile(self, signal: str, index: ReferenceIndex, rows: RowTable) -> None:
        """Add catalogue rows missing from the index; drop index vectors with no row."""
        ids = index.ids()
        row_pos, _ = rows.locate(ids)
        stale = ids[row_pos < 0]
        if len(stale):
            log.info("index %s: dropping %d vectors of removed works", signal, len(stale))
            index.remove(stale)
        present = np.isin(rows.first_vid, ids)
        missing = rows.first_vid[~present]
        if len(missing):
            log.debug("index %s: indexing %d works from the catalogue", signal, len(missing))
            for first_vid, vectors in self.catalog.iter_vectors(signal, missing):
                index.add(np.arange(first_vid, first_vid + len(vectors)), vectors)

    def search(self, signal: str, vectors: np.ndarray, k: int):
        """Return (similarities [Nq, k], work ids [Nq, k] (object, None if empty),
        offsets [Nq, k] (row inside the work's descriptors, -1 if empty))."""
        index = self.index(signal)
        rows = self._rows[signal]
        if index.approximate:
            sims, vids = index.search(vectors, k * self.index_config.rerank_factor)
            sims, vids = self._rerank(signal, rows, vectors, vids, k)
        else:
            sims, vids = index.search(vectors, k)
        pos, offset = rows.locate(vids.reshape(-1))
        works = np.full(pos.shape, None, dtype=object)
        works[pos >= 0] = rows.work_id[pos[pos >= 0]]
        return sims, works.reshape(vids.shape), offset.reshape(vids.shape)

    def _rerank(self, signal: str, rows: RowTable, queries: np.ndarray, vids: np.ndarray,
                k: int) -> tuple[np.ndarray, np.ndarray]:
        """Exact inner products of an approximate index's candidates, from the catalogue's
        float descriptors (each work's row read once), best ``k`` kept."""
        pos, offset = rows.locate(vids.reshape(-1))
        pos, offset = pos.reshape(vids.shape), offset.reshape(vids.shape)
        wanted = np.unique(pos[pos >= 0])
        blocks = dict(self.catalog.iter_vectors(signal, rows.first_vid[wanted]))
        exact = np.full(vids.shape, -np.inf, np.float32)
        for i, j in zip(*np.nonzero(pos >= 0)):
            v = blocks.get(int(rows.first_vid[pos[i, j]]))
            if v is not None:
                exact[i, j] = float(v[offset[i, j]] @ queries[i])
        order = np.argsort(-exact, axis=1, kind="stable")[:, :k]
        sims = np.take_along_axis(exact, order, 1)
        found = np.isfinite(sims)
        out = np.where(found, np.take_along_axis(vids, order, 1), -1)
        return np.where(found, sims, 0.0).astype(np.float32), out

    def check(self) -> list[str]:
        """Problems found (empty when the catalogue and the index files agree)."""
        problems = []
        for signal in set(self.catalog.signals()) - self.unindexed:
            rows = self.catalog.rows(signal)
            index = self.backend.open(signal)
            expected = int(rows.n.sum())
            where = self.backend.where(signal)
            if index is None:
                problems.append(f"index-{signal} ({where}): missing or unreadable")
            elif len(index) != expected:
                problems.append(f"index-{signal} ({where}): {len(index)} vectors, catalogue "
                                f"has {expected}")
        for work_id, signal, kind, n, rows in self.catalog.stats_mismatches():
            problems.append(f"work {work_id}: {n} {signal} {kind} numbers for {rows} descriptors")
        return problems

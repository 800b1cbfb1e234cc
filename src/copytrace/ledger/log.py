"""The append-only registration log, stored in the catalogue's SQLite file.

Leaves are the canonical bytes of registration and removal entries (``entry.py``); beside them
the log keeps the hash of every *complete* subtree (level ``l``, index ``i`` covers leaves
``[i·2^l, (i+1)·2^l)``), written as leaves arrive, so a root or a proof of a log of ``n``
leaves reads O(log² n) stored hashes instead of hashing every leaf. ``append`` runs inside the
caller's transaction: the catalogue writes a work and its leaf together or not at all.
"""
from __future__ import annotations

import sqlite3

from copytrace.ledger.merkle import (
    EMPTY_ROOT,
    consistency_path,
    inclusion_path,
    leaf_hash,
    node_hash,
    subtree_hash,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS ledger_leaves (
    seq     INTEGER PRIMARY KEY,
    work_id TEXT NOT NULL,
    op      TEXT NOT NULL,
    data    BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS ledger_leaves_work ON ledger_leaves(work_id);
CREATE TABLE IF NOT EXISTS ledger_nodes (
    level INTEGER NOT NULL,
    idx   INTEGER NOT NULL,
    hash  BLOB NOT NULL,
    PRIMARY KEY (level, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ledger_checkpoints (
    size INTEGER PRIMARY KEY,
    note TEXT NOT NULL
);
"""


class MerkleLog:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def size(self) -> int:
        row = self._db.execute("SELECT MAX(seq) FROM ledger_leaves").fetchone()
        return 0 if row[0] is None else int(row[0]) + 1

    def append(self, work_id: str, op: str, data: bytes) -> int:
        """Add one leaf (call inside a transaction); returns its index."""
        seq = self.size()
        db = self._db
        db.execute("INSERT INTO ledger_leaves VALUES (?, ?, ?, ?)", (seq, work_id, op, data))
        h, level, idx = leaf_hash(data), 0, seq
        db.execute("INSERT INTO ledger_nodes VALUES (0, ?, ?)", (idx, h))
        while idx & 1:  # this leaf completes the subtree of its left sibling and itself
            h = node_hash(self._node(level, idx - 1), h)
            level, idx = level + 1, idx >> 1
            db.execute("INSERT INTO ledger_nodes VALUES (?, ?, ?)", (level, idx, h))
        return seq

    def _node(self, level: int, idx: int) -> bytes:
        row = self._db.execute("SELECT hash FROM ledger_nodes WHERE level = ? AND idx = ?",
                               (level, idx)).fetchone()
        if row is None:
            raise KeyError(f"ledger node ({level}, {idx}) missing")
        return bytes(row[0])

    def subtree(self, lo: int, hi: int) -> bytes:
        """MTH of leaves [lo, hi), from the stored complete subtrees."""
        return subtree_hash(lo, hi, self._node)

    def root(self, size: int | None = None) -> bytes:
        size = self.size() if size is None else size
        return EMPTY_ROOT if size == 0 else self.subtree(0, size)

    def leaf(self, seq: int) -> tuple[str, str, bytes]:
        row = self._db.execute("SELECT work_id, op, data FROM ledger_leaves WHERE seq = ?",
                               (seq,)).fetchone()
        if row is None:
            raise KeyError(f"no ledger entry {seq}")
        return row[0], row[1], _blob(row[2])

    def leaves(self):
        """(seq, work_id, op, data) in log order."""
        for seq, work_id, op, data in self._db.execute(
                "SELECT seq, work_id, op, data FROM ledger_leaves ORDER BY seq"):
            yield seq, work_id, op, _blob(data)

    def latest_entry(self, work_id: str) -> int | None:
        row = self._db.execute("SELECT MAX(seq) FROM ledger_leaves WHERE work_id = ?",
                               (work_id,)).fetchone()
        return None if row[0] is None else int(row[0])

    def inclusion_proof(self, seq: int, size: int) -> list[bytes]:
        return inclusion_path(seq, size, self.subtree)

    def consistency_proof(self, old: int, new: int) -> list[bytes]:
        return [] if old == new else consistency_path(old, new, self.subtree)

    def stored_nodes(self):
        """(level, idx, hash) of every stored subtree hash."""
        for level, idx, h in self._db.execute("SELECT level, idx, hash FROM ledger_nodes"):
            yield int(level), int(idx), bytes(h)

    # -- checkpoints --------------------------------------------------------------------
    def save_checkpoint(self, size: int, note: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO ledger_checkpoints VALUES (?, ?)", (size, note))

    def checkpoints(self) -> list[tuple[int, str]]:
        return [(int(s), n) for s, n in self._db.execute(
            "SELECT size, note FROM ledger_checkpoints ORDER BY size")]

    def latest_checkpoint(self) -> tuple[int, str] | None:
        row = self._db.execute(
            "SELECT size, note FROM ledger_checkpoints ORDER BY size DESC LIMIT 1").fetchone()
        return None if row is None else (int(row[0]), row[1])


def _blob(value) -> bytes:
    """A leaf's bytes; an edit made as text (SQLite's replace() on a blob) is read as UTF-8,
    so it is checked like any other change instead of failing to load."""
    return value.encode("utf-8") if isinstance(value, str) else bytes(value)

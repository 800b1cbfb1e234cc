"""API keys of one library: ``keys.sqlite`` (mode 0600) in the library folder.

A key is ``ct_<key id>_<secret>``; only the SHA-256 of the whole key is stored (the secret has
256 bits of entropy, so a slow password hash would add nothing), and a lookup compares hashes.
Scopes nest: ``admin`` may do what ``register`` may, ``register`` what ``query`` may.
"""
from __future__ import annotations

import hashlib
import os
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

KEYS_FILE = "keys.sqlite"
SCOPES = ("query", "register", "admin")
_RANK = {s: i for i, s in enumerate(SCOPES)}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    key_id      TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    scope       TEXT NOT NULL,
    key_sha256  TEXT NOT NULL UNIQUE,
    created_at  REAL NOT NULL,
    revoked_at  REAL,
    rate_per_min INTEGER
);
"""


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    name: str
    scope: str
    created_at: float
    revoked_at: float | None
    rate_per_min: int | None  # None: the server's default

    def allows(self, scope: str) -> bool:
        return _RANK[self.scope] >= _RANK[scope]

    def to_dict(self) -> dict:
        return {"key_id": self.key_id, "name": self.name, "scope": self.scope,
                "created_at": self.created_at, "revoked_at": self.revoked_at,
                "rate_per_min": self.rate_per_min}


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "replace")).hexdigest()


class KeyStore:
    """The keys file; safe to share between threads."""

    def __init__(self, library_root: str | os.PathLike) -> None:
        self.path = Path(library_root) / KEYS_FILE
        if not self.path.exists():
            # Created 0600 before SQLite writes anything into it.
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False,
                                   timeout=30.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        for suffix in ("-wal", "-shm"):  # SQLite creates these with the umask's mode
            side = self.path.with_name(self.path.name + suffix)
            if side.exists():
                os.chmod(side, 0o600)

    def close(self) -> None:
        self._db.close()

    def add(self, name: str, scope: str, rate_per_min: int | None = None) -> tuple[ApiKey, str]:
        """Create a key; returns it and the secret, which is shown once and never stored."""
        if scope not in SCOPES:
            raise ValueError(f"scope must be one of {', '.join(SCOPES)}, not {scope!r}")
        if not name.strip():
            raise ValueError("a key needs a name (who or what uses it)")
        if rate_per_min is not None and rate_per_min < 0:
            raise ValueError("rate_per_min must be >= 0 (0 = no limit)")
        key_id = secrets.token_hex(4)
        secret = f"ct_{key_id}_{secrets.token_urlsafe(32)}"
        key = ApiKey(key_id, name.strip(), scope, time.time(), None, rate_per_min)
        with self._lock:
            self._db.execute("INSERT INTO api_keys VALUES (?, ?, ?, ?, ?, NULL, ?)",
                             (key.key_id, key.name, key.scope, _hash(secret), key.created_at,
                              rate_per_min))
        return key, secret

    def list(self, include_revoked: bool = True) -> list[ApiKey]:
        sql = "SELECT key_id, name, scope, created_at, revoked_at, rate_per_min FROM api_keys"
        if not include_revoked:
            sql += " WHERE revoked_at IS NULL"
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY created_at").fetchall()
        return [ApiKey(*r) for r in rows]

    def active_count(self) -> int:
        return len(self.list(include_revoked=False))

    def revoke(self, key_id_or_name: str) -> list[ApiKey]:
        """Revoke the key with this id, or every active key with this name; returns them."""
        with self._lock:
            rows = self._db.execute(
                "SELECT key_id FROM api_keys WHERE revoked_at IS NULL AND (key_id = ? OR name = ?)",
                (key_id_or_name, key_id_or_name)).fetchall()
            ids = [r[0] for r in rows]
            self._db.executemany("UPDATE api_keys SET revoked_at = ? WHERE key_id = ?",
                                 [(time.time(), i) for i in ids])
        return [k for k in self.list() if k.key_id in ids]

    def lookup(self, secret: str) -> ApiKey | None:
        """The active key whose secret this is, else None."""
        with self._lock:
            row = self._db.execute(
                "SELECT key_id, name, scope, created_at, revoked_at, rate_per_min FROM api_keys "
                "WHERE key_sha256 = ? AND revoked_at IS NULL", (_hash(secret),)).fetchone()
        return None if row is None else ApiKey(*row)


class RateLimiter:
    """A token bucket per key: ``per_min`` requests a minute, bursts up to ``per_min``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}  # key id -> (tokens, at)

    def take(self, key_id: str, per_min: int) -> float:
        """0 when the request may go ahead, else the seconds until it may."""
        if per_min <= 0:
            return 0.0
        now = time.monotonic()
        with self._lock:
            tokens, at = self._buckets.get(key_id, (float(per_min), now))
            tokens = min(float(per_min), tokens + (now - at) * per_min / 60.0)
            if tokens >= 1.0:
                self._buckets[key_id] = (tokens - 1.0, now)
                return 0.0
            self._buckets[key_id] = (tokens, now)
            return (1.0 - tokens) * 60.0 / per_min

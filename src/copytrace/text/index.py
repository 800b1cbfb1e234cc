"""The inverted index of winnowed fingerprints: sorted arrays, searched with ``searchsorted``.

Postings are (hash, document, first unit of the k-gram), sorted by hash. A lookup of a query's
k-grams is two binary searches per k-gram; hashes with more than ``max_postings`` postings
(stock phrases, boilerplate) are skipped, as they point everywhere. The arrays are a cache of
what the catalogue stores (``signals/text.py`` rebuilds them when the catalogue's generation
changes) and are saved as one ``.npz`` file, written atomically. Beside them, each document's
MinHash signature of its fingerprints (``text/minhash.py``), for whole-document near-duplicates.
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from copytrace.text.minhash import LshIndex, MinHashConfig, signature


@dataclass(frozen=True)
class Postings:
    hashes: np.ndarray  # int64, sorted
    doc: np.ndarray  # int32: index into ``doc_ids``
    pos: np.ndarray  # int32: first unit of the k-gram in that document
    doc_ids: np.ndarray  # object: the documents' ids (work ids)
    signatures: np.ndarray  # uint64 [documents, num_perm]: MinHash of each one's fingerprints

    def __len__(self) -> int:
        return len(self.hashes)

    @classmethod
    def build(cls, docs: list[tuple[str, np.ndarray, np.ndarray]], num_perm: int = 128
              ) -> Postings:
        """From (doc id, fingerprint hashes int64, positions) per document."""
        if not docs:
            return cls(np.zeros(0, np.int64), np.zeros(0, np.int32), np.zeros(0, np.int32),
                       np.zeros(0, dtype=object), np.zeros((0, num_perm), np.uint64))
        hashes = np.concatenate([np.asarray(h, np.int64) for _, h, _ in docs])
        pos = np.concatenate([np.asarray(p, np.int32) for _, _, p in docs])
        doc = np.repeat(np.arange(len(docs), dtype=np.int32), [len(h) for _, h, _ in docs])
        order = np.argsort(hashes, kind="stable")
        sigs = np.stack([signature(h, num_perm) for _, h, _ in docs])
        return cls(hashes[order], doc[order], pos[order],
                   np.array([d for d, _, _ in docs], dtype=object), sigs)

    def lsh(self, cfg: MinHashConfig) -> LshIndex:
        """The LSH bands of the documents' signatures (built once per config)."""
        cache = self.__dict__.setdefault("_lsh", {})
        if cfg not in cache:
            cache[cfg] = LshIndex.build(self.signatures, cfg)
        return cache[cfg]

    def lookup(self, query_hashes: np.ndarray, max_postings: int
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(query position, doc, ref position) for every posting of every query k-gram."""
        q = np.asarray(query_hashes, np.int64)
        # distinct hashes in order: the binary searches then walk the postings forwards
        uniq, inv = np.unique(q, return_inverse=True)
        lo_u = np.searchsorted(self.hashes, uniq, side="left")
        hi_u = np.searchsorted(self.hashes, uniq, side="right")
        lo, cnt = lo_u[inv], (hi_u - lo_u)[inv]
        keep = (cnt > 0) & (cnt <= max_postings)
        qi = np.flatnonzero(keep)
        lo, cnt = lo[keep], cnt[keep]
        total = int(cnt.sum())
        idx = np.repeat(lo - (np.cumsum(cnt) - cnt), cnt) + np.arange(total)
        return np.repeat(qi, cnt), self.doc[idx], self.pos[idx]

    def save(self, path: Path, key: str) -> None:
        """Write atomically (temporary file, fsync, rename); ``key`` says what it reflects."""
        path = Path(path)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, hashes=self.hashes, doc=self.doc, pos=self.pos,
                         doc_ids=self.doc_ids.astype(str), signatures=self.signatures,
                         key=np.array(key))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, path: Path, key: str, num_perm: int = 128) -> Postings | None:
        """The saved index if it reflects ``key`` (and signatures of ``num_perm``), else None
        (rebuild it)."""
        try:
            with np.load(path, allow_pickle=False) as z:
                if str(z["key"]) != key or z["signatures"].shape[1:] != (num_perm,):
                    return None
                return cls(z["hashes"], z["doc"], z["pos"], z["doc_ids"].astype(object),
                           z["signatures"])
        except (OSError, ValueError, KeyError):
            return None

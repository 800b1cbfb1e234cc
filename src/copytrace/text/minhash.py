"""MinHash signatures and LSH banding for whole-document near-duplicates (Broder 1997).

A document's set is its winnowed fingerprints (the hashes the posting index holds): winnowing
is local, so two near-identical texts select nearly the same fingerprints and the Jaccard
similarity of those sets tracks that of their k-gram sets. A signature is ``num_perm``
minima computed in one pass, by one-permutation hashing (Li, Owen, Zhang 2012): every hash is
mixed once, its low bits pick a bin, the bin keeps its minimum; bins no hash fell into borrow
another bin's value by optimal densification (Shrivastava 2017), so two signatures still agree
in a bin with probability equal to the sets' Jaccard similarity. Cost: O(set size), numpy.

LSH: the signature cut into ``bands`` bands of ``num_perm // bands`` values; two documents that
agree on a whole band are candidates, which happens with probability 1 - (1 - J^r)^b; the
candidates' Jaccard is then estimated from the signatures (the fraction of equal bins).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from copytrace.text.fingerprint import _mix

_EMPTY = np.uint64(np.iinfo(np.uint64).max)
_SALT = np.uint64(0xD6E8FEB86659FD93)
_MAX_PROBES = 64


@dataclass(frozen=True)
class MinHashConfig:
    """``num_perm`` bins a power of two, cut into ``bands`` bands of equal rows; documents
    whose estimated Jaccard similarity reaches ``min_jaccard`` are near-duplicates."""

    num_perm: int = 128
    bands: int = 32
    min_jaccard: float = 0.5

    def __post_init__(self) -> None:
        if self.num_perm < 2 or self.num_perm & (self.num_perm - 1):
            raise ValueError(f"MinHashConfig.num_perm must be a power of two >= 2, got "
                             f"{self.num_perm}")
        if self.bands < 1 or self.num_perm % self.bands:
            raise ValueError(f"MinHashConfig.bands must divide num_perm ({self.num_perm}), got "
                             f"{self.bands}")
        if not 0.0 < self.min_jaccard <= 1.0:
            raise ValueError(f"MinHashConfig.min_jaccard must be in (0, 1], got "
                             f"{self.min_jaccard}")

    @property
    def rows(self) -> int:
        return self.num_perm // self.bands


def signature(hashes: np.ndarray, num_perm: int) -> np.ndarray:
    """The MinHash signature (uint64 [num_perm]) of a set of 64-bit hashes; an empty set gives
    all bins empty (``2**64 - 1``), which agrees with nothing (``jaccard``)."""
    sig = np.full(num_perm, _EMPTY, dtype=np.uint64)
    h = np.asarray(hashes)
    h = h.view(np.uint64) if h.dtype == np.int64 else h.astype(np.uint64)
    if len(h) == 0:
        return sig
    bits = num_perm.bit_length() - 1
    x = _mix(h ^ _SALT)
    # the bin in the top bits, the value below it: one sort orders by bin, then by value
    # (duplicates of a hash need no removal: they do not change a minimum)
    low = np.uint64(64 - bits)
    key = np.sort((x << low) | (x >> np.uint64(bits)))
    first = np.searchsorted(key, np.arange(num_perm, dtype=np.uint64) << low)
    ok = first < len(key)
    head = key[np.minimum(first, len(key) - 1)]
    ok &= (head >> low) == np.arange(num_perm, dtype=np.uint64)
    sig[ok] = head[ok] & ((np.uint64(1) << low) - np.uint64(1))
    empty = np.flatnonzero(sig == _EMPTY)
    if len(empty):
        filled = sig.copy()
        todo = empty
        idx = np.arange(num_perm, dtype=np.uint64)
        mask = np.uint64(num_perm - 1)
        with np.errstate(over="ignore"):
            for attempt in range(1, _MAX_PROBES + 1):
                # bin i's attempt-th probe: a hash of (i, attempt), the same in every document
                probe = (_mix(idx[todo] * np.uint64(0x9E3779B97F4A7C15)
                              + np.uint64(attempt)) & mask).astype(np.int64)
                got = sig[probe] != _EMPTY
                filled[todo[got]] = sig[probe[got]]
                todo = todo[~got]
                if len(todo) == 0:
                    break
        sig = filled
    return sig


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Estimated Jaccard similarity of the sets behind two signatures."""
    both = (a != _EMPTY) & (b != _EMPTY)
    return float(np.mean((a == b) & both))


def band_keys(signatures: np.ndarray, cfg: MinHashConfig) -> np.ndarray:
    """One 64-bit key per band (int64 [n, bands]) of signatures [n, num_perm]; a band whose
    bins are all empty gets key 0, which ``LshIndex`` never matches."""
    sig = np.atleast_2d(np.asarray(signatures, np.uint64))
    n = len(sig)
    r = cfg.rows
    blocks = sig.reshape(n, cfg.bands, r)
    with np.errstate(over="ignore"):
        key = np.zeros((n, cfg.bands), dtype=np.uint64)
        for j in range(r):
            key = _mix(key * np.uint64(0x100000001B3) + blocks[:, :, j])
        key = _mix(key + np.arange(cfg.bands, dtype=np.uint64))  # a band matches its own
    out = key.view(np.int64)
    out[(blocks == _EMPTY).all(axis=2)] = 0
    return out


@dataclass(frozen=True)
class LshIndex:
    """Band keys of many documents, sorted: ``keys`` int64, ``doc`` int32."""

    keys: np.ndarray
    doc: np.ndarray

    @classmethod
    def build(cls, signatures: np.ndarray, cfg: MinHashConfig) -> LshIndex:
        if len(signatures) == 0:
            return cls(np.zeros(0, np.int64), np.zeros(0, np.int32))
        keys = band_keys(signatures, cfg)
        doc = np.repeat(np.arange(len(keys), dtype=np.int32), cfg.bands)
        flat = keys.reshape(-1)
        keep = flat != 0
        flat, doc = flat[keep], doc[keep]
        order = np.argsort(flat, kind="stable")
        return cls(flat[order], doc[order])

    def candidates(self, sig: np.ndarray, cfg: MinHashConfig) -> np.ndarray:
        """Documents that agree with ``sig`` on at least one band (sorted, each once)."""
        q = band_keys(sig, cfg).reshape(-1)
        q = q[q != 0]
        lo = np.searchsorted(self.keys, q, side="left")
        hi = np.searchsorted(self.keys, q, side="right")
        if len(q) == 0 or not (hi > lo).any():
            return np.zeros(0, np.int32)
        return np.unique(np.concatenate([self.doc[a:b] for a, b in zip(lo, hi) if b > a]))


def near_duplicates(sig: np.ndarray, signatures: np.ndarray, lsh: LshIndex,
                    cfg: MinHashConfig) -> list[tuple[int, float]]:
    """(document, estimated Jaccard) of LSH candidates at ``cfg.min_jaccard`` or more, best
    first."""
    out = []
    for d in lsh.candidates(sig, cfg).tolist():
        j = jaccard(sig, signatures[d])
        if j >= cfg.min_jaccard:
            out.append((int(d), j))
    return sorted(out, key=lambda t: -t[1])

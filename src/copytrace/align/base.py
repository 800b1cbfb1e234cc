"""The ``Aligner`` interface, its registry, and helpers shared by the alignment methods.

An aligner reads a frame-similarity matrix between a query and one reference (rows: query
frames, columns: reference frames, cosine similarity) with the real times of those frames and
returns copied segments in seconds. A segment spans from its first matched frame's time to its
last matched frame's time plus one sampling interval, so a copy of [a, b) is reported as [a, b).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable

import numpy as np

from copytrace.types import Segment

# Speed changes we accept between query and reference content (slow-motion to fast-forward).
MIN_SPEED, MAX_SPEED = 0.25, 4.0


class Aligner(ABC):
    """Finds copied segments in a [Nq, Nr] similarity matrix. Scores are mean similarities."""

    name: str = ""

    @abstractmethod
    def align(
        self, sim: np.ndarray, q_times_s: np.ndarray, r_times_s: np.ndarray
    ) -> list[Segment]:
        """sim float32 [Nq, Nr]; times [Nq] and [Nr] in seconds, increasing."""


def check_inputs(sim: np.ndarray, q_times_s: np.ndarray, r_times_s: np.ndarray):
    sim = np.asarray(sim, dtype=np.float32)
    q = np.asarray(q_times_s, dtype=np.float64)
    r = np.asarray(r_times_s, dtype=np.float64)
    if sim.ndim != 2 or sim.shape != (q.shape[0], r.shape[0]):
        raise ValueError(
            f"similarity matrix {sim.shape} does not match {q.shape[0]} query and "
            f"{r.shape[0]} reference times"
        )
    if (np.diff(q) < 0).any() or (np.diff(r) < 0).any():
        raise ValueError("frame times must be sorted in increasing order")
    return sim, q, r


def check_times(shape: tuple[int, int], q_times_s: np.ndarray, r_times_s: np.ndarray):
    """``check_inputs`` for a matrix given by its shape only (a ``BlockedSimilarity``)."""
    q = np.asarray(q_times_s, dtype=np.float64)
    r = np.asarray(r_times_s, dtype=np.float64)
    if tuple(shape) != (q.shape[0], r.shape[0]) or q.ndim != 1 or r.ndim != 1:
        raise ValueError(f"similarity matrix {tuple(shape)} does not match {q.shape[0]} query "
                         f"and {r.shape[0]} reference times")
    if (np.diff(q) < 0).any() or (np.diff(r) < 0).any():
        raise ValueError("frame times must be sorted in increasing order")
    return q, r


def sampling_interval_s(times_s: np.ndarray) -> float:
    """Median gap between frames: the time one sampled frame stands for."""
    if len(times_s) < 2:
        return 1.0
    d = np.diff(times_s)
    d = d[d > 0]
    return float(np.median(d)) if len(d) else 1.0


def segment_from_path(
    qi: np.ndarray, rj: np.ndarray, sims: np.ndarray, q_times_s: np.ndarray,
    r_times_s: np.ndarray,
) -> Segment:
    """A matched frame path (indices into both time axes) -> a Segment in seconds."""
    dq, dr = sampling_interval_s(q_times_s), sampling_interval_s(r_times_s)
    return Segment(
        query_start_s=float(q_times_s[qi.min()]), query_end_s=float(q_times_s[qi.max()] + dq),
        ref_start_s=float(r_times_s[rj.min()]), ref_end_s=float(r_times_s[rj.max()] + dr),
        score=float(np.mean(sims)),
    )


def plausible_speed(seg: Segment) -> bool:
    dq = seg.query_end_s - seg.query_start_s
    dr = seg.ref_end_s - seg.ref_start_s
    return dq > 0 and dr > 0 and MIN_SPEED <= dr / dq <= MAX_SPEED


def similarity_matrix(query_vectors: np.ndarray, ref_vectors: np.ndarray) -> np.ndarray:
    """Cosine similarity of L2-normalised rows: [Nq, D] x [Nr, D] -> [Nq, Nr] float32."""
    return np.asarray(query_vectors, np.float32) @ np.asarray(ref_vectors, np.float32).T


class DenseSimilarity:
    """A similarity matrix held whole, read through the interface of ``BlockedSimilarity``."""

    def __init__(self, sim: np.ndarray, block_elems: int = 1 << 21) -> None:
        self.sim = sim
        self.shape = sim.shape
        self.block_rows = max(64, block_elems // max(1, sim.shape[1]))

    def blocks(self):
        """(first row, [rows, Nr] block) over the whole matrix, in row order."""
        for a in range(0, self.shape[0], self.block_rows):
            yield a, self.sim[a:a + self.block_rows]

    def values(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        return self.sim[rows, cols]

    def keep(self, rows: np.ndarray, cols: np.ndarray) -> None:
        """Nothing to do: every value is at hand."""


class BlockedSimilarity:
    """The [Nq, Nr] cosine similarity of ``query_vectors`` x ``ref_vectors`` (each block then
    passed through ``adjust(block, first_row, end_row)``), never held whole: a 1-hour query at
    the 0.1 s hop against a 1-hour recording at 0.5 s is 259 M pairs, 1 GB per float32 copy.

    It is computed in blocks of whole rows of about ``block_elems`` values. A value read later
    (``values``) comes from the same full-width row block as the one ``blocks`` gave, so it is
    the same float as in the dense matrix (BLAS computes each element of a product of this size
    with one summation order, whatever rows the block starts at; the test checks it).
    ``keep(rows, cols)`` computes a set of pairs in one pass and stores them, so that reads of
    those pairs cost nothing; a pair not kept is computed with its row block when read."""

    def __init__(self, query_vectors: np.ndarray, ref_vectors: np.ndarray,
                 adjust: Callable[[np.ndarray, int, int], np.ndarray] | None = None,
                 block_elems: int = 1 << 21) -> None:
        self.q = np.ascontiguousarray(query_vectors, np.float32)
        self.r = np.ascontiguousarray(ref_vectors, np.float32)
        if self.q.ndim != 2 or self.r.ndim != 2 or self.q.shape[1] != self.r.shape[1]:
            raise ValueError(f"query vectors {self.q.shape} and reference vectors "
                             f"{self.r.shape} are not [N, D] of one D")
        self.shape = (len(self.q), len(self.r))
        self.adjust = adjust
        # Blocks of fewer rows than a BLAS kernel's tile would be summed differently.
        self.block_rows = max(64, block_elems // max(1, len(self.r)))
        self._keys = np.zeros(0, np.int64)
        self._vals = np.zeros(0, np.float32)
        self.blocks_computed = 0
        self._last: tuple[int, np.ndarray] | None = None  # the latest block

    def _block(self, a: int) -> np.ndarray:
        from copytrace.deadline import check

        if self._last is not None and self._last[0] == a:
            return self._last[1]  # a short query is one block: computed once
        check("aligning audio")  # the request's time limit
        b = min(a + self.block_rows, self.shape[0])
        self.blocks_computed += 1
        blk = self.q[a:b] @ self.r.T
        blk = blk if self.adjust is None else np.asarray(self.adjust(blk, a, b), np.float32)
        self._last = (a, blk)
        return blk

    def blocks(self):
        """(first row, [rows, Nr] block) over the whole matrix, in row order."""
        from copytrace.progress import report

        for a in range(0, self.shape[0], self.block_rows):
            yield a, self._block(a)
            report("aligning audio", (a + self.block_rows) / max(1, self.shape[0]))

    def _compute(self, keys: np.ndarray) -> np.ndarray:
        """Values of sorted linear indices ``row * Nr + col``, one row block at a time."""
        nr = self.shape[1]
        out = np.empty(len(keys), np.float32)
        rows = keys // nr
        starts = (rows // self.block_rows) * self.block_rows
        firsts = np.unique(starts)
        bounds = np.append(np.searchsorted(starts, firsts), len(keys))  # keys are sorted
        for a, lo, hi in zip(firsts, bounds[:-1], bounds[1:]):
            out[lo:hi] = self._block(int(a))[rows[lo:hi] - a, keys[lo:hi] % nr]
        return out

    def keep(self, rows: np.ndarray, cols: np.ndarray) -> None:
        keys = np.unique(np.asarray(rows, np.int64) * self.shape[1] + np.asarray(cols, np.int64))
        keys = keys[~self._has(keys)[0]]
        if len(keys) == 0:
            return
        vals = self._compute(keys)
        merged = np.concatenate([self._keys, keys])
        order = np.argsort(merged, kind="stable")
        self._keys = merged[order]
        self._vals = np.concatenate([self._vals, vals])[order]

    def _has(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pos = np.searchsorted(self._keys, keys)
        pos = np.minimum(pos, max(len(self._keys) - 1, 0))
        hit = (self._keys[pos] == keys) if len(self._keys) else np.zeros(len(keys), bool)
        return hit, pos

    def values(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        keys = np.asarray(rows, np.int64) * self.shape[1] + np.asarray(cols, np.int64)
        hit, pos = self._has(keys)
        out = np.empty(len(keys), np.float32)
        out[hit] = self._vals[pos[hit]]
        if not hit.all():
            miss = np.flatnonzero(~hit)
            uniq, inv = np.unique(keys[miss], return_inverse=True)
            out[miss] = self._compute(uniq)[inv]
        return out


def best_view_similarity(
    query_vectors: np.ndarray, query_views: np.ndarray | None, ref_vectors: np.ndarray
) -> np.ndarray:
    """[Nq, Nr]: each query frame's similarity through its best view (whole frame, or one of
    ``query_views`` [Nq, V, D], whose all-zero rows stand for views not computed)."""
    sim = similarity_matrix(query_vectors, ref_vectors)
    if query_views is None or query_views.shape[1] == 0:
        return sim
    rows = np.flatnonzero(np.abs(query_views).sum(axis=(1, 2)) > 0)
    if len(rows):
        v = query_views[rows]
        per_view = similarity_matrix(v.reshape(-1, v.shape[2]), ref_vectors)
        sim[rows] = np.maximum(sim[rows], per_view.reshape(len(rows), v.shape[1], -1).max(axis=1))
    return sim


_ALIGNERS: dict[str, tuple[type, type]] = {}


def register_aligner(name: str, config_cls: type) -> Callable[[type], type]:
    def deco(cls: type) -> type:
        cls.name = name
        _ALIGNERS[name] = (cls, config_cls)
        return cls

    return deco


def aligner_names() -> list[str]:
    _load_builtin()
    return sorted(_ALIGNERS)


def get_aligner(name: str = "tn", config: object | None = None) -> Aligner:
    """Build the aligner registered as ``name`` ('tn', 'dp', 'hv') with its config dataclass."""
    _load_builtin()
    if name not in _ALIGNERS:
        raise ValueError(f"unknown aligner {name!r} (known: {', '.join(sorted(_ALIGNERS))})")
    cls, config_cls = _ALIGNERS[name]
    if config is None:
        config = config_cls()
    elif not isinstance(config, config_cls):
        raise TypeError(
            f"aligner {name!r} takes a {config_cls.__name__}, not {type(config).__name__}"
        )
    return cls(config)


def min_similarity_config(name: str, min_similarity: float | None) -> object | None:
    """The config of aligner ``name`` with its minimum similarity (the field its config class
    names in ``MIN_SIMILARITY_FIELD``: pairs below it take no part) set to a descriptor's
    calibrated value, its other fields at their defaults; None when ``min_similarity`` is."""
    _load_builtin()
    if name not in _ALIGNERS:
        raise ValueError(f"unknown aligner {name!r} (known: {', '.join(sorted(_ALIGNERS))})")
    if min_similarity is None:
        return None
    config_cls = _ALIGNERS[name][1]
    return config_cls(**{config_cls.MIN_SIMILARITY_FIELD: float(min_similarity)})


def _load_builtin() -> None:
    # Importing the modules registers them.
    from copytrace.align import dp as _dp  # noqa: F401
    from copytrace.align import hv as _hv  # noqa: F401
    from copytrace.align import offset as _offset  # noqa: F401
    from copytrace.align import tn as _tn  # noqa: F401

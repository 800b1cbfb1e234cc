"""The ``Aligner`` interface, its registry, and helpers shared by the alignment methods.

An aligner reads a frame-similarity matrix between a query and one reference (rows: query
frames, columns: reference frames, cosine similarity) with the real times of those frames and
returns copied segments in seconds. A segment spans from its first matched frame's time to its
last matched frame's time plus one sampling interval, so a copy of [a, b) is reported as [a, b).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Callable

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


def _load_builtin() -> None:
    # Importing the modules registers them.
    from copytrace.align import dp as _dp  # noqa: F401
    from copytrace.align import hv as _hv  # noqa: F401
    from copytrace.align import offset as _offset  # noqa: F401
    from copytrace.align import tn as _tn  # noqa: F401

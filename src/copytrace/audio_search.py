"""Find registered recordings in a query's audio: window kNN, then offset alignment.

Reference windows sit every ``spec.hop_s`` (0.5 s), query windows every ``spec.query_hop_s``
(0.1 s). Each query window's nearest reference windows propose (track, offset) pairs, offset =
reference start - query start. Each proposal is scored by the *sequence similarity*: the mean
cosine between the query windows and the reference windows they land on at that offset (every
query window whose shifted start falls on the reference grid). The best proposal wins; its
offset is refined between grid points from the scores of its neighbours. A query whose best
sequence similarity is under the calibrated threshold matches nothing.

This is the glue the benchmark needs; the engine integrates audio through its own index and
aligner (issue 5).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from copytrace.models.audio_spec import AudioDescriptorSpec


@dataclass(frozen=True)
class AudioHit:
    track: str
    offset_s: float  # reference time = query time + offset_s
    similarity: float  # sequence similarity (mean aligned cosine)
    n_windows: int
    score: float


class AudioReferenceIndex:
    """faiss inner-product index over reference windows, plus the per-track window grid."""

    def __init__(self, spec: AudioDescriptorSpec) -> None:
        import faiss

        self.spec = spec
        self._index = faiss.IndexFlatIP(spec.dims)
        self.tracks: list[str] = []
        self._track_of: list[np.ndarray] = []
        self._slot_of: list[np.ndarray] = []
        self._first_row: list[int] = []
        self._n_slots: list[int] = []
        self._vectors: list[np.ndarray] = []

    def add(self, track: str, starts_s: np.ndarray, vectors: np.ndarray) -> None:
        slots = np.round(np.asarray(starts_s) / self.spec.hop_s).astype(np.int64)
        if len(slots) and (np.any(np.diff(slots) != 1) or slots[0] != 0):
            raise ValueError("reference windows must start at 0 and follow the index hop")
        t = len(self.tracks)
        self.tracks.append(track)
        self._first_row.append(self._index.ntotal)
        self._n_slots.append(len(slots))
        self._track_of.append(np.full(len(slots), t, dtype=np.int32))
        self._slot_of.append(slots.astype(np.int32))
        v = np.ascontiguousarray(vectors, dtype=np.float32)
        self._vectors.append(v)
        self._index.add(v)
        self._cache = None

    @property
    def ntotal(self) -> int:
        return int(self._index.ntotal)

    def nbytes(self) -> int:
        """Bytes held per window: the vector and its (track, slot) address."""
        return self.ntotal * (self.spec.dims * 4 + 8)

    def _tables(self):
        if getattr(self, "_cache", None) is None:
            self._cache = (np.concatenate(self._track_of), np.concatenate(self._slot_of),
                           np.concatenate(self._vectors), np.asarray(self._first_row),
                           np.asarray(self._n_slots))
        return self._cache

    def search(self, q_starts_s: np.ndarray, q_vectors: np.ndarray, k: int = 10,
               max_candidates: int = 64) -> AudioHit | None:
        """Best (track, offset) for one query, or None if the query has no windows."""
        if len(q_vectors) == 0 or self.ntotal == 0:
            return None
        track_of, slot_of, allv, first_row, n_slots = self._tables()
        hop, qhop = self.spec.hop_s, self.spec.query_hop_s
        ratio = int(round(hop / qhop))
        q_idx = np.round(np.asarray(q_starts_s) / qhop).astype(np.int64)
        sims, rows = self._index.search(np.ascontiguousarray(q_vectors, np.float32), k)
        # Proposal offsets in query-hop units: ref slot * ratio - query index.
        valid = rows >= 0
        t = track_of[rows[valid]]
        off = slot_of[rows[valid]].astype(np.int64) * ratio - np.repeat(q_idx, k)[valid.ravel()]
        votes: dict[tuple[int, int], float] = {}
        for ti, oi, s in zip(t.tolist(), off.tolist(), sims[valid].tolist()):
            votes[(ti, oi)] = votes.get((ti, oi), 0.0) + s
        cands = sorted(votes, key=votes.get, reverse=True)[:max_candidates]
        best = None
        scored: dict[tuple[int, int], tuple[float, int]] = {}

        def seq_sim(ti: int, oi: int) -> tuple[float, int]:
            if (ti, oi) in scored:
                return scored[(ti, oi)]
            pos = q_idx + oi  # reference position of each query window, in query hops
            on_grid = (pos % ratio == 0) & (pos >= 0) & (pos // ratio < n_slots[ti])
            if not on_grid.any():
                scored[(ti, oi)] = (-1.0, 0)
                return scored[(ti, oi)]
            r = first_row[ti] + pos[on_grid] // ratio
            s = np.einsum("ij,ij->i", q_vectors[on_grid], allv[r])
            scored[(ti, oi)] = (float(s.mean()), int(on_grid.sum()))
            return scored[(ti, oi)]

        for ti, oi in cands:
            s, n = seq_sim(ti, oi)
            if best is None or s > best[2]:
                best = (ti, oi, s, n)
        ti, oi, s, n = best
        # Refine between grid points: a parabola through the neighbours' sequence similarity.
        s_lo, s_hi = seq_sim(ti, oi - 1)[0], seq_sim(ti, oi + 1)[0]
        frac = 0.0
        denom = s_lo - 2 * s + s_hi
        if s_lo > -1 and s_hi > -1 and denom < 0:
            frac = float(np.clip(0.5 * (s_lo - s_hi) / denom, -0.5, 0.5))
        return AudioHit(self.tracks[ti], (oi + frac) * qhop, s, n, float(self.spec.score(s)))

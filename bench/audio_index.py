"""Find registered recordings in a query's audio: window kNN, then offset alignment.

Reference windows sit every ``spec.hop_s`` (0.5 s), query windows every ``spec.query_hop_s``
(0.1 s). Each query window's nearest reference windows propose (track, offset) pairs, offset =
reference start - query start. Each proposal is scored by its *sequence similarity*: every
query window is compared with the reference window nearest to where the offset puts it (the
model is trained to tolerate +-0.2 s misplacement), and the cosines are averaged over all
query windows, so windows that fall outside the reference or on its silent parts count as 0.
The best proposal wins; its offset is then fixed to within one query hop by the query windows
that land exactly on reference windows, and refined between grid points by a parabola.
The reported similarity subtracts ``spec.length_penalty / sqrt(n)`` (short queries have
higher chance matches); under ``spec.threshold_similarity`` it is no match.

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
    similarity: float  # evidence-adjusted sequence similarity
    raw_similarity: float  # mean cosine over all query windows
    n_windows: int
    score: float
    support: float = 0.0  # share of query windows whose kNN agrees with the alignment
    # (mean cosine, query windows, track, offset_s) of every segment the engine matcher aligned,
    # the answer's included: a threshold can be re-fitted and the answer re-ranked on them
    # exactly (bench/audio.py --calibrate)
    segments: tuple = ()


class AudioReferenceIndex:
    """faiss inner-product index over reference windows, plus each track's window grid."""

    def __init__(self, spec: AudioDescriptorSpec) -> None:
        import faiss

        self.spec = spec
        self._index = faiss.IndexFlatIP(spec.dims)
        self.tracks: list[str] = []
        self._track_of: list[np.ndarray] = []
        self._slot_of: list[np.ndarray] = []
        self._row_of_slot: list[np.ndarray] = []  # per track: slot -> global row, -1 = none
        self._vectors: list[np.ndarray] = []
        self._typ: list[np.ndarray | None] = []  # per track: windows' typicality to the cohort
        self._cache = None
        from copytrace.models.audio_cohort import load_cohort

        self.cohort = load_cohort(spec)

    def add(self, track: str, starts_s: np.ndarray, vectors: np.ndarray) -> None:
        slots = np.round(np.asarray(starts_s) / self.spec.hop_s).astype(np.int64)
        if len(slots) and (np.any(np.diff(slots) <= 0) or slots[0] < 0):
            raise ValueError("reference windows must be on the index hop grid, in order")
        t = len(self.tracks)
        rows = np.full(int(slots[-1]) + 1 if len(slots) else 0, -1, dtype=np.int64)
        rows[slots] = self._index.ntotal + np.arange(len(slots))
        self.tracks.append(track)
        self._row_of_slot.append(rows)
        self._track_of.append(np.full(len(slots), t, dtype=np.int32))
        self._slot_of.append(slots.astype(np.int32))
        v = np.ascontiguousarray(vectors, dtype=np.float32)
        self._vectors.append(v)
        self._typ.append(self.cohort.typicality(v) if self.cohort is not None else None)
        self._index.add(v)
        self._cache = None

    @property
    def ntotal(self) -> int:
        return int(self._index.ntotal)

    def nbytes(self) -> int:
        """Bytes held per window: the float32 vector and its (track, slot) address."""
        return self.ntotal * (self.spec.dims * 4 + 8)

    def _tables(self):
        if self._cache is None:
            self._cache = (np.concatenate(self._track_of), np.concatenate(self._slot_of),
                           np.concatenate(self._vectors))
        return self._cache

    def _sims(self, ti: int, pos: np.ndarray, q: np.ndarray, allv: np.ndarray) -> np.ndarray:
        """Cosine of each query window with the reference window at slot ``pos`` (0 if none)."""
        rows_of = self._row_of_slot[ti]
        ok = (pos >= 0) & (pos < rows_of.size)
        rows = np.where(ok, rows_of[np.clip(pos, 0, max(rows_of.size - 1, 0))], -1) if rows_of.size else np.full(pos.shape, -1)
        out = np.zeros(len(q), dtype=np.float32)
        m = rows >= 0
        if m.any():
            out[m] = np.einsum("ij,ij->i", q[m], allv[rows[m]])
        return out

    def search_as_engine(self, q_starts_s: np.ndarray, q_vectors: np.ndarray, k: int = 64,
                         n_candidates: int = 10, aligner=None) -> AudioHit | None:
        """What ``Library.query`` does with a query's audio: each query window votes once per
        recording with its best kNN similarity, the top ``n_candidates`` recordings are aligned
        (``align.offset.audio_alignments``), and the best-scoring segment is the answer."""
        from copytrace.align.base import get_aligner
        from copytrace.align.offset import audio_alignments
        from copytrace.index.votes import vote_candidates

        if len(q_vectors) == 0 or self.ntotal == 0:
            return None
        track_of, _, _ = self._tables()
        q = np.ascontiguousarray(q_vectors, np.float32)
        sims, rows = self._index.search(q, min(k, self.ntotal))
        labels = np.full(rows.shape, None, dtype=object)
        labels[rows >= 0] = track_of[rows[rows >= 0]]
        votes, _ = vote_candidates(np.arange(len(q)), sims, labels, rows)
        aligner = aligner or get_aligner("offset")
        qs = np.asarray(q_starts_s, np.float64)
        q_typ = self.cohort.typicality(q) if self.cohort is not None else None
        found, raw = None, []
        for ti in sorted(votes, key=lambda t: -votes[t])[:n_candidates]:
            r_starts = self._slot_of[ti].astype(np.float64) * self.spec.hop_s
            for a in audio_alignments(aligner, q, qs, self._vectors[ti], r_starts, self.spec,
                                      q_typ, self._typ[ti]):
                seg = a.segment
                raw.append((round(a.mean_cosine, 5), a.n_windows, self.tracks[ti],
                            round(seg.ref_start_s - seg.query_start_s, 4)))
                if found is None or a.segment.score > found[1].segment.score:
                    found = (int(ti), a)
        if found is None:
            return None
        ti, a = found
        seg = a.segment
        return AudioHit(self.tracks[ti], seg.ref_start_s - seg.query_start_s, a.similarity,
                        a.mean_cosine, a.n_windows,
                        float(self.spec.score(seg.score)), segments=tuple(raw))

    def search(self, q_starts_s: np.ndarray, q_vectors: np.ndarray, k: int = 10,
               max_candidates: int = 48) -> AudioHit | None:
        """Best (track, offset) for one query, or None if the query has no windows."""
        if len(q_vectors) == 0 or self.ntotal == 0:
            return None
        track_of, slot_of, allv = self._tables()
        hop, qhop = self.spec.hop_s, self.spec.query_hop_s
        ratio = round(hop / qhop)
        q = np.ascontiguousarray(q_vectors, np.float32)
        q_idx = np.round(np.asarray(q_starts_s) / qhop).astype(np.int64)
        sims, rows = self._index.search(q, k)
        valid = rows >= 0
        t = track_of[rows[valid]]
        off = slot_of[rows[valid]].astype(np.int64) * ratio - np.repeat(q_idx, k)[valid.ravel()]
        votes: dict[tuple[int, int], float] = {}
        for ti, oi, s in zip(t.tolist(), off.tolist(), sims[valid].tolist()):
            votes[(ti, oi)] = votes.get((ti, oi), 0.0) + s
        cands = sorted(votes, key=votes.get, reverse=True)[:max_candidates]
        n = len(q)

        def coarse(ti: int, oi: int) -> float:
            pos = np.floor((q_idx + oi) / ratio + 0.5).astype(np.int64)  # nearest ref slot
            return float(self._sims(ti, pos, q, allv).sum() / n)

        def on_grid(ti: int, oi: int) -> float:
            p = q_idx + oi
            g = p % ratio == 0
            if not g.any():
                return -1.0
            return float(self._sims(ti, p[g] // ratio, q[g], allv).mean())

        scored = [(coarse(ti, oi), ti, oi) for ti, oi in cands]
        raw, ti, oi = max(scored)
        # Fine offset: among the nearby offsets, the one whose on-grid windows agree best.
        near = {o: on_grid(ti, o) for o in range(oi - ratio // 2, oi + ratio // 2 + 1)}
        oi = max(near, key=near.get)
        s0, s_lo, s_hi = near[oi], on_grid(ti, oi - 1), on_grid(ti, oi + 1)
        frac, denom = 0.0, s_lo - 2 * s0 + s_hi
        if s_lo > -1 and s_hi > -1 and denom < 0:
            frac = float(np.clip(0.5 * (s_lo - s_hi) / denom, -0.5, 0.5))
        # Support: the share of query windows whose own nearest neighbours include the
        # reference window this alignment puts them on.
        slot_want = np.floor((q_idx + oi) / ratio + 0.5).astype(np.int64)
        nb_track = track_of[np.maximum(rows, 0)]
        nb_slot = slot_of[np.maximum(rows, 0)]
        agree = valid & (nb_track == ti) & (np.abs(nb_slot - slot_want[:, None]) <= 0)
        support = float(agree.any(1).mean())
        adj = raw - self.spec.length_penalty / np.sqrt(n)
        return AudioHit(self.tracks[ti], (oi + frac) * qhop, float(adj), raw, n,
                        float(self.spec.score(adj)), support)

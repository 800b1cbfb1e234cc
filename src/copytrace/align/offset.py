"""Constant-offset alignment with sub-grid precision, for densely sampled signals (audio).

Audio copies keep their speed (or nearly), so one offset ``t_ref - t_query`` explains the whole
copied stretch. Each query window's best reference matches vote for an offset; for the strongest
offsets the *sequence similarity* is measured along that offset. With ``sample="grid"`` (the
default; queries hop finer than references) each reference window is compared with the query
window closest to it, so every pair read is aligned to within half a query hop; with
``sample="interpolate"`` each query window reads the similarity at its reference position,
interpolated between the two nearest reference windows. A parabola through the neighbouring
offsets refines the offset between grid points.
The segment is the longest stretch of query windows whose smoothed similarity along the offset
stays above ``min_sim``, gaps of up to ``max_gap_windows`` bridged (noise breaks a copy into
pieces); its score is the mean similarity over the stretch.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import ClassVar

import numpy as np

from copytrace.align.base import (
    Aligner,
    BlockedSimilarity,
    DenseSimilarity,
    check_inputs,
    check_times,
    register_aligner,
    sampling_interval_s,
    similarity_matrix,
)
from copytrace.types import Segment


@dataclass(frozen=True)
class OffsetConfig:
    MIN_SIMILARITY_FIELD: ClassVar[str] = "min_sim"  # set from the descriptor's registry entry
    top_k: int = 3
    max_offsets: int = 32
    min_sim: float = 0.35
    smooth_windows: int = 5
    min_windows: int = 5
    max_segments: int = 4
    # Long queries hold more copies: one more segment slot per this many seconds of query
    # beyond max_segments' worth (up to max_offsets). Queries up to max_segments x this long
    # (the calibration's, <= 30 s) keep max_segments.
    query_s_per_segment: float = 15.0
    max_gap_windows: int = 20  # 2 s at the 0.1 s query hop
    sample: str = "grid"

    def __post_init__(self) -> None:
        if self.sample not in ("grid", "interpolate"):
            raise ValueError(f"sample is 'grid' or 'interpolate', not {self.sample!r}")
        if self.top_k < 1 or self.max_offsets < 1 or self.max_segments < 1:
            raise ValueError("top_k, max_offsets and max_segments must be >= 1")
        if not -1.0 <= self.min_sim <= 1.0:
            raise ValueError(f"min_sim is a cosine similarity in [-1, 1], not {self.min_sim}")
        if not self.query_s_per_segment > 0:
            raise ValueError(f"query_s_per_segment must be positive, not {self.query_s_per_segment}")
        if self.smooth_windows < 1 or self.min_windows < 1 or self.max_gap_windows < 0:
            raise ValueError("smooth_windows and min_windows must be >= 1, max_gap_windows >= 0")


@register_aligner("offset", OffsetConfig)
class OffsetAligner(Aligner):
    def __init__(self, config: OffsetConfig = OffsetConfig()) -> None:
        self.config = config

    def _pairs(self, qt: np.ndarray, rt: np.ndarray, off: float):
        """The similarity pairs the sequence along ``off`` reads: (query windows that have a
        value, then the (row, column) indices it reads them from; interpolation reads two
        columns per window, with their weights)."""
        pos = qt + off
        if self.config.sample == "grid":
            # Each query window takes the similarity of its nearest reference window with the
            # query window that lies closest to that reference window along ``off``: one
            # well-aligned pair per reference window (the descriptor's similarity falls off
            # fast with misplacement: a clean copy reads 0.80 at 0.2 s, against 0.96+ within
            # 0.05 s).
            ok = np.flatnonzero((pos >= rt[0]) & (pos <= rt[-1]))
            j = _nearest(rt, pos[ok])
            return ok, (_nearest(qt, rt[j] - off), j), None
        j = np.searchsorted(rt, pos, side="right") - 1
        ok = np.flatnonzero((j >= 0) & (pos <= rt[-1]))
        j0 = j[ok]
        j1 = np.minimum(j0 + 1, len(rt) - 1)
        span = np.where(j1 > j0, rt[j1] - rt[j0], 1.0)
        a = np.clip((pos[ok] - rt[j0]) / span, 0.0, 1.0)
        return ok, (np.concatenate([ok, ok]), np.concatenate([j0, j1])), a

    def _along(self, sim, qt: np.ndarray, rt: np.ndarray, off: float) -> np.ndarray:
        """Similarity of each query window at reference time ``qt + off`` (NaN off the ref);
        ``sim`` a ``DenseSimilarity`` or ``BlockedSimilarity``."""
        out = np.full(len(qt), np.nan, dtype=np.float64)
        ok, (rows, cols), a = self._pairs(qt, rt, off)
        if len(ok) == 0:
            return out
        v = sim.values(rows, cols)
        if a is None:
            out[ok] = v
        else:
            out[ok] = (1 - a) * v[: len(ok)] + a * v[len(ok):]
        return out

    @staticmethod
    def _mean(values: np.ndarray) -> float:
        v = values[~np.isnan(values)]
        return float(v.mean()) if len(v) else -1.0

    def align(self, sim, q_times_s: np.ndarray, r_times_s: np.ndarray) -> list[Segment]:
        """``sim``: the [Nq, Nr] matrix, or a ``BlockedSimilarity`` that computes it in row
        blocks (the same segments, in memory bounded by a block: long audio)."""
        if isinstance(sim, BlockedSimilarity):
            qt, rt = check_times(sim.shape, q_times_s, r_times_s)
        else:
            sim, qt, rt = check_inputs(sim, q_times_s, r_times_s)
            sim = DenseSimilarity(sim)
        if sim.shape[0] == 0 or sim.shape[1] == 0:
            return []
        c = self.config
        dq, dr = sampling_interval_s(qt), sampling_interval_s(rt)
        k = min(c.top_k, sim.shape[1])
        # Each query window's best reference windows vote for their offset (block by block:
        # each row's vote depends on its own row only).
        bins, weights = [], []
        for a, blk in sim.blocks():
            cols = np.argpartition(-blk, k - 1, axis=1)[:, :k]
            vals = np.take_along_axis(blk, cols, axis=1)
            offs = rt[cols] - qt[a:a + len(blk), None]
            bins.append(np.round(offs / dq).astype(np.int64).ravel())
            weights.append(np.maximum(vals.ravel(), 0.0))
        ub, inv = np.unique(np.concatenate(bins), return_inverse=True)
        votes = np.bincount(inv, weights=np.concatenate(weights))
        order = np.argsort(-votes)[: c.max_offsets]
        # Every value read from here on lies near one of these offsets: computed in one pass.
        nr = sim.shape[1]
        near = [np.unique(r * nr + j) for i in order for d in (-dq / 2, 0.0, dq / 2)
                for r, j in [self._pairs(qt, rt, ub[i] * dq + d)[1]]]
        keys = np.concatenate(near)
        sim.keep(keys // nr, keys % nr)
        free = np.ones(len(qt), dtype=bool)
        out: list[Segment] = []
        span_s = float(qt[-1] - qt[0] + dq)
        budget = max(c.max_segments, min(c.max_offsets, int(span_s // c.query_s_per_segment)))
        candidates = sorted(
            ((self._mean(self._along(sim, qt, rt, ub[i] * dq)), ub[i] * dq) for i in order),
            reverse=True,
        )
        for _, off in candidates:
            if len(out) >= budget:
                break
            off = self._refine(sim, qt, rt, off, dq)
            seg = self._segment(self._along(sim, qt, rt, off), qt, off, dq, dr, free)
            if seg is not None:
                out.append(seg)
        return out

    def _refine(self, sim, qt, rt, off: float, step: float) -> float:
        s0 = self._mean(self._along(sim, qt, rt, off))
        lo = self._mean(self._along(sim, qt, rt, off - step / 2))
        hi = self._mean(self._along(sim, qt, rt, off + step / 2))
        denom = lo - 2 * s0 + hi
        if denom < 0:
            return off + float(np.clip(0.5 * (lo - hi) / denom, -0.5, 0.5)) * step / 2
        return off

    def _segment(self, along, qt, off, dq, dr, free) -> Segment | None:
        c = self.config
        vals = np.where(np.isnan(along), -1.0, along)
        kernel = np.ones(c.smooth_windows) / c.smooth_windows
        smooth = np.convolve(vals, kernel, mode="same") if len(vals) >= c.smooth_windows else vals
        good = (smooth >= c.min_sim) & free & ~np.isnan(along)
        if not good.any():
            return None
        # Runs of good windows; noise breaks a copied stretch into pieces, so runs closer than
        # ``max_gap_windows`` are one stretch. The longest stretch is the segment.
        edges = np.flatnonzero(np.diff(np.concatenate([[0], good.astype(np.int8), [0]])))
        starts, ends = list(edges[::2]), list(edges[1::2])
        merged = [[starts[0], ends[0]]]
        for a0, b0 in zip(starts[1:], ends[1:]):
            if a0 - merged[-1][1] <= c.max_gap_windows and free[merged[-1][1]:a0].all():
                merged[-1][1] = b0
            else:
                merged.append([a0, b0])
        a, b = (int(v) for v in max(merged, key=lambda r: r[1] - r[0]))
        if b - a < min(c.min_windows, len(qt)):  # a query shorter than that may match whole
            return None
        free[a:b] = False
        q0, q1 = float(qt[a]), float(qt[b - 1] + dq)
        return Segment(q0, q1, float(q0 + off), float(q1 + off), float(np.mean(vals[a:b])))


def _nearest(grid: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Index of the point of the ascending ``grid`` nearest to each ``x``."""
    i = np.clip(np.searchsorted(grid, x), 1, max(len(grid) - 1, 1))
    lo, hi = i - 1, np.minimum(i, len(grid) - 1)
    return np.where(np.abs(grid[lo] - x) <= np.abs(grid[hi] - x), lo, hi)


@dataclass(frozen=True)
class AudioAlignment:
    """One aligned stretch of a query's audio against one recording: ``segment`` as the engine
    reports it (score = evidence-weighed similarity), ``n_windows`` the query windows it spans,
    ``mean_cosine`` their mean window similarity and ``similarity`` that minus the length
    penalty (what the threshold is calibrated on)."""

    segment: Segment
    n_windows: int
    mean_cosine: float
    similarity: float


def audio_alignments(aligner: Aligner, q_vectors: np.ndarray, q_starts_s: np.ndarray,
                     r_vectors: np.ndarray, r_starts_s: np.ndarray, spec,
                     q_typ: np.ndarray | None = None,
                     r_typ: np.ndarray | None = None) -> list[AudioAlignment]:
    """Alignments of one query's audio against one recording, best first.

    A segment's similarity is its mean window similarity minus ``spec.length_penalty / sqrt(n)``,
    n the query windows it spans: a short stretch's best chance match is higher than a long
    one's, and the threshold is calibrated (bench/audio.py --calibrate) on exactly this number.
    Its score is that similarity's margin over the threshold weighed by the evidence,
    ``spec.evidence_similarity``: a long, noisy true alignment outranks a short chance run of
    high similarity, and the decision (score >= threshold) is the calibrated one.
    ``q_typ`` / ``r_typ``: the windows' typicality to the model's cohort
    (``models.audio_cohort``), taken off each pair's cosine when the entry names a cohort."""
    from copytrace.models.audio_cohort import normalised_similarity

    qt = np.asarray(q_starts_s, np.float64)
    if isinstance(aligner, OffsetAligner):
        # Row blocks: a 1-hour query against a 1-hour recording never holds the whole matrix.
        qa = None if q_typ is None else np.asarray(q_typ)

        def adjust(block: np.ndarray, a: int, b: int) -> np.ndarray:
            return normalised_similarity(block, spec, None if qa is None else qa[a:b], r_typ)

        sim = BlockedSimilarity(q_vectors, r_vectors, adjust)
    else:
        sim = normalised_similarity(similarity_matrix(q_vectors, r_vectors), spec, q_typ, r_typ)
    segments = aligner.align(sim, qt, np.asarray(r_starts_s, np.float64))
    # The aligner ends a segment one query hop after its last window's start; the audio that
    # window covers runs on to its start + window_s.
    tail = max(0.0, spec.window_s - spec.query_hop_s)
    half_hop = spec.query_hop_s / 2
    out = []
    for s in segments:
        n = max(1, int(np.count_nonzero((qt >= s.query_start_s) & (qt < s.query_end_s - half_hop))))
        sim = float(s.score - spec.length_penalty / np.sqrt(n))
        seg = replace(s, query_end_s=s.query_end_s + tail, ref_end_s=s.ref_end_s + tail,
                      score=float(spec.evidence_similarity(sim, n)))
        out.append(AudioAlignment(seg, n, float(s.score), sim))
    return sorted(out, key=lambda a: -a.segment.score)


def audio_segments(aligner: Aligner, q_vectors: np.ndarray, q_starts_s: np.ndarray,
                   r_vectors: np.ndarray, r_starts_s: np.ndarray, spec,
                   q_typ: np.ndarray | None = None,
                   r_typ: np.ndarray | None = None) -> list[Segment]:
    """The segments of ``audio_alignments``, best first, as the engine reports them."""
    return [a.segment for a in audio_alignments(aligner, q_vectors, q_starts_s, r_vectors,
                                                r_starts_s, spec, q_typ, r_typ)]

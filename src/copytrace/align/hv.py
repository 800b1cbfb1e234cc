"""Hough-voting alignment (HV): matches vote for a temporal offset.

After VCSL's HV baseline (Douze et al. 2010): each query frame's ``top_k`` reference matches
above ``min_sim`` vote, weighted by similarity, for ``offset = t_ref - t_query`` in bins of
``bin_s``; every strong peak collects the matches within ``tolerance_s`` of its offset, which
split into segments wherever the query gap exceeds ``max_gap_s``. Assumes unchanged speed.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from copytrace.align.base import (
    Aligner, check_inputs, register_aligner, sampling_interval_s, segment_from_path,
)
from copytrace.types import Segment


@dataclass(frozen=True)
class HVConfig:
    MIN_SIMILARITY_FIELD: ClassVar[str] = "min_sim"  # set from the descriptor's registry entry
    top_k: int = 5
    min_sim: float = 0.5
    bin_s: float = 1.0
    tolerance_s: float = 1.0
    max_gap_s: float = 5.0
    min_votes: float = 1.5
    min_length_s: float = 1.5
    max_segments: int = 16

    def __post_init__(self) -> None:
        if self.top_k < 1 or self.max_segments < 1:
            raise ValueError("top_k and max_segments must be >= 1")
        if not -1.0 <= self.min_sim <= 1.0:
            raise ValueError(f"min_sim is a cosine similarity in [-1, 1], not {self.min_sim}")
        if self.bin_s <= 0 or self.tolerance_s <= 0 or self.max_gap_s <= 0:
            raise ValueError("bin_s, tolerance_s and max_gap_s must be positive")


@register_aligner("hv", HVConfig)
class HoughVotingAligner(Aligner):
    def __init__(self, config: HVConfig = HVConfig()) -> None:
        self.config = config

    def align(
        self, sim: np.ndarray, q_times_s: np.ndarray, r_times_s: np.ndarray
    ) -> list[Segment]:
        sim, qt, rt = check_inputs(sim, q_times_s, r_times_s)
        if sim.size == 0:
            return []
        c = self.config
        k = min(c.top_k, sim.shape[1])
        cols = np.argpartition(-sim, k - 1, axis=1)[:, :k]
        vals = np.take_along_axis(sim, cols, axis=1)
        keep = vals >= c.min_sim
        qi = np.repeat(np.arange(sim.shape[0]), k).reshape(-1, k)[keep]
        rj, v = cols[keep], vals[keep]
        if len(qi) == 0:
            return []
        off = rt[rj] - qt[qi]
        bins = np.round(off / c.bin_s).astype(np.int64)
        used = np.zeros(len(qi), dtype=bool)
        out: list[Segment] = []
        dq = sampling_interval_s(qt)
        while len(out) < c.max_segments:
            free = ~used
            if not free.any():
                break
            ub, inv = np.unique(bins[free], return_inverse=True)
            votes = np.bincount(inv, weights=v[free])
            if votes.max() < c.min_votes:
                break
            peak = ub[int(np.argmax(votes))] * c.bin_s
            member = free & (np.abs(off - peak) <= c.tolerance_s)
            used |= member | (free & (bins == ub[int(np.argmax(votes))]))
            sel = np.flatnonzero(member)
            # One match per query frame: the most similar one.
            sel = sel[np.lexsort((-v[sel], qi[sel]))]
            sel = sel[np.concatenate([[True], np.diff(qi[sel]) > 0])]
            gaps = np.flatnonzero(np.diff(qt[qi[sel]]) > c.max_gap_s + dq / 2)
            for part in np.split(sel, gaps + 1):
                seg = segment_from_path(qi[part], rj[part], v[part], qt, rt)
                if seg.query_end_s - seg.query_start_s >= c.min_length_s:
                    out.append(seg)
        return sorted(out, key=lambda s: -s.score)[: c.max_segments]

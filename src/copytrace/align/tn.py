"""Temporal-network alignment (TN), the default aligner.

After Tan et al. (ACM MM 2009) as evaluated in VCSL (CVPR 2022): every query frame keeps its
``top_k`` most similar reference frames above ``min_sim``; these matches are nodes of a DAG
whose edges join matches that move forward in both videos by at most ``max_step_s``. The
heaviest path (sum of similarities) is a copied segment; its nodes' box is removed and the search
repeats, so one pair can yield several segments. Forward steps of unequal size on the two axes
let a path follow speed changes and dropped or duplicated frames.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from copytrace.align.base import (
    Aligner, check_inputs, plausible_speed, register_aligner, sampling_interval_s,
    segment_from_path,
)
from copytrace.types import Segment


@dataclass(frozen=True)
class TNConfig:
    MIN_SIMILARITY_FIELD: ClassVar[str] = "min_sim"  # set from the descriptor's registry entry
    top_k: int = 5
    min_sim: float = 0.5
    max_step_s: float = 2.5
    # Each edge's local speed (reference step / query step) stays within [1/max_speed,
    # max_speed], give or take 0.6 reference sampling intervals of timing jitter.
    max_speed: float = 2.0
    # A node earns (sim - min_sim + node_margin); each query sample skipped by an edge costs
    # gap_penalty. Weak matches hanging on a copy across a gap then lower its path's weight.
    node_margin: float = 0.1
    gap_penalty: float = 0.2
    min_length_s: float = 1.5
    min_frames: int = 2
    max_segments: int = 16

    def __post_init__(self) -> None:
        if self.top_k < 1:
            raise ValueError(f"top_k must be >= 1, not {self.top_k}")
        if not -1.0 <= self.min_sim <= 1.0:
            raise ValueError(f"min_sim is a cosine similarity in [-1, 1], not {self.min_sim}")
        if self.max_step_s <= 0:
            raise ValueError(f"max_step_s must be positive, not {self.max_step_s}")
        if self.node_margin <= 0 or self.gap_penalty < 0:
            raise ValueError("node_margin must be positive and gap_penalty >= 0")
        if self.max_speed < 1:
            raise ValueError(f"max_speed must be >= 1, not {self.max_speed}")
        if self.min_length_s < 0 or self.min_frames < 1 or self.max_segments < 1:
            raise ValueError("min_length_s >= 0, min_frames >= 1 and max_segments >= 1 please")


@register_aligner("tn", TNConfig)
class TemporalNetworkAligner(Aligner):
    def __init__(self, config: TNConfig = TNConfig()) -> None:
        self.config = config

    def _nodes(self, sim: np.ndarray):
        k = min(self.config.top_k, sim.shape[1])
        cols = np.argpartition(-sim, k - 1, axis=1)[:, :k]
        vals = np.take_along_axis(sim, cols, axis=1)
        keep = vals >= self.config.min_sim
        qi = np.repeat(np.arange(sim.shape[0]), k).reshape(-1, k)[keep]
        return qi, cols[keep], vals[keep]

    def align(
        self, sim: np.ndarray, q_times_s: np.ndarray, r_times_s: np.ndarray
    ) -> list[Segment]:
        sim, qt, rt = check_inputs(sim, q_times_s, r_times_s)
        if sim.size == 0:
            return []
        qi, rj, val = self._nodes(sim)
        order = np.lexsort((rj, qi))
        qi, rj, val = qi[order], rj[order], val[order].astype(np.float64)
        alive = np.ones(len(qi), dtype=bool)
        out: list[Segment] = []
        while alive.any() and len(out) < self.config.max_segments:
            path = self._heaviest_path(qi, rj, val, alive, qt, rt)
            if path is None:
                break
            alive[path] = False
            # Remove every node inside the path's box: they would only re-find the same copy.
            box = ((qi >= qi[path].min()) & (qi <= qi[path].max())
                   & (rj >= rj[path].min()) & (rj <= rj[path].max()))
            alive &= ~box
            seg = segment_from_path(qi[path], rj[path], val[path], qt, rt)
            if (len(path) >= self.config.min_frames
                    and seg.query_end_s - seg.query_start_s >= self.config.min_length_s
                    and plausible_speed(seg)):
                out.append(seg)
        return sorted(out, key=lambda s: -s.score)

    def _heaviest_path(self, qi, rj, val, alive, qt, rt) -> np.ndarray | None:
        idx = np.flatnonzero(alive)
        if len(idx) == 0:
            return None
        tq, tr = qt[qi[idx]], rt[rj[idx]]
        v = val[idx] - self.config.min_sim + self.config.node_margin
        best = v.copy()
        dq_s = sampling_interval_s(qt)
        prev = np.full(len(idx), -1, dtype=np.int64)
        count = np.ones(len(idx), dtype=np.int64)  # nodes on the best path ending here
        step = self.config.max_step_s + 1e-6
        jitter = 0.6 * sampling_interval_s(rt)
        fast, slow = self.config.max_speed, 1.0 / self.config.max_speed
        # Nodes are sorted by query time, so the predecessors of a query sample's nodes lie in
        # [lo, first node of its row): a whole row is relaxed at once.
        rows = np.flatnonzero(np.append(True, tq[1:] != tq[:-1]))
        ends = np.append(rows[1:], len(idx))
        lo = np.searchsorted(tq, tq[rows] - step, side="left")
        for a, b, e in zip(lo.tolist(), rows.tolist(), ends.tolist()):
            if a >= b:
                continue
            dr = tr[b:e, None] - tr[None, a:b]
            dq = tq[b:e, None] - tq[None, a:b]
            ok = (dr > 0) & (dr <= step) & (dr <= fast * dq + jitter) & (dr >= slow * dq - jitter)
            skipped = np.maximum(0.0, np.round(dq / dq_s) - 1)
            cand = np.where(ok, best[None, a:b] - self.config.gap_penalty * skipped, -np.inf)
            m = np.argmax(cand, axis=1)
            top = cand[np.arange(e - b), m]
            better = top > 0
            best[b:e] = np.where(better, v[b:e] + top, best[b:e])
            prev[b:e] = np.where(better, a + m, prev[b:e])
            count[b:e] = np.where(better, count[a + m] + 1, count[b:e])
        # Paths too short to be a segment are never picked: isolated strong matches would
        # otherwise be taken out one search at a time.
        end_ok = count >= self.config.min_frames
        if not end_ok.any():
            return None
        n = int(np.argmax(np.where(end_ok, best, -np.inf)))
        path = [n]
        while prev[path[-1]] >= 0:
            path.append(int(prev[path[-1]]))
        return idx[np.asarray(path[::-1])]

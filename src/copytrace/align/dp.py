"""Dynamic-programming alignment (DP): local alignment on the similarity matrix.

In the spirit of VCSL's DP baseline (Chou et al. 2015): similarities above ``bias`` earn score,
those below cost it, and a Smith-Waterman recursion finds the best-scoring monotone path. Moves
come from the previous query row only — diagonal (1, 1), stretch (1, 0) and skip (1, 2) — so
each row is one vectorised step and speeds between 0 and 2 are followed. Found paths are masked
and the search repeats for further segments.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from copytrace.align.base import (
    Aligner, check_inputs, plausible_speed, register_aligner, segment_from_path,
)
from copytrace.types import Segment


@dataclass(frozen=True)
class DPConfig:
    MIN_SIMILARITY_FIELD: ClassVar[str] = "bias"  # set from the descriptor's registry entry
    bias: float = 0.5
    off_diagonal_penalty: float = 0.1
    min_score: float = 0.3
    min_length_s: float = 1.5
    min_frames: int = 2
    max_segments: int = 16

    def __post_init__(self) -> None:
        if not -1.0 <= self.bias <= 1.0:
            raise ValueError(f"bias is a cosine similarity in [-1, 1], not {self.bias}")
        if self.off_diagonal_penalty < 0 or self.min_score < 0:
            raise ValueError("off_diagonal_penalty and min_score must be >= 0")
        if self.min_length_s < 0 or self.min_frames < 1 or self.max_segments < 1:
            raise ValueError("min_length_s >= 0, min_frames >= 1 and max_segments >= 1 please")


@register_aligner("dp", DPConfig)
class DynamicProgrammingAligner(Aligner):
    def __init__(self, config: DPConfig = DPConfig()) -> None:
        self.config = config

    def align(
        self, sim: np.ndarray, q_times_s: np.ndarray, r_times_s: np.ndarray
    ) -> list[Segment]:
        sim, qt, rt = check_inputs(sim, q_times_s, r_times_s)
        if sim.size == 0:
            return []
        gain = sim.astype(np.float64) - self.config.bias
        out: list[Segment] = []
        for _ in range(self.config.max_segments):
            path = self._best_path(gain)
            if path is None:
                break
            qi, rj = path
            gain[qi.min(): qi.max() + 1, rj.min(): rj.max() + 1] = -1.0
            seg = segment_from_path(qi, rj, sim[qi, rj], qt, rt)
            if (len(qi) >= self.config.min_frames
                    and seg.query_end_s - seg.query_start_s >= self.config.min_length_s
                    and plausible_speed(seg)):
                out.append(seg)
        return sorted(out, key=lambda s: -s.score)

    def _best_path(self, gain: np.ndarray):
        nq, nr = gain.shape
        pen = self.config.off_diagonal_penalty
        score = np.zeros((nq, nr))
        move = np.zeros((nq, nr), dtype=np.int8)  # 0 start, 1 diag, 2 stretch, 3 skip
        prev = np.zeros(nr)
        for i in range(nq):
            diag = np.concatenate([[0.0], prev[:-1]])
            skip = np.concatenate([[0.0, 0.0], prev[:-2]])[:nr] - pen
            options = np.stack([np.zeros(nr), diag, prev - pen, skip])
            m = np.argmax(options, axis=0)
            row = gain[i] + options[m, np.arange(nr)]
            row = np.maximum(row, 0.0)
            move[i] = np.where(row > 0, m, 0)
            score[i] = row
            prev = row
        i, j = np.unravel_index(int(np.argmax(score)), score.shape)
        if score[i, j] < self.config.min_score:
            return None
        qi, rj = [], []
        while True:
            # Cells that only carried the path through a dip are not matches.
            if gain[i, j] > 0:
                qi.append(i)
                rj.append(j)
            mv = move[i, j]
            if mv == 0 or i == 0:
                break
            i, j = i - 1, j - (1 if mv == 1 else 0 if mv == 2 else 2)
            if j < 0 or score[i, j] <= 0:
                break
        if not qi:
            return None
        return np.asarray(qi[::-1]), np.asarray(rj[::-1])

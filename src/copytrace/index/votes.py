"""Candidate works from nearest-neighbour hits, aggregated per work as in VSC 2022."""
from __future__ import annotations

import numpy as np


def vote_candidates(frame_of: np.ndarray, sims: np.ndarray, labels: np.ndarray,
                    offsets: np.ndarray) -> tuple[dict, dict]:
    """Votes and best hit per work from kNN results.

    ``sims``, ``labels`` (work of each hit, None where the index had none) and ``offsets`` (the
    hit's row inside its work) are [rows, k]; ``frame_of`` maps each searched row to its query
    frame (several rows per frame when views are searched too). Each query frame votes once per
    work, with its best positive similarity to it through any of its rows, and a work's votes
    are their sum. Returns ``(votes {work: float}, best {work: (sim, query frame, offset)})``.
    """
    frame_votes: dict[tuple[int, object], float] = {}
    best: dict = {}
    for qi, row_sims, row_works, row_offsets in zip(
        frame_of.tolist(), sims.tolist(), labels.tolist(), offsets.tolist()
    ):
        for s, w, o in zip(row_sims, row_works, row_offsets):
            if w is None:
                continue
            key = (qi, w)
            if s > frame_votes.get(key, 0.0):
                frame_votes[key] = s
            if w not in best or s > best[w][0]:
                best[w] = (s, qi, o)
    votes: dict = {}
    for (_, w), s in frame_votes.items():
        votes[w] = votes.get(w, 0.0) + s
    return votes, best

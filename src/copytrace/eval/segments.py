"""Segment-level metrics for video copy localisation: VCSL P/R/F and VSC 2022 segment AP.

A copy is a box ``(q_start, q_end, r_start, r_end)`` in seconds between one query and one
reference. On each axis, the overlap of a pair is the length of (union of predicted intervals)
∩ (union of true intervals); precision = overlap / predicted length, recall = overlap / true
length, lengths being those of the unions.

* VCSL (CVPR 2022): per pair P = P_q·P_r and R = R_q·R_r; P and R are means over the pairs
  that hold a true copy; F = 2PR/(P+R). A true pair without prediction scores P = R = 0.
  False alarms on pairs without a copy don't enter VCSL's numbers: ``false_pair_rate`` counts
  them beside it.
* VSC 2022 segment AP: every prediction of every pair in one list sorted by score; walking
  down, per-axis precision and recall are summed over all pairs (micro average) and combined
  by geometric means √(P_q·P_r), √(R_q·R_r); AP = Σ P·ΔR.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

Box = tuple[float, float, float, float]  # q_start_s, q_end_s, r_start_s, r_end_s


@dataclass(frozen=True)
class ScoredBox:
    query: str
    ref: str
    box: Box
    score: float


def union_length(intervals: list[tuple[float, float]]) -> float:
    total, end = 0.0, -np.inf
    for a, b in sorted((min(a, b), max(a, b)) for a, b in intervals):
        if b <= end:
            continue
        total += b - max(a, end)
        end = b
    return total


def overlap_length(pred: list[tuple[float, float]], true: list[tuple[float, float]]) -> float:
    """Length of (∪ pred) ∩ (∪ true)."""
    return union_length(pred) + union_length(true) - union_length(pred + true)


def _axes(boxes: list[Box]):
    return [(b[0], b[1]) for b in boxes], [(b[2], b[3]) for b in boxes]


def pair_precision_recall(pred: list[Box], true: list[Box]) -> tuple[float, float]:
    """VCSL precision and recall of one (query, reference) pair."""
    if not pred or not true:
        return 0.0, 0.0
    pq, pr = _axes(pred)
    tq, tr = _axes(true)
    oq, orr = overlap_length(pq, tq), overlap_length(pr, tr)
    lq, lr = union_length(pq), union_length(pr)
    gq, gr = union_length(tq), union_length(tr)
    prec = (oq / lq if lq > 0 else 0.0) * (orr / lr if lr > 0 else 0.0)
    rec = (oq / gq if gq > 0 else 0.0) * (orr / gr if gr > 0 else 0.0)
    return prec, rec


@dataclass(frozen=True)
class VCSLResult:
    precision: float
    recall: float
    f1: float
    n_true_pairs: int
    false_pair_rate: float


def vcsl_prf(
    predictions: dict[tuple[str, str], list[Box]], truth: dict[tuple[str, str], list[Box]]
) -> VCSLResult:
    """``predictions``/``truth`` map (query, ref) -> boxes. Means over pairs with a true copy."""
    true_pairs = [k for k, v in truth.items() if v]
    if not true_pairs:
        raise ValueError("VCSL metrics need at least one pair with a true copy")
    ps, rs = zip(*(pair_precision_recall(predictions.get(k, []), truth[k]) for k in true_pairs))
    p, r = float(np.mean(ps)), float(np.mean(rs))
    f = 2 * p * r / (p + r) if p + r > 0 else 0.0
    predicted = [k for k, v in predictions.items() if v]
    false = sum(1 for k in predicted if not truth.get(k))
    return VCSLResult(p, r, f, len(true_pairs), false / len(predicted) if predicted else 0.0)


def vsc_segment_ap(predictions: list[ScoredBox], truth: dict[tuple[str, str], list[Box]]) -> float:
    """VSC 2022 matching-track segment AP over all pairs (micro-averaged lengths)."""
    true_q = sum(union_length(_axes(v)[0]) for v in truth.values() if v)
    true_r = sum(union_length(_axes(v)[1]) for v in truth.values() if v)
    if true_q <= 0 or true_r <= 0:
        raise ValueError("segment AP needs at least one true copy of positive length")
    by_pair: dict[tuple[str, str], list[Box]] = defaultdict(list)
    # Running per-pair contributions, so each step only recomputes the pair it touched.
    contrib: dict[tuple[str, str], tuple[float, float, float, float]] = {}
    sums = np.zeros(4)  # overlap_q, overlap_r, pred_len_q, pred_len_r
    ap, last_recall = 0.0, 0.0
    order = sorted(predictions, key=lambda p: -p.score)
    for i, p in enumerate(order):
        key = (p.query, p.ref)
        by_pair[key].append(p.box)
        pq, pr = _axes(by_pair[key])
        tq, tr = _axes(truth.get(key, []))
        new = (overlap_length(pq, tq) if tq else 0.0, overlap_length(pr, tr) if tr else 0.0,
               union_length(pq), union_length(pr))
        sums += np.asarray(new) - np.asarray(contrib.get(key, (0.0, 0.0, 0.0, 0.0)))
        contrib[key] = new
        # Ties in score are one threshold: only measure after the last of them.
        if i + 1 < len(order) and order[i + 1].score == p.score:
            continue
        prec = np.sqrt((sums[0] / sums[2]) * (sums[1] / sums[3])) if sums[2] > 0 < sums[3] else 0.0
        rec = np.sqrt((sums[0] / true_q) * (sums[1] / true_r))
        ap += prec * max(0.0, rec - last_recall)
        last_recall = max(last_recall, rec)
    return float(ap)

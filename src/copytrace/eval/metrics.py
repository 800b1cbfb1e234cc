"""Copy-detection metrics on pooled predictions (numpy only).

A prediction is one ``(query_id, ref_id, score)`` triple; ground truth is a set of true
``(query_id, ref_id)`` pairs. Following ISC 2021 / DISC21 (see shared/REFERENCE.md), every
query's predictions share one ranking, so a single threshold has to work for all queries.

Ties: predictions with equal scores are one threshold step. Precision is measured at the end of
the step and the step's whole recall gain is credited at that precision, so the result never
depends on the order in which tied predictions happen to be listed (the convention of
scikit-learn's ``average_precision_score``).

Duplicates: when a (query, ref) pair is predicted more than once, only its highest score counts.
"""
from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PrecisionRecall:
    """Operating points at each distinct score, highest threshold first.

    Row i: keeping the predictions with ``score >= thresholds[i]`` gives ``precision[i]`` and
    ``recall[i]`` (``n_kept[i]`` predictions).
    """

    thresholds: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    n_kept: np.ndarray
    n_true_pairs: int


def _dedupe(
    query_ids: Sequence[Hashable], ref_ids: Sequence[Hashable], scores: np.ndarray
) -> tuple[list[tuple[Hashable, Hashable]], np.ndarray]:
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if not (len(query_ids) == len(ref_ids) == scores.shape[0]):
        raise ValueError(
            f"query_ids ({len(query_ids)}), ref_ids ({len(ref_ids)}) and scores "
            f"({scores.shape[0]}) must have the same length"
        )
    if np.isnan(scores).any():
        raise ValueError("scores contain NaN")
    best: dict[tuple[Hashable, Hashable], float] = {}
    for q, r, s in zip(query_ids, ref_ids, scores.tolist()):
        key = (q, r)
        if key not in best or s > best[key]:
            best[key] = s
    pairs = list(best)
    return pairs, np.fromiter(best.values(), dtype=np.float64, count=len(pairs))


def precision_recall(
    query_ids: Sequence[Hashable],
    ref_ids: Sequence[Hashable],
    scores: Sequence[float] | np.ndarray,
    gt_pairs: Iterable[tuple[Hashable, Hashable]],
) -> PrecisionRecall:
    """Pool all predictions, sort by score, and measure precision/recall at each distinct score."""
    gt = set(gt_pairs)
    if not gt:
        raise ValueError("ground truth has no true pairs: recall is undefined")
    pairs, s = _dedupe(query_ids, ref_ids, np.asarray(scores))
    if s.size == 0:
        empty = np.zeros(0)
        return PrecisionRecall(empty, empty, empty, np.zeros(0, dtype=np.int64), len(gt))
    order = np.argsort(-s, kind="stable")
    s = s[order]
    hit = np.fromiter((pairs[i] in gt for i in order), dtype=bool, count=len(order))
    tp = np.cumsum(hit)
    # Last index of each block of equal scores: the only places a threshold can cut.
    ends = np.flatnonzero(np.append(s[1:] != s[:-1], True))
    n_kept = ends + 1
    return PrecisionRecall(
        thresholds=s[ends],
        precision=tp[ends] / n_kept,
        recall=tp[ends] / len(gt),
        n_kept=n_kept,
        n_true_pairs=len(gt),
    )


def micro_average_precision(pr: PrecisionRecall) -> float:
    """µAP = Σ (R_i − R_{i−1}) · P_i over the pooled ranking (ISC 2021 definition)."""
    if pr.recall.size == 0:
        return 0.0
    gains = np.diff(np.concatenate([[0.0], pr.recall]))
    return float(np.sum(gains * pr.precision))


@dataclass(frozen=True)
class OperatingPoint:
    threshold: float
    precision: float
    recall: float


def recall_at_precision(pr: PrecisionRecall, min_precision: float = 0.9) -> OperatingPoint:
    """Highest recall over thresholds whose precision is at least ``min_precision``.

    When no threshold reaches it, recall is 0 and the threshold is +inf (nothing kept).
    """
    ok = np.flatnonzero(pr.precision >= min_precision)
    if ok.size == 0:
        return OperatingPoint(float("inf"), 1.0, 0.0)
    i = ok[np.argmax(pr.recall[ok])]
    # Among equal best recalls, the highest threshold (first index) is the safest cut.
    i = ok[np.flatnonzero(pr.recall[ok] == pr.recall[i])[0]]
    return OperatingPoint(float(pr.thresholds[i]), float(pr.precision[i]), float(pr.recall[i]))


def operating_point_at(pr: PrecisionRecall, threshold: float) -> OperatingPoint:
    """Precision and recall when keeping predictions with ``score >= threshold``.

    Precision is 1.0 by convention when nothing is kept.
    """
    kept = np.flatnonzero(pr.thresholds >= threshold)
    if kept.size == 0:
        return OperatingPoint(float(threshold), 1.0, 0.0)
    i = kept[-1]
    return OperatingPoint(float(threshold), float(pr.precision[i]), float(pr.recall[i]))


def rank1_accuracy(
    query_ids: Sequence[Hashable],
    ref_ids: Sequence[Hashable],
    scores: Sequence[float] | np.ndarray,
    gt_pairs: Iterable[tuple[Hashable, Hashable]],
) -> float:
    """Fraction of queries with a true ref whose top prediction is a true ref.

    A tie at the top counts as correct only if every tied ref is a true one (ties are broken
    against us); a query without predictions counts as wrong.
    """
    gt = set(gt_pairs)
    queries = {q for q, _ in gt}
    if not queries:
        raise ValueError("ground truth has no true pairs: rank-1 accuracy is undefined")
    pairs, s = _dedupe(query_ids, ref_ids, np.asarray(scores))
    top: dict[Hashable, float] = {}
    for (q, _), v in zip(pairs, s.tolist()):
        if q in queries and (q not in top or v > top[q]):
            top[q] = v
    correct = {q: True for q in top}
    for (q, r), v in zip(pairs, s.tolist()):
        if q in top and v == top[q] and (q, r) not in gt:
            correct[q] = False
    return sum(correct.values()) / len(queries)


@dataclass(frozen=True)
class CopyDetectionScores:
    micro_ap: float
    recall_at_p90: float
    threshold_at_p90: float
    rank1: float
    n_predictions: int
    n_true_pairs: int

    def to_json(self) -> dict:
        return {
            "micro_ap": round(self.micro_ap, 6),
            "recall_at_p90": round(self.recall_at_p90, 6),
            # None when no threshold reaches 90% precision (JSON has no infinity).
            "threshold_at_p90": self.threshold_at_p90 if np.isfinite(self.threshold_at_p90) else None,
            "rank1": round(self.rank1, 6),
            "n_predictions": self.n_predictions,
            "n_true_pairs": self.n_true_pairs,
        }


def evaluate(
    query_ids: Sequence[Hashable],
    ref_ids: Sequence[Hashable],
    scores: Sequence[float] | np.ndarray,
    gt_pairs: Iterable[tuple[Hashable, Hashable]],
) -> CopyDetectionScores:
    """µAP, recall at 90% precision and rank-1 accuracy in one pass."""
    gt = set(gt_pairs)
    pr = precision_recall(query_ids, ref_ids, scores, gt)
    op = recall_at_precision(pr, 0.9)
    return CopyDetectionScores(
        micro_ap=micro_average_precision(pr),
        recall_at_p90=op.recall,
        threshold_at_p90=op.threshold,
        rank1=rank1_accuracy(query_ids, ref_ids, scores, gt),
        n_predictions=int(pr.n_kept[-1]) if pr.n_kept.size else 0,
        n_true_pairs=pr.n_true_pairs,
    )

"""Metric stories with hand-computed answers (µAP as ISC 2021 defines it)."""
import numpy as np
import pytest

from copytrace.eval.metrics import (
    evaluate,
    micro_average_precision,
    operating_point_at,
    precision_recall,
    rank1_accuracy,
    recall_at_precision,
)


def _run(preds, gt):
    q = [p[0] for p in preds]
    r = [p[1] for p in preds]
    s = [p[2] for p in preds]
    return q, r, s, gt


def test_perfect_ranking():
    preds = [("q1", "a", 0.9), ("q2", "b", 0.8), ("q3", "c", 0.7), ("q1", "b", 0.2), ("q4", "a", 0.1)]
    res = evaluate(*_run(preds, {("q1", "a"), ("q2", "b"), ("q3", "c")}))
    assert res.micro_ap == pytest.approx(1.0)
    assert res.recall_at_p90 == pytest.approx(1.0)
    assert res.threshold_at_p90 == pytest.approx(0.7)
    assert res.rank1 == pytest.approx(1.0)


def test_one_false_positive_on_top():
    # FP, TP, TP: P = 0, 1/2, 2/3 at R = 0, 1/2, 1 -> µAP = 1/2*1/2 + 1/2*2/3 = 7/12.
    preds = [("q9", "x", 0.95), ("q1", "a", 0.8), ("q2", "b", 0.7)]
    q, r, s, gt = _run(preds, {("q1", "a"), ("q2", "b")})
    pr = precision_recall(q, r, s, gt)
    assert micro_average_precision(pr) == pytest.approx(7 / 12)
    # Precision never reaches 90% below the FP, and the FP alone has recall 0.
    assert recall_at_precision(pr, 0.9).recall == 0.0
    assert rank1_accuracy(q, r, s, gt) == 1.0


def test_false_positive_across_queries_lowers_shared_ranking():
    # Rank-1 is perfect per query, yet an unregistered query scoring above a true pair costs µAP:
    # the ranking is pooled over queries.
    preds = [("q1", "a", 0.9), ("n1", "b", 0.85), ("q2", "b", 0.6)]
    res = evaluate(*_run(preds, {("q1", "a"), ("q2", "b")}))
    assert res.rank1 == 1.0
    assert res.micro_ap == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)


def test_missing_pairs_cap_recall():
    # 4 true pairs, only 2 ever predicted (both correct, on top).
    preds = [("q1", "a", 0.9), ("q2", "b", 0.8), ("q3", "z", 0.1)]
    gt = {("q1", "a"), ("q2", "b"), ("q3", "c"), ("q4", "d")}
    res = evaluate(*_run(preds, gt))
    assert res.micro_ap == pytest.approx(0.5)
    assert res.recall_at_p90 == pytest.approx(0.5)
    # q3's top is wrong, q4 has no prediction at all.
    assert res.rank1 == pytest.approx(0.5)


def test_ties_are_one_step_whatever_the_order():
    gt = {("q1", "a")}
    for preds in ([("q1", "a", 0.8), ("q2", "b", 0.8)], [("q2", "b", 0.8), ("q1", "a", 0.8)]):
        q, r, s, _ = _run(preds, gt)
        pr = precision_recall(q, r, s, gt)
        assert micro_average_precision(pr) == pytest.approx(0.5)
        assert pr.thresholds.tolist() == [0.8]
    # A tie at the top of one query is broken against us.
    q, r, s, _ = _run([("q1", "b", 0.8), ("q1", "a", 0.8)], gt)
    assert rank1_accuracy(q, r, s, gt) == 0.0


def test_duplicate_predictions_keep_the_best_score():
    preds = [("q1", "a", 0.1), ("q1", "b", 0.5), ("q1", "a", 0.9)]
    q, r, s, gt = _run(preds, {("q1", "a")})
    pr = precision_recall(q, r, s, gt)
    assert pr.n_kept[-1] == 2
    assert micro_average_precision(pr) == pytest.approx(1.0)
    assert rank1_accuracy(q, r, s, gt) == 1.0


def test_recall_at_precision_tolerates_late_false_positive():
    # 10 TPs, then an FP, then one more TP: precision 11/12 = 0.917 >= 0.9 keeps recall 1.
    preds = [(f"q{i}", f"r{i}", 1.0 - i * 0.01) for i in range(10)]
    preds += [("n", "r0", 0.5), ("q10", "r10", 0.4)]
    gt = {(f"q{i}", f"r{i}") for i in range(11)}
    pr = precision_recall(*_run(preds, gt)[:3], gt)
    op = recall_at_precision(pr, 0.9)
    assert op.recall == pytest.approx(1.0)
    assert op.precision == pytest.approx(11 / 12)
    assert recall_at_precision(pr, 0.95).recall == pytest.approx(10 / 11)
    at = operating_point_at(pr, 0.45)
    assert (at.precision, at.recall) == (pytest.approx(10 / 11), pytest.approx(10 / 11))
    assert operating_point_at(pr, 2.0).recall == 0.0


def test_bad_inputs_are_rejected():
    with pytest.raises(ValueError):
        precision_recall(["q"], ["a", "b"], [0.1], {("q", "a")})
    with pytest.raises(ValueError):
        precision_recall(["q"], ["a"], [np.nan], {("q", "a")})
    with pytest.raises(ValueError):
        precision_recall(["q"], ["a"], [0.1], set())


def test_no_predictions():
    pr = precision_recall([], [], np.zeros(0), {("q", "a")})
    assert micro_average_precision(pr) == 0.0
    assert recall_at_precision(pr).recall == 0.0

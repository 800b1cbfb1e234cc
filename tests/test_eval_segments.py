"""VCSL P/R/F and VSC segment AP on stories computed by hand."""
import math

import pytest

from copytrace.eval.segments import (
    ScoredBox, overlap_length, pair_precision_recall, union_length, vcsl_prf, vsc_segment_ap,
)

TRUE = {("q1", "r1"): [(10.0, 20.0, 30.0, 40.0)]}


def test_union_and_overlap():
    assert union_length([(0, 2), (1, 3), (5, 6)]) == 4
    assert overlap_length([(0, 2), (1, 3)], [(2, 10)]) == 1


def test_perfect():
    r = vcsl_prf({("q1", "r1"): TRUE[("q1", "r1")]}, TRUE)
    assert (r.precision, r.recall, r.f1) == (1.0, 1.0, 1.0)
    assert vsc_segment_ap([ScoredBox("q1", "r1", TRUE[("q1", "r1")][0], 0.9)], TRUE) == 1.0


def test_split_prediction_covers_everything():
    # Two halves of the true copy: full recall and precision in both metrics.
    pred = [(10.0, 15.0, 30.0, 35.0), (15.0, 20.0, 35.0, 40.0)]
    assert pair_precision_recall(pred, TRUE[("q1", "r1")]) == (1.0, 1.0)
    ap = vsc_segment_ap([ScoredBox("q1", "r1", b, s) for b, s in zip(pred, (0.9, 0.8))], TRUE)
    # The first half alone gives recall 0.5 at precision 1, the second the rest.
    assert ap == pytest.approx(1.0)


def test_shifted_prediction():
    # Shifted by 5 s on both axes: overlap 5 of 10 on each axis.
    p, r = pair_precision_recall([(15.0, 25.0, 35.0, 45.0)], TRUE[("q1", "r1")])
    assert p == pytest.approx(0.25) and r == pytest.approx(0.25)
    ap = vsc_segment_ap([ScoredBox("q1", "r1", (15.0, 25.0, 35.0, 45.0), 1.0)], TRUE)
    assert ap == pytest.approx(0.5 * 0.5)  # geometric means: P = 0.5, R = 0.5


def test_none_predicted():
    r = vcsl_prf({}, TRUE)
    assert (r.precision, r.recall, r.f1) == (0.0, 0.0, 0.0)
    assert vsc_segment_ap([], TRUE) == 0.0


def test_false_alarm_on_negative_pair_counts_in_ap_not_vcsl():
    truth = {**TRUE, ("q2", "r1"): []}
    preds = {("q1", "r1"): TRUE[("q1", "r1")], ("q2", "r1"): [(0.0, 10.0, 0.0, 10.0)]}
    r = vcsl_prf(preds, truth)
    assert r.f1 == 1.0 and r.false_pair_rate == 0.5
    # False alarm ranked first: precision 0 at recall 0, then 10/20 on both axes at recall 1.
    hi = [ScoredBox("q2", "r1", (0.0, 10.0, 0.0, 10.0), 0.9),
          ScoredBox("q1", "r1", TRUE[("q1", "r1")][0], 0.5)]
    assert vsc_segment_ap(hi, truth) == pytest.approx(0.5)
    lo = [ScoredBox("q2", "r1", (0.0, 10.0, 0.0, 10.0), 0.1),
          ScoredBox("q1", "r1", TRUE[("q1", "r1")][0], 0.5)]
    assert vsc_segment_ap(lo, truth) == pytest.approx(1.0)


def test_vcsl_mean_over_pairs():
    truth = {("a", "r"): [(0.0, 10.0, 0.0, 10.0)], ("b", "r"): [(0.0, 10.0, 0.0, 10.0)]}
    preds = {("a", "r"): [(0.0, 10.0, 0.0, 10.0)], ("b", "r"): [(0.0, 5.0, 0.0, 5.0)]}
    r = vcsl_prf(preds, truth)
    assert r.precision == 1.0 and r.recall == pytest.approx((1 + 0.25) / 2)
    assert r.f1 == pytest.approx(2 * 0.625 / 1.625)
    assert not math.isnan(r.f1)

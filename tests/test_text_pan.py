"""PAN text-alignment metrics against hand-computed cases (Potthast et al. 2010)."""
import math

import pytest

from copytrace.eval.pan import SpanPair, pan_scores


def P(s0, s1, r0, r1, susp="q", src="r"):
    return SpanPair(susp, s0, s1, src, r0, r1)


def test_perfect():
    s = pan_scores([P(10, 60, 100, 150)], [P(10, 60, 100, 150)])
    assert (s.precision, s.recall, s.granularity, s.plagdet) == (1.0, 1.0, 1.0, 1.0)


def test_half_found():
    # detection covers query 10..35 and ref 100..125: 50 of the case's 100 characters
    s = pan_scores([P(10, 60, 100, 150)], [P(10, 35, 100, 125)])
    assert s.recall == pytest.approx(0.5)
    assert s.precision == pytest.approx(1.0)
    assert s.plagdet == pytest.approx(2 * 0.5 / 1.5)


def test_split_detection_costs_granularity():
    # two detections that together cover the case exactly
    s = pan_scores([P(0, 100, 0, 100)], [P(0, 50, 0, 50), P(50, 100, 50, 100)])
    assert (s.precision, s.recall, s.granularity) == (1.0, 1.0, 2.0)
    assert s.plagdet == pytest.approx(1 / math.log2(3))


def test_too_long_detection_costs_precision():
    # detection 0..200 x 0..200 around a case 50..150 x 50..150: half of its chars are right
    s = pan_scores([P(50, 150, 50, 150)], [P(0, 200, 0, 200)])
    assert s.recall == 1.0 and s.precision == pytest.approx(0.5)


def test_wrong_source_document_detects_nothing():
    s = pan_scores([P(0, 100, 0, 100, src="a")], [P(0, 100, 0, 100, src="b")])
    assert s.recall == 0.0 and s.precision == 0.0 and s.plagdet == 0.0 and s.detected_cases == 0


def test_overlap_needed_on_both_sides():
    # right query span, ref span elsewhere in the right source: not a detection of the case
    s = pan_scores([P(0, 100, 0, 100)], [P(0, 100, 500, 600)])
    assert s.recall == 0.0 and s.precision == 0.0


def test_macro_average_over_cases_and_detections():
    cases = [P(0, 100, 0, 100), P(200, 300, 200, 300)]
    # first case found fully, second missed; plus a false detection
    dets = [P(0, 100, 0, 100), P(500, 520, 700, 720)]
    s = pan_scores(cases, dets)
    assert s.recall == pytest.approx(0.5)
    assert s.precision == pytest.approx(0.5)
    assert s.granularity == 1.0


def test_overlapping_detections_count_once_in_recall():
    s = pan_scores([P(0, 100, 0, 100)], [P(0, 80, 0, 80), P(20, 100, 20, 100)])
    assert s.recall == 1.0 and s.granularity == 2.0


def test_bad_span_refused():
    with pytest.raises(ValueError):
        P(10, 5, 0, 1)

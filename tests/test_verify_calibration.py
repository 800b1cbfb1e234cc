"""The still-image score scale (signals/_verify.py) and the calibration rules of
bench/calibrate_verify.py (Wilson-bounded threshold, ML slope)."""
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from copytrace.eval.image_bench import Predictions
from copytrace.models.registry import get_spec
from copytrace.signals._verify import verified_match_score

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
calib = pytest.importorskip("calibrate_verify")


def test_verified_score_is_one_half_at_the_threshold_and_uses_its_own_slope():
    spec = get_spec("ct-image-r18s")
    thr = spec.verify_threshold_similarity
    assert verified_match_score(spec, thr, thr) == pytest.approx(0.5)
    s = replace(spec, verify_score_slope=10.0, score_slope=1.0)
    assert verified_match_score(s, thr + 0.1, thr) == pytest.approx(1 / (1 + np.exp(-1.0)))
    # Without the key the cosine's slope applies.
    s = replace(spec, verify_score_slope=None, score_slope=2.0)
    assert verified_match_score(s, thr + 0.5, thr) == pytest.approx(1 / (1 + np.exp(-1.0)))
    assert verified_match_score(spec, -50.0, thr) >= 0.0  # no overflow far below


def test_wilson_threshold_keeps_a_margin_over_the_point_estimate():
    # 1000 true pairs scored 1.0..0.7, one false pair at 0.85, another at 0.72.
    q = np.arange(1002)
    r = np.zeros(1002, int)
    score = np.r_[np.linspace(1.0, 0.7, 1000), 0.85, 0.72]
    gt = {(i, 0) for i in range(1000)}
    pred = Predictions(q, r, score)
    thr = calib.wilson_threshold(pred, gt, 0.99)
    keep = score >= thr
    tp = sum((i, 0) in gt for i in q[keep])
    assert tp / keep.sum() >= 0.99
    lb = calib.wilson_lower(np.array([tp]), np.array([keep.sum()]))[0]
    assert lb >= 0.99
    assert thr == pytest.approx(0.7)  # enough evidence: both false pairs fit in the bound
    # 150 true pairs and one false one: precision 0.993 is measured, but so few pairs
    # cannot promise 0.99, so no threshold is offered.
    small = Predictions(np.arange(151), np.zeros(151, int), np.r_[np.linspace(1.0, 0.8, 150), 0.85])
    with pytest.raises(SystemExit, match="precision bound"):
        calib.wilson_threshold(small, {(i, 0) for i in range(150)}, 0.99)


def test_fit_slope_recovers_a_logistic_slope():
    rng = np.random.default_rng(0)
    x = rng.uniform(-0.5, 0.5, 20000)
    y = (rng.random(x.size) < 1 / (1 + np.exp(-8.0 * x))).astype(float)
    assert calib.fit_slope(x, y) == pytest.approx(8.0, rel=0.1)

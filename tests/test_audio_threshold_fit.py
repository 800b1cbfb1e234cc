"""The audio benchmark's threshold fit (bench/audio.py): exact on the calibration strata, and
a decision that weighs a long stretch of moderate similarity against a short chance run."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from copytrace.models.audio_spec import get_audio_spec

_spec = importlib.util.spec_from_file_location(
    "bench_audio", Path(__file__).resolve().parents[1] / "bench" / "audio.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


def _negatives(rng, n_per: int = 200) -> list[dict]:
    """Unregistered queries as the matcher sees them: per query a few chance segments, short
    ones reaching high cosines, long ones staying low (as on real music)."""
    out = []
    for length in bench.NEGATIVE_LENGTHS_S:
        n_full = get_audio_spec().query_windows(length)
        for i in range(n_per):
            segs = []
            for _ in range(rng.integers(1, 6)):
                n = int(rng.integers(min(5, n_full), n_full + 1))
                segs.append([float(0.2 + 0.9 / np.sqrt(n) * rng.uniform(0.3, 0.55)), n])
            out.append({"kind": "calibration", "length_s": length, "condition": "clean",
                        "track": f"real/{i % 7}" if i % 2 else f"openttd/{i % 5}",
                        "segments": segs})
    return out


def _positives(rng, n_per: int = 100) -> list[dict]:
    """Registered excerpts under loud noise: the copy runs the whole query at a moderate
    cosine, beside one short chance run on another track."""
    out = []
    for length in bench.LENGTHS_S:
        n_full = get_audio_spec().query_windows(length)
        for _ in range(n_per):
            segs = [[float(rng.uniform(0.45, 0.75)), n_full, 1, 1, 0],
                    [float(rng.uniform(0.4, 0.6)), min(5, n_full), 0, 0, 0]]
            out.append({"kind": "calibration_positive", "length_s": length, "segments": segs})
    return out


@pytest.mark.parametrize("with_positives", [False, True])
def test_fit_meets_the_target_in_every_stratum_and_favours_long_evidence(with_positives):
    rng = np.random.default_rng(0)
    cal = _negatives(rng)
    cal_pos = _positives(rng) if with_positives else []
    spec = get_audio_spec()
    thr, pen, per = bench.fit_threshold(cal, cal_pos, 0.01, spec)
    groups = {}
    for r in cal:
        groups.setdefault((r["length_s"], "openttd" in r["track"]), []).append(r)
    assert len(per) == len(groups) == 2 * len(bench.NEGATIVE_LENGTHS_S)
    for rs in groups.values():  # no length, neither kind of music, over the target
        assert np.mean([bench._best_margin(r, pen) >= thr for r in rs]) <= 0.01
    # Chance cosines fall as 1/sqrt(n) here, so the fit must charge short segments for it.
    assert pen > 0.2
    # A copy under loud noise: 38 of a 5 s query's 41 windows at cosine 0.52, beside a short
    # chance run on another track at 0.58. The long one is the answer, and it is reported.
    pos = {"kind": "positive", "segments": [[0.58, 5, 0, 0, 0], [0.52, 38, 1, 1, 0]]}
    best = bench.answer(pos, thr, pen)
    assert best[3] == 1
    assert best[0] - pen / np.sqrt(best[1]) >= thr
    if with_positives:  # at its weakest length, the penalty kept reports no fewer than the
        # lowest-bar one does
        def weakest(t, p):
            return min(np.mean([bench.reported(r, t, p) for r in cal_pos if r["length_s"] == L])
                       for L in bench.FIT_LENGTHS_S)

        other = bench.fit_threshold(cal, [], 0.01, spec)
        assert weakest(thr, pen) >= weakest(*other[:2])


def test_summary_rescores_answers_from_the_kept_segments():
    spec = get_audio_spec()
    pos = [{"kind": "positive", "length_s": 5.0, "condition": "snr5", "track": "a",
            "truth_s": 3.0, "segments": [[0.9, 41, 1, 1, 0]]},
           {"kind": "positive", "length_s": 5.0, "condition": "snr5", "track": "b",
            "truth_s": 3.0, "segments": [[0.95, 20, 1, 0, 1]]},  # an exact repeat of the truth
           {"kind": "positive", "length_s": 5.0, "condition": "snr5", "track": "c",
            "truth_s": 3.0, "segments": []}]  # nothing audible
    rep = bench.summarise(pos, spec, 0.005, calibrate=False)
    cell = rep["hit_rate"]["5s"]["snr5"]
    assert cell["top1"] == pytest.approx(1 / 3, abs=1e-3)
    assert cell["top1_repeat_ok"] == pytest.approx(2 / 3, abs=1e-3)
    assert cell["top1_at_threshold"] == pytest.approx(2 / 3, abs=1e-3)


def test_rescore_pools_several_runs(tmp_path, monkeypatch):
    """``--rescore a.json b.json``: the records of both runs are scored together (a pooled
    table and a fit on both runs' calibration queries), with no queries made."""
    import json
    import sys

    rng = np.random.default_rng(1)
    one = [{"kind": "positive", "length_s": 5.0, "condition": "snr5", "track": "a",
            "truth_s": 3.0, "segments": [[0.9, 41, 1, 1, 0]]}]
    two = [{"kind": "positive", "length_s": 5.0, "condition": "snr5", "track": "b",
            "truth_s": 3.0, "segments": [[0.9, 41, 1, 0, 0]]},  # right track, other offset
           {"kind": "negative", "length_s": 2.0, "condition": "clean", "track": "n",
            "segments": [[0.99, 10]]}]  # a false match under any fit that holds the target
    runs = []
    for k, records in enumerate((one + _negatives(rng, 50), two + _negatives(rng, 50))):
        f = tmp_path / f"run{k}.json"
        f.write_text(json.dumps({"report": {"model": "m"}, "records": records}))
        runs.append(str(f))
    out = tmp_path / "pooled.json"
    monkeypatch.setattr(sys, "argv", ["audio.py", "--rescore", *runs, "--json", str(out)])
    bench.main()
    rep = json.loads(out.read_text())["report"]
    assert rep["pooled_runs"] == runs
    assert rep["n_positive"] == 2 and rep["n_negative"] == 1
    assert rep["n_calibration"] == 2 * 50 * len(bench.NEGATIVE_LENGTHS_S)
    assert rep["hit_rate"]["5s"]["snr5"]["top1"] == pytest.approx(0.5)
    assert rep["false_match_rate"]["2s"] == 1.0

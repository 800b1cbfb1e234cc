"""Aligner registry and configs: names, validation errors, and oracles on synthetic matrices."""
import numpy as np
import pytest

from copytrace.align import aligner_names, get_aligner
from copytrace.align.dp import DPConfig, DynamicProgrammingAligner
from copytrace.align.hv import HoughVotingAligner, HVConfig
from copytrace.align.tn import TemporalNetworkAligner, TNConfig


def test_registry():
    assert {"dp", "hv", "tn"} <= set(aligner_names())
    assert isinstance(get_aligner("tn"), TemporalNetworkAligner)
    assert isinstance(get_aligner("dp", DPConfig(bias=0.4)), DynamicProgrammingAligner)
    assert isinstance(get_aligner("hv", HVConfig()), HoughVotingAligner)
    with pytest.raises(ValueError, match="unknown aligner"):
        get_aligner("dtw")
    with pytest.raises(TypeError, match="TNConfig"):
        get_aligner("tn", DPConfig())


@pytest.mark.parametrize("bad", [dict(top_k=0), dict(min_sim=1.5), dict(max_step_s=0),
                                 dict(max_speed=0.5), dict(gap_penalty=-1)])
def test_tn_config_validates(bad):
    with pytest.raises(ValueError):
        TNConfig(**bad)


def test_shape_mismatch_is_explained():
    with pytest.raises(ValueError, match="does not match"):
        get_aligner("tn").align(np.zeros((3, 4), np.float32), np.arange(3.0), np.arange(5.0))


def diagonal_matrix(nq, nr, q0, r0, n, rng, speed=1.0):
    """Noise in [-0.2, 0.3] with a copy of n query samples from (q0, r0) at ``speed``."""
    sim = rng.uniform(-0.2, 0.3, (nq, nr)).astype(np.float32)
    for i in range(n):
        sim[q0 + i, r0 + int(round(i * speed))] = rng.uniform(0.75, 0.95)
    return sim


@pytest.mark.parametrize("name", ["tn", "dp", "hv"])
def test_oracle_diagonal_at_two_fps(name):
    # Sampled at 2 fps with real (jittered) times: rows 0.5 s apart.
    rng = np.random.default_rng(0)
    qt = np.arange(40) * 0.5 + rng.uniform(0, 0.03, 40)
    rt = np.arange(100) * 0.5 + rng.uniform(0, 0.03, 100)
    sim = diagonal_matrix(40, 100, 10, 60, 16, rng)
    segs = get_aligner(name).align(sim, qt, rt)
    assert len(segs) == 1
    s = segs[0]
    assert s.query_start_s == qt[10] and s.ref_start_s == rt[60]
    assert s.query_end_s == pytest.approx(qt[25] + 0.5, abs=0.05)
    assert 0.75 <= s.score <= 0.95


@pytest.mark.parametrize("name", ["tn", "dp"])
def test_oracle_speed_change(name):
    rng = np.random.default_rng(1)
    t = np.arange(120, dtype=float)
    sim = diagonal_matrix(60, 120, 5, 20, 30, rng, speed=1.5)
    segs = get_aligner(name).align(sim, t[:60], t)
    assert len(segs) == 1
    s = segs[0]
    assert (s.query_start_s, s.ref_start_s) == (5.0, 20.0)
    assert (s.ref_end_s - s.ref_start_s) / (s.query_end_s - s.query_start_s) == pytest.approx(
        1.5, abs=0.1)


def test_tn_two_copies_from_noise():
    rng = np.random.default_rng(2)
    t = np.arange(80, dtype=float)
    sim = diagonal_matrix(80, 80, 5, 40, 10, rng)
    sim = np.maximum(sim, diagonal_matrix(80, 80, 40, 3, 12, rng))
    segs = sorted(get_aligner("tn").align(sim, t, t), key=lambda s: s.query_start_s)
    assert [(s.query_start_s, s.ref_start_s) for s in segs] == [(5.0, 40.0), (40.0, 3.0)]


def test_noise_only_gives_nothing():
    rng = np.random.default_rng(3)
    sim = rng.uniform(-0.2, 0.45, (50, 200)).astype(np.float32)
    t = np.arange(200, dtype=float)
    for name in ("tn", "dp", "hv"):
        assert get_aligner(name).align(sim, t[:50], t) == []

"""Offset search against an oracle: reference descriptors are a smooth random path through
descriptor space sampled on the index grid; a query samples the same path on the query grid
from a known offset. The search must name the track and the offset; a path that was never
indexed must score under a threshold that every planted copy clears."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("faiss")

from bench.audio_index import AudioReferenceIndex, LibraryIndex
from copytrace.models.audio_spec import get_audio_spec


def path_fn(seed: int, dims: int, dur_s: float):
    """Descriptor at time t: interpolation between random unit vectors every 0.7 s."""
    rng = np.random.default_rng(seed)
    knots = rng.standard_normal((int(dur_s / 0.7) + 3, dims))

    def at(t: np.ndarray) -> np.ndarray:
        u = np.asarray(t) / 0.7
        i = np.floor(u).astype(int)
        w = (u - i)[:, None]
        v = knots[i] * (1 - w) + knots[i + 1] * w
        return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)

    return at


@pytest.fixture(scope="module")
def spec():
    return get_audio_spec()


@pytest.fixture(scope="module")
def index(spec):
    """The same references in the whole-query offset search ('search') and in a Library whose
    audio signal matches them ('engine')."""
    out = {"search": AudioReferenceIndex(spec), "engine": LibraryIndex(spec, threads=1)}
    for idx in out.values():
        for k in range(4):
            at = path_fn(k, spec.dims, 60.0)
            starts = np.arange(0, 59.0, spec.hop_s)
            idx.add(f"track{k}", starts, at(starts))
    out["engine"].lib.flush()
    yield out
    out["engine"].close()


def run(index, how, q_starts, q):
    return index[how].search(q_starts, q)


@pytest.mark.parametrize("how", ["engine", "search"])
@pytest.mark.parametrize("track,offset_s,length_s", [(1, 13.3, 5.0), (2, 40.05, 2.0), (0, 0.0, 3.0)])
def test_planted_excerpt_is_found_at_its_offset(spec, index, track, offset_s, length_s, how):
    at = path_fn(track, spec.dims, 60.0)
    rng = np.random.default_rng(7)
    q_starts = np.arange(0, length_s - 1.0 + 1e-9, spec.query_hop_s)
    q = at(q_starts + offset_s) + 0.03 * rng.standard_normal((len(q_starts), spec.dims)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    hit = run(index, how, q_starts, q)
    assert hit.track == f"track{track}"
    assert abs(hit.offset_s - offset_s) <= 0.1


@pytest.mark.parametrize("how", ["engine", "search"])
def test_unindexed_path_scores_lower_than_copies(spec, index, how):
    q_starts = np.arange(0, 4.0, spec.query_hop_s)
    unknown = run(index, how, q_starts, path_fn(99, spec.dims, 10.0)(q_starts + 1.0))
    copy = run(index, how, q_starts, path_fn(3, spec.dims, 60.0)(q_starts + 20.0))
    assert copy.track == "track3" and copy.raw_similarity > 0.9
    assert unknown is None or unknown.raw_similarity < 0.5 < copy.raw_similarity
    if how == "engine":  # the length penalty is charged on the windows the segment spans
        assert copy.similarity == pytest.approx(
            copy.raw_similarity - spec.length_penalty / np.sqrt(copy.n_windows))


def test_reference_windows_must_follow_the_grid(spec):
    idx = AudioReferenceIndex(spec)
    with pytest.raises(ValueError):
        idx.add("bad", np.array([0.0, 1.0, 0.5]), np.eye(3, spec.dims, dtype=np.float32))


def test_offset_aligner_bridges_noise_gaps_and_matches_short_queries():
    from copytrace.align import get_aligner

    qt = np.arange(0, 8.0, 0.1)
    rt = np.arange(0, 30.0, 0.5)
    sim = np.full((len(qt), len(rt)), 0.05, np.float32)
    for i, t in enumerate(qt):  # a copy at offset 12 s whose similarity drops out in places
        near = np.abs(rt - (t + 12.0)) < 0.5
        peak = 0.1 if 30 <= i < 40 else 0.8
        sim[i, near] = peak - 0.4 * np.abs(rt[near] - (t + 12.0))
    segs = get_aligner("offset").align(sim, qt, rt)
    assert len(segs) >= 1 and abs(segs[0].ref_start_s - segs[0].query_start_s - 12.0) < 0.1
    assert segs[0].query_start_s < 0.5 and segs[0].query_end_s > 7.5  # one stretch, not two
    one = get_aligner("offset").align(sim[:1, :], qt[:1], rt)  # a 1-window query
    assert len(one) == 1 and abs(one[0].ref_start_s - 12.0) < 0.1


def _misplaced_copy_sims(qt, rt, offset_s, peak=1.0, falloff=1.0):
    """A copy at ``offset_s`` whose window similarity falls by ``falloff`` per second of
    misplacement, as the descriptor's does; 0.05 elsewhere."""
    d = np.abs(rt[None, :] - (qt[:, None] + offset_s))
    return np.where(d < 0.5, peak - falloff * d, 0.05).astype(np.float32)


def test_grid_sampling_reads_the_well_aligned_pairs():
    from copytrace.align.offset import OffsetAligner, OffsetConfig

    qt, rt = np.arange(0, 4.0, 0.1), np.arange(0, 30.0, 0.5)
    sim = _misplaced_copy_sims(qt, rt, 7.23)
    grid = OffsetAligner(OffsetConfig(sample="grid")).align(sim, qt, rt)[0]
    interp = OffsetAligner(OffsetConfig(sample="interpolate")).align(sim, qt, rt)[0]
    for seg in (grid, interp):
        assert abs(seg.ref_start_s - seg.query_start_s - 7.23) < 0.1
    # every reference window has a query window within 0.05 s of it: the grid reads >= 0.95,
    # interpolation between reference windows averages in the misplaced pairs
    assert grid.score >= 0.95 > interp.score


def test_long_noisy_copy_outranks_short_chance_run():
    from dataclasses import replace

    from copytrace.align import get_aligner
    from copytrace.align.offset import audio_alignments

    spec = replace(get_audio_spec(), threshold_similarity=0.55, length_penalty=0.1)
    qt, rt = np.arange(0, 5.0 - 1.0 + 1e-9, spec.query_hop_s), np.arange(0, 30.0, spec.hop_s)
    rng = np.random.default_rng(0)
    q = rng.standard_normal((len(qt), spec.dims)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)

    def recording(sims_along):  # reference vectors whose cosine with q follows ``sims_along``
        r = rng.standard_normal((len(rt), spec.dims)).astype(np.float32)
        r /= np.linalg.norm(r, axis=1, keepdims=True)
        for j, t in enumerate(rt):
            i = int(np.argmin(np.abs(qt + 3.0 - t)))
            if abs(qt[i] + 3.0 - t) < 0.05 and not np.isnan(sims_along[i]):
                s = sims_along[i]
                r[j] = s * q[i] + np.sqrt(1 - s * s) * _orthogonal(q[i], r[j])
        return r

    true = recording(np.full(len(qt), 0.62))  # the whole 5 s, noisy
    chance = np.full(len(qt), np.nan)
    chance[10:16] = 0.68  # a short run of higher similarity, nothing else
    fake = recording(chance)
    aligner = get_aligner("offset")
    a_true = audio_alignments(aligner, q, qt, true, rt, spec)[0]
    a_fake = audio_alignments(aligner, q, qt, fake, rt, spec)[0]
    # the chance run has the higher plain similarity, the copy the higher evidence-weighted one
    assert a_fake.similarity > a_true.similarity > spec.threshold_similarity
    assert a_true.segment.score > a_fake.segment.score


def _orthogonal(u, v):
    w = v - (v @ u) * u
    return w / np.linalg.norm(w)


def test_long_query_finds_every_planted_copy():
    """A 10-minute query holding six copies of one recording at different offsets, and a
    dozen short chance runs: every copy is aligned (four segment slots would hold only some of
    them); a 30 s query keeps the calibrated four slots."""
    from copytrace.align.offset import OffsetAligner, OffsetConfig

    qt, rt = np.arange(0, 600.0, 0.5), np.arange(0, 300.0, 0.5)
    rng = np.random.default_rng(3)
    sim = np.full((len(qt), len(rt)), 0.05, np.float32)
    planted = [(20.0, 40.0), (130.0, 180.0), (250.0, 10.0), (340.0, 220.0), (450.0, 90.0),
               (540.0, 150.0)]  # (query start, reference start), 30 s each
    for q0, r0 in planted:
        i = np.flatnonzero((qt >= q0) & (qt < q0 + 30))
        sim[i, np.searchsorted(rt, r0) + np.arange(len(i))] = 0.7
    for _ in range(12):  # 3 s chance runs at random offsets
        i0, j0 = int(rng.integers(0, len(qt) - 6)), int(rng.integers(0, len(rt) - 6))
        sim[i0 + np.arange(6), j0 + np.arange(6)] = 0.75
    segs = OffsetAligner(OffsetConfig(min_sim=0.35)).align(sim, qt, rt)
    found = {(round(s.query_start_s), round(s.ref_start_s)) for s in segs
             if s.query_end_s - s.query_start_s > 20}
    assert found == {(round(q), round(r)) for q, r in planted}
    short = OffsetAligner(OffsetConfig(min_sim=0.35)).align(sim[:60], qt[:60], rt)
    assert len(short) <= 4

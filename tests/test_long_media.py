"""Long media in bounded memory: the audio similarity computed in row blocks gives the same
segments as the dense matrix, on real music with planted copies; and the time limit stops
decoding and alignment cooperatively."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from copytrace.align.base import BlockedSimilarity, similarity_matrix
from copytrace.align.offset import OffsetAligner, OffsetConfig, audio_alignments
from copytrace.deadline import DeadlineExceeded, check, remaining_s, within

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def planted():
    """Descriptors of a reference (two real tracks and one reversed) and of a query made of
    noise, a noisy excerpt of the second track, a quiet one and a clean excerpt of the first."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("faiss")
    from copytrace.media.audio import load_audio
    from copytrace.models.audio_cohort import load_cohort
    from copytrace.models.audio_spec import get_audio_spec
    from copytrace.runtime.audio import load_audio_encoder

    spec = get_audio_spec()
    sr = spec.sample_rate
    a = load_audio(DATA / "music_beast.ogg", sr)
    b = load_audio(DATA / "music_brainsukker.ogg", sr)
    rng = np.random.default_rng(1)
    ref = np.concatenate([a, b, a[::-1]])
    query = np.concatenate([0.05 * rng.standard_normal(3 * sr), b[5 * sr:14 * sr]
                            + 0.02 * rng.standard_normal(9 * sr), 0.3 * b[:2 * sr],
                            a[2 * sr:8 * sr]]).astype(np.float32)
    enc = load_audio_encoder(spec, threads=1, precision="fp32")
    rs, _, rv = enc.embed_windows(ref, sr, spec.hop_s)
    qs, _, qv = enc.embed_windows(query, sr, spec.query_hop_s)
    cohort = load_cohort(spec)
    return spec, qv, qs, rv, rs, cohort.typicality(qv), cohort.typicality(rv)


@pytest.mark.parametrize("sample", ["grid", "interpolate"])
@pytest.mark.parametrize("block_elems", [1 << 21, 4000, 1])
def test_blocked_similarity_gives_the_dense_segments(planted, sample, block_elems):
    from copytrace.models.audio_cohort import normalised_similarity

    spec, qv, qs, rv, rs, qtyp, rtyp = planted
    aligner = OffsetAligner(OffsetConfig(sample=sample))
    dense = normalised_similarity(similarity_matrix(qv, rv), spec, qtyp, rtyp)
    blocked = BlockedSimilarity(
        qv, rv, lambda blk, a, b: normalised_similarity(blk, spec, qtyp[a:b], rtyp), block_elems)
    want = aligner.align(dense, qs, rs)
    got = aligner.align(blocked, qs, rs)
    assert got == want  # the same floats: each value comes from a full-width row block
    n_blocks = -(-len(qs) // blocked.block_rows)
    # one pass for the votes, one for the pairs near the strongest offsets, few misses after
    # (a matrix of one block is computed once)
    if n_blocks == 1:
        assert blocked.blocks_computed == 1
    else:
        assert 2 * n_blocks - 1 <= blocked.blocks_computed <= 3 * n_blocks + 2
    # the two planted copies are the two best segments, at their offsets (query 3-12 s is
    # reference 25-34 s, query 14-20 s is reference 2-8 s)
    offsets = sorted(round(s.ref_start_s - s.query_start_s) for s in want[:2])
    assert offsets == [-12, 22]


def test_audio_alignments_are_blocked_and_unchanged(planted):
    from copytrace.models.audio_cohort import normalised_similarity

    spec, qv, qs, rv, rs, qtyp, rtyp = planted
    aligner = OffsetAligner()
    got = audio_alignments(aligner, qv, qs, rv, rs, spec, qtyp, rtyp)
    dense = aligner.align(normalised_similarity(similarity_matrix(qv, rv), spec, qtyp, rtyp),
                          qs, rs)
    # audio_alignments only reshapes the aligner's segments (ends, scores): same count and
    # the same mean cosines as the dense segments
    assert sorted(a.mean_cosine for a in got) == sorted(s.score for s in dense)


def test_blocked_similarity_values_match_the_matrix():
    rng = np.random.default_rng(0)
    q = rng.standard_normal((700, 32)).astype(np.float32)
    r = rng.standard_normal((300, 32)).astype(np.float32)
    full = similarity_matrix(q, r)
    sim = BlockedSimilarity(q, r, block_elems=64 * 300)
    assert sim.block_rows == 64 and sim.shape == (700, 300)
    rows, cols = rng.integers(0, 700, 500), rng.integers(0, 300, 500)
    assert np.array_equal(sim.values(rows, cols), full[rows, cols])  # computed on a miss
    sim.keep(rows[:200], cols[:200])
    before = sim.blocks_computed
    assert np.array_equal(sim.values(rows[:200], cols[:200]), full[rows[:200], cols[:200]])
    assert sim.blocks_computed == before  # kept: nothing recomputed
    blocks = list(sim.blocks())
    assert np.array_equal(np.concatenate([b for _, b in blocks]), full)
    with pytest.raises(ValueError, match="not \\[N, D\\]"):
        BlockedSimilarity(q, r[:, :8])


def test_deadline_stops_blocked_alignment():
    rng = np.random.default_rng(0)
    q = rng.standard_normal((5000, 16)).astype(np.float32)
    r = rng.standard_normal((5000, 16)).astype(np.float32)
    sim = BlockedSimilarity(q, r, block_elems=64 * 5000)
    with within(0.05):
        time.sleep(0.06)
        with pytest.raises(DeadlineExceeded, match="0.05 s .aligning audio"):
            OffsetAligner().align(sim, np.arange(5000) * 0.1, np.arange(5000) * 0.5)
    assert sim.blocks_computed == 0


def test_deadline_nests_and_is_per_thread():
    import threading

    assert remaining_s() is None
    with within(10.0):
        with within(100.0):  # an outer, earlier limit is kept
            assert remaining_s() < 10.0
        seen = []
        t = threading.Thread(target=lambda: seen.append(remaining_s()))
        t.start()
        t.join()
        assert seen == [None]  # other threads run without this thread's limit
    with within(None):
        check("nothing")  # no limit: never raises
    with pytest.raises(ValueError), within(-1.0):
        pass


def test_deadline_stops_decoding(tmp_path):
    from copytrace.media.audio import iter_audio

    chunks = []
    with within(0.2), pytest.raises(DeadlineExceeded, match="decoding audio"):
        for chunk in iter_audio(DATA / "music_beast.ogg", 8000, chunk_s=1.0):
            chunks.append(chunk)
            time.sleep(0.1)
    assert 1 <= len(chunks) < 20


def test_deadline_stops_video_decoding_and_progress_follows_it(tmp_path):
    from fractions import Fraction

    from copytrace.media.video import iter_frames
    from copytrace.progress import reporting
    from tests.video_clips import pan_frames, write_clip

    clip = write_clip(tmp_path / "pan.mp4", pan_frames("animal_cat.jpg", 100, 0, 10.0),
                      Fraction(10))
    seen = []
    with reporting(lambda stage, f: seen.append((stage, f)), min_interval_s=0.0):
        times = [t for t, _ in iter_frames(str(clip), fps=2.0)]
    assert len(times) == 20
    fractions = [f for stage, f in seen if stage == "decoding video"]
    assert fractions == sorted(fractions) and 0.9 <= fractions[-1] <= 1.0 and len(fractions) == 20
    got = []
    with within(0.2), pytest.raises(DeadlineExceeded, match="decoding video"):
        for t, _ in iter_frames(str(clip), fps=2.0):
            got.append(t)
            time.sleep(0.1)
    assert 1 <= len(got) < 20

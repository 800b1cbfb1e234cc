"""Alignment on real clips with planted copies, at 25 and 29.97 fps, with asserted boundaries."""
from fractions import Fraction
from functools import partial

import numpy as np
import pytest

from copytrace.align import get_aligner, similarity_matrix
from copytrace.align.dp import DPConfig
from copytrace.align.refine import refine_boundaries
from copytrace.align.tn import TNConfig
from copytrace.media.video import iter_frames, read_frames_between

from .video_clips import pan_frames, tiny_embed, write_clip

NTSC = Fraction(30000, 1001)
REF_FPS = 25


def splice(ref: list, pieces: list[tuple[str, float, float, float]], filler: list,
           rate: Fraction) -> tuple[list, list[tuple[float, float, float, float]]]:
    """Render pieces ("filler"|"copy", src_start_s, duration_s, speed) at ``rate``.

    Returns frames and true boxes (q_start, q_end, r_start, r_end) of the copies.
    """
    step = float(1 / rate)
    out, truth = [], []
    for kind, src_s, dur_s, speed in pieces:
        n = int(round(dur_s / step))
        q0 = len(out) * step
        for i in range(n):
            t = src_s + i * step * speed
            src = ref if kind == "copy" else filler
            out.append(src[min(len(src) - 1, int(np.floor(t * REF_FPS + 1e-6)))])
        if kind == "copy":
            truth.append((q0, q0 + n * step, src_s, src_s + n * step * speed))
    return out, truth


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    d = tmp_path_factory.mktemp("planted")
    ref = pan_frames("eval_baboon.jpg", 10 * REF_FPS, seed=5)
    filler = pan_frames("eval_fruits.jpg", 10 * REF_FPS, seed=6)
    ref_path = write_clip(d / "ref.mp4", ref, Fraction(REF_FPS))
    return d, ref, filler, ref_path


def describe(path, fps=1.0):
    fr = list(iter_frames(str(path), fps=fps, max_side=None))
    return np.array([t for t, _ in fr]), tiny_embed([im for _, im in fr])


def run_case(media, pieces, aligner="tn", config=None):
    d, ref, filler, ref_path = media
    frames, truth = splice(ref, pieces, filler, NTSC)
    q_path = write_clip(d / f"q{abs(hash(str(pieces))) % 10**8}.mp4", frames, NTSC)
    qt, qv = describe(q_path)
    rt, rv = describe(ref_path)
    segs = get_aligner(aligner, config).align(similarity_matrix(qv, rv), qt, rt)
    return q_path, ref_path, truth, segs


def assert_close(seg, box, tol_s):
    got = (seg.query_start_s, seg.query_end_s, seg.ref_start_s, seg.ref_end_s)
    assert np.allclose(got, box, atol=tol_s), f"{got} vs truth {box}"


def test_clip_inside_longer_query_then_frame_accurate(media):
    q_path, ref_path, truth, segs = run_case(
        media, [("filler", 0.0, 3.0, 1.0), ("copy", 2.0, 4.0, 1.0), ("filler", 4.0, 3.0, 1.0)])
    assert len(segs) == 1
    assert_close(segs[0], truth[0], 1.05)  # coarse: one sampling interval
    fine = refine_boundaries(segs[0], partial(read_frames_between, str(q_path)),
                             partial(read_frames_between, str(ref_path)), tiny_embed)
    # Refined: within one frame on both axes (query 1/29.97 s, reference 1/25 s).
    assert_close(fine, truth[0], 1 / REF_FPS + 1e-3)


def test_reference_inside_query(media):
    _, ref_path, truth, segs = run_case(
        media, [("filler", 0.0, 2.5, 1.0), ("copy", 0.0, 9.9, 1.0), ("filler", 3.0, 2.5, 1.0)])
    assert len(segs) == 1
    assert_close(segs[0], truth[0], 1.05)


def test_two_segments_from_one_work(media):
    _, _, truth, segs = run_case(media, [
        ("filler", 0.0, 2.0, 1.0), ("copy", 1.0, 3.0, 1.0), ("filler", 3.0, 3.0, 1.0),
        ("copy", 6.0, 3.5, 1.0), ("filler", 7.0, 1.5, 1.0)])
    assert len(segs) == 2
    segs = sorted(segs, key=lambda s: s.query_start_s)
    for s, box in zip(segs, truth):
        assert_close(s, box, 1.05)


def test_speed_change_whole_copy(media):
    # The whole query is the reference played 1.25x faster at 29.97 fps.
    q_path, ref_path, truth, segs = run_case(media, [("copy", 0.0, 7.5, 1.25)])
    assert len(segs) == 1
    assert_close(segs[0], truth[0], 1.3)
    fine = refine_boundaries(segs[0], partial(read_frames_between, str(q_path)),
                             partial(read_frames_between, str(ref_path)), tiny_embed)
    assert_close(fine, truth[0], 0.1)


def test_dp_aligner_finds_the_same_copy(media):
    _, _, truth, segs = run_case(
        media, [("filler", 0.0, 3.0, 1.0), ("copy", 2.0, 4.0, 1.0), ("filler", 4.0, 3.0, 1.0)],
        aligner="dp", config=DPConfig(bias=0.5))
    assert len(segs) == 1
    assert_close(segs[0], truth[0], 1.05)


def test_unrelated_query_finds_nothing(media):
    d, ref, filler, ref_path = media
    q = write_clip(d / "neg.mp4", filler[:150], NTSC)
    qt, qv = describe(q)
    rt, rv = describe(ref_path)
    for name in ("tn", "dp", "hv"):
        assert get_aligner(name).align(similarity_matrix(qv, rv), qt, rt) == []

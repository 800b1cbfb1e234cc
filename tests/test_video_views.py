"""Partial views of video query frames (picture-in-picture) and works registered from
descriptors, through the Library with the shipped model."""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from PIL import Image

import copytrace
from copytrace.align.base import best_view_similarity, similarity_matrix
from copytrace.engine import EngineConfig, describe_video_frames
from copytrace.media.video import view_crops
from copytrace.types import Descriptors

from .video_clips import pan_frames, tiny_embed, write_clip

NTSC = Fraction(30000, 1001)


def test_view_crops_boxes():
    im = Image.new("RGB", (200, 100))
    views = view_crops(im, 0.6, 0.5)
    assert [v.size for v in views] == [(120, 60)] * 4 + [(100, 50)]
    assert view_crops(im, 0.0, 0.0) == []
    assert len(view_crops(im, 0.0, 0.7)) == 1


@pytest.mark.parametrize("field", ["query_corner_views", "query_centre_view"])
@pytest.mark.parametrize("bad", [-0.1, 0.1, 1.0, 1.5])
def test_view_fractions_validated(field, bad):
    with pytest.raises(ValueError, match=field):
        EngineConfig(**{field: bad})


def test_best_view_similarity_is_max_over_computed_views():
    rng = np.random.default_rng(0)

    def unit(*shape):
        x = rng.normal(size=shape).astype(np.float32)
        return x / np.linalg.norm(x, axis=-1, keepdims=True)

    q, views, ref = unit(6, 8), unit(6, 3, 8), unit(9, 8)
    views[2] = 0.0  # frame 2 got no views
    got = best_view_similarity(q, views, ref)
    want = np.max([similarity_matrix(q, ref)] + [similarity_matrix(views[:, k], ref)
                                                 for k in range(3)], axis=0)
    want[2] = similarity_matrix(q, ref)[2]
    assert np.allclose(got, want, atol=1e-6)
    assert np.allclose(best_view_similarity(q, None, ref), similarity_matrix(q, ref))


def pip_query(tmp_path, ref, filler, start_s: float, copy_s: float, total_s: float):
    """Filler footage at twice the reference's size with the reference playing in its top-right
    quarter from ``start_s`` for ``copy_s`` seconds (reference time 2 s on), at 29.97 fps."""
    step = 1001 / 30000
    w, h = ref[0].size
    frames = []
    for i in range(int(total_s / step)):
        t = i * step
        canvas = filler[int(t * 25) % len(filler)].resize((2 * w, 2 * h), Image.BILINEAR)
        if start_s <= t < start_s + copy_s:
            canvas.paste(ref[int((2.0 + t - start_s) * 25)], (w, 0))
        frames.append(canvas)
    return write_clip(tmp_path / "pip.mp4", frames, NTSC)


def test_picture_in_picture_found_through_corner_views(tmp_path):
    ref = pan_frames("face_astronaut.jpg", 14 * 25, seed=11)
    other = pan_frames("object_rocket.jpg", 14 * 25, seed=12)
    filler = pan_frames("building_temple.jpg", 14 * 25, seed=13)
    ref_path = write_clip(tmp_path / "ref.mp4", ref, Fraction(25))
    other_path = write_clip(tmp_path / "other.mp4", other, Fraction(25))
    q_path = pip_query(tmp_path, ref, filler, start_s=3.0, copy_s=8.0, total_s=13.0)
    with copytrace.open(str(tmp_path / "db"), EngineConfig(audio=False)) as lib:
        ref_id = lib.add(str(ref_path)).work.work_id
        lib.add(str(other_path))
        res = lib.query(str(q_path))
    assert [m.work_id for m in res.matches] == [ref_id]
    seg = max(res.matches[0].segments, key=lambda s: s.query_end_s - s.query_start_s)
    assert abs(seg.query_start_s - 3.0) <= 1.0 and abs(seg.query_end_s - 11.0) <= 1.0, seg
    assert abs((seg.ref_start_s - seg.query_start_s) - (2.0 - 3.0)) <= 0.6, seg
    # The whole frame alone does not see the copy.
    no_views = EngineConfig(audio=False, query_corner_views=0.0)
    with copytrace.open(str(tmp_path / "db"), no_views) as lib:
        assert lib.query(str(q_path)).matches == ()


def test_views_only_for_frames_without_a_match(tmp_path):
    frames = pan_frames("animal_cat.jpg", 6 * 25, seed=5)
    path = write_clip(tmp_path / "clip.mp4", frames, Fraction(25))
    everyone, _ = describe_video_frames(path, tiny_embed, "tiny", 192,
                                        view_fractions=(0.6, 0.7))
    assert everyone.views.shape == (len(everyone), 5, 192)
    assert (np.abs(everyone.views).sum(axis=(1, 2)) > 0).all()
    odd, _ = describe_video_frames(path, tiny_embed, "tiny", 192, view_fractions=(0.6, 0.0),
                                   needs_views=lambda v: np.arange(len(v)) % 2 == 1)
    has = np.abs(odd.views).sum(axis=(1, 2)) > 0
    assert odd.views.shape[1] == 4 and has.tolist() == [i % 2 == 1 for i in range(len(odd))]
    plain, _ = describe_video_frames(path, tiny_embed, "tiny", 192)
    assert plain.views is None and np.allclose(plain.vectors, everyone.vectors)


def test_add_descriptors_round_trip(tmp_path):
    ref = pan_frames("nature_flower.jpg", 12 * 25, seed=21)
    ref_path = write_clip(tmp_path / "ref.mp4", ref, Fraction(25))
    with copytrace.open(str(tmp_path / "db"), EngineConfig(audio=False)) as lib:
        spec = lib.image_spec
        d, duration_s = describe_video_frames(str(ref_path), lib.encoder.encode_images,
                                              spec.model_id, spec.dims)
        added = lib.add_descriptors(d, title="flower", duration_s=duration_s)
        assert added.created and added.work.path == "" and added.work.media_type == "video"
        assert added.work.n_descriptors == len(d)
        again = lib.add_descriptors(d, title="flower again")
        assert not again.created and again.work.work_id == added.work.work_id
        stored = lib.store.catalog.descriptors(added.work.work_id, "visual")
        assert np.array_equal(stored.vectors, d.vectors)
        assert np.array_equal(stored.starts_s, d.starts_s)
        # The file itself, queried, is found at its own times (no file to refine against).
        res = lib.query(str(ref_path))
        assert [m.work_id for m in res.matches] == [added.work.work_id]
        seg = res.matches[0].segments[0]
        assert abs(seg.query_start_s - seg.ref_start_s) < 0.5
        assert seg.query_end_s - seg.query_start_s > 9.0
    # The index was written: a fresh process sees the work.
    with copytrace.open(str(tmp_path / "db"), EngineConfig(audio=False)) as lib:
        assert lib.store.check() == []
        assert [w.title for w in lib.works()] == ["flower"]


def test_add_descriptors_rejects_what_it_cannot_search(tmp_path):
    with copytrace.open(str(tmp_path / "db"), EngineConfig(audio=False)) as lib:
        spec = lib.image_spec
        v = np.ones((3, spec.dims), np.float32) / np.sqrt(spec.dims)
        t = np.arange(3, dtype=np.float64)
        with pytest.raises(ValueError, match="model"):
            lib.add_descriptors(Descriptors(v, t, t + 1, "other-model"), title="x")
        with pytest.raises(ValueError, match="dims"):
            lib.add_descriptors(Descriptors(v[:, :10], t, t + 1, spec.model_id), title="x")
        with pytest.raises(ValueError, match="L2"):
            lib.add_descriptors(Descriptors(2 * v, t, t + 1, spec.model_id), title="x")
        with pytest.raises(ValueError, match="sorted"):
            lib.add_descriptors(Descriptors(v, t[::-1].copy(), t[::-1] + 1, spec.model_id),
                                title="x")
        with pytest.raises(ValueError, match="views"):
            lib.add_descriptors(Descriptors(v, t, t + 1, spec.model_id, "visual", v[:, None]),
                                title="x")
        with pytest.raises(ValueError, match="media_type"):
            lib.add_descriptors(Descriptors(v, t, t + 1, spec.model_id), title="x",
                                media_type="text")
        assert lib.works() == []


def test_tn_skips_isolated_matches_without_searching_each(monkeypatch):
    """A copy among many isolated strong matches (a recurring logo card, a static shot) is
    found, and each isolated match does not cost a path search of its own."""
    from copytrace.align.tn import TemporalNetworkAligner, TNConfig

    rng = np.random.default_rng(4)
    sim = rng.uniform(0.0, 0.5, (60, 400)).astype(np.float32)
    sim[rng.integers(0, 60, 80), rng.integers(0, 400, 80)] = 0.95  # isolated
    for i in range(20, 40):
        sim[i, 100 + i] = 0.8  # the copy: query 20-40 s <-> reference 120-140 s
    t = np.arange(60.0)
    calls = []
    aligner = TemporalNetworkAligner(TNConfig(min_sim=0.6))
    original = aligner._heaviest_path
    monkeypatch.setattr(aligner, "_heaviest_path",
                        lambda *a: calls.append(1) or original(*a))
    segs = aligner.align(sim, t, np.arange(400.0))
    best = max(segs, key=lambda s: s.query_end_s - s.query_start_s)
    assert (best.query_start_s, best.query_end_s, best.ref_start_s, best.ref_end_s) == (
        20.0, 40.0, 120.0, 140.0)
    assert len(calls) <= len(segs) + 5


def test_suppress_query_overlaps_keeps_the_best_explanation_of_each_moment():
    from copytrace.engine import suppress_query_overlaps
    from copytrace.types import Segment

    best = Segment(10.0, 20.0, 0.0, 10.0, 0.9)
    echo = Segment(12.0, 20.0, 30.0, 38.0, 0.7)  # same query moments, elsewhere in the ref
    half = Segment(15.0, 25.0, 50.0, 60.0, 0.8)  # exactly half covered: kept at 0.5
    apart = Segment(40.0, 45.0, 70.0, 75.0, 0.6)
    got = suppress_query_overlaps([echo, apart, best, half], 0.5)
    assert got == [best, half, apart]
    assert suppress_query_overlaps([echo, best], 1.0) == [echo, best]
    with pytest.raises(ValueError, match="video_max_query_overlap"):
        EngineConfig(video_max_query_overlap=0.0)


def test_video_query_on_another_models_library_says_so(tmp_path):
    from copytrace.errors import StoreError
    from copytrace.types import Work

    frames = pan_frames("animal_cat.jpg", 4 * 25, seed=6)
    path = write_clip(tmp_path / "clip.mp4", frames, Fraction(25))
    with copytrace.open(str(tmp_path / "db"), EngineConfig(audio=False)) as lib:
        v = np.eye(3, 8, dtype=np.float32)
        t = np.arange(3, dtype=np.float64)
        work = Work("0" * 16, "old", "", "video", "0" * 64, 3.0, 0.0, "old-model-1")
        lib.store.add(work, [Descriptors(v, t, t + 1, "old-model-1")])
        lib.flush()
        with pytest.raises(StoreError, match="old-model-1"):
            lib.query(str(path))

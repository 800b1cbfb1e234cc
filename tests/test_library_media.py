"""Video and audio end to end through the Library with the shipped models: planted copies in
real clips at 29.97 fps, excerpts of real music under noise, and a re-upload whose visuals were
replaced but whose soundtrack was kept."""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

import copytrace
from copytrace.media.audio import load_audio

from .conftest import DATA, mux_pcm
from .video_clips import pan_frames, write_clip

NTSC = Fraction(30000, 1001)
SR = 16000


def write_audio(path, samples: np.ndarray, codec="flac", rate=SR):
    import av

    with av.open(str(path), "w") as c:
        st = c.add_stream(codec, rate=rate)
        st.layout = "mono"
        mux_pcm(c, st, samples[None].astype(np.float32), rate)
    return path


def write_av_clip(path, frames, fps, samples):
    """A video with an AAC soundtrack (frames at ``fps``, mono samples at SR)."""
    import av

    with av.open(str(path), "w") as c:
        v = c.add_stream("libx264", rate=fps)
        v.width, v.height, v.pix_fmt = frames[0].width, frames[0].height, "yuv420p"
        v.options = {"preset": "ultrafast"}
        a = c.add_stream("aac", rate=SR)
        a.layout = "mono"
        for im in frames:
            for p in v.encode(av.VideoFrame.from_image(im)):
                c.mux(p)
        for p in v.encode():
            c.mux(p)
        mux_pcm(c, a, samples[None].astype(np.float32), SR)
    return path


def noisy(x: np.ndarray, snr_db: float, rng) -> np.ndarray:
    n = rng.normal(size=x.size).astype(np.float32)
    return x + n * np.sqrt(np.mean(x**2) / 10 ** (snr_db / 10))


@pytest.fixture(scope="module")
def music():
    return {name: load_audio(DATA / f"music_{name}.ogg", SR) for name in ("brainsukker", "beast")}


def test_video_copy_inside_longer_query(tmp_path):
    ref = pan_frames("face_astronaut.jpg", 12 * 25, seed=1)
    other = pan_frames("nature_flower.jpg", 12 * 25, seed=2)
    filler = pan_frames("building_temple.jpg", 12 * 25, seed=3)
    ref_path = write_clip(tmp_path / "ref.mp4", ref, Fraction(25))
    other_path = write_clip(tmp_path / "other.mp4", other, Fraction(25))
    # Query at 29.97 fps: 3 s filler, then reference seconds 4-10, then 3 s filler.
    step = 1001 / 30000
    frames = [filler[int(i * step * 25)] for i in range(int(3 / step))]
    n_copy = int(6 / step)
    frames += [ref[int((4 + i * step) * 25)] for i in range(n_copy)]
    frames += [filler[int((5 + i * step) * 25)] for i in range(int(3 / step))]
    q_path = write_clip(tmp_path / "query.mp4", frames, NTSC)
    q_end = 3 / step // 1 * step + n_copy * step
    with copytrace.open(str(tmp_path / "db")) as lib:
        ref_id = lib.add(str(ref_path)).work.work_id
        lib.add(str(other_path))
        res = lib.query(str(q_path))
    assert res.query.media_type == "video" and abs(res.query.duration_s - 12.0) < 0.2
    assert [m.work_id for m in res.matches] == [ref_id]
    seg = max(res.matches[0].segments, key=lambda s: s.query_end_s - s.query_start_s)
    truth = (int(3 / step) * step, q_end, 4.0, 4.0 + n_copy * step)
    got = (seg.query_start_s, seg.query_end_s, seg.ref_start_s, seg.ref_end_s)
    assert np.allclose(got, truth, atol=0.5), (got, truth)


def test_audio_excerpt_under_noise(tmp_path, music):
    rng = np.random.default_rng(3)
    with copytrace.open(str(tmp_path / "db")) as lib:
        ids = {n: lib.add(str(DATA / f"music_{n}.ogg")).work.work_id for n in music}
        start = 7.3
        excerpt = noisy(music["brainsukker"][int(start * SR):int((start + 5) * SR)], 10, rng)
        q = write_audio(tmp_path / "excerpt.flac", excerpt)
        res = lib.query(str(q))
        assert [m.work_id for m in res.matches] == [ids["brainsukker"]]
        seg = res.matches[0].segments[0]
        assert res.matches[0].signal == "audio"
        assert abs((seg.ref_start_s - seg.query_start_s) - start) < 0.25
        # the segment covers the whole 5 s excerpt, ends included (to within a reference hop)
        assert seg.query_start_s <= 0.5 and abs(seg.query_end_s - 5.0) <= 0.5
        assert abs(seg.ref_end_s - (start + 5.0)) <= 0.5
        # An unregistered excerpt (the other track, not added to a fresh library) stays quiet.
    with copytrace.open(str(tmp_path / "db2")) as lib:
        lib.add(str(DATA / "music_brainsukker.ogg"))
        q2 = write_audio(tmp_path / "innocent.flac", noisy(music["beast"][: 5 * SR], 10, rng))
        assert lib.query(str(q2)).matches == ()


def test_audio_typicality_is_stored_at_registration(tmp_path, music):
    db = tmp_path / "db"
    with copytrace.open(str(db)) as lib:
        work_id = lib.add(str(DATA / "music_beast.ogg")).work.work_id
        other_id = lib.add(str(DATA / "music_brainsukker.ogg")).work.work_id
        cohort = lib.signal("audio").cohort
        ref = lib.store.catalog.descriptors(work_id, "audio")
        stored = lib.store.catalog.window_stats(work_id, "audio", "typicality", cohort.key)
        assert stored is not None and np.allclose(stored, cohort.typicality(ref.vectors), atol=1e-6)
        # numbers derived with another cohort are never read
        assert lib.store.catalog.window_stats(work_id, "audio", "typicality", "other") is None
    with copytrace.open(str(db)) as lib:  # a fresh library reads them instead of computing
        lib.signal("audio").cohort.typicality = None
        assert np.array_equal(lib.signal("audio").reference_typicality(work_id, ref.vectors), stored)
    with copytrace.open(str(db)) as lib:
        assert lib.store.check() == []
        def count():
            return lib.store.catalog._db.execute("SELECT COUNT(*) FROM window_stats").fetchone()

        assert count() == (2,)
        lib.store.catalog._db.execute("UPDATE window_stats SET n = n - 1 WHERE work_id = ?", (work_id,))
        n = len(ref)
        assert lib.store.check() == [f"work {work_id}: {n - 1} audio typicality numbers for {n} descriptors"]
        assert lib.store.catalog.drop_mismatched_stats() == 1 and lib.store.check() == []
        # without them, the typicality is computed again: the same numbers
        assert np.allclose(lib.signal("audio").reference_typicality(work_id, ref.vectors), stored,
                           atol=1e-6)
        assert count() == (1,)
        lib.remove(other_id)  # a removed work's numbers go with it
        assert count() == (0,)


def test_reupload_with_new_visuals_found_by_soundtrack(tmp_path, music):
    track = music["brainsukker"]
    original = write_av_clip(tmp_path / "original.mp4",
                             pan_frames("animal_cat.jpg", 20 * 25, seed=4), 25, track)
    # Same soundtrack seconds 5-15, entirely different pictures.
    reupload = write_av_clip(tmp_path / "reupload.mp4",
                             pan_frames("object_rocket.jpg", 10 * 25, seed=5), 25,
                             track[5 * SR:15 * SR])
    with copytrace.open(str(tmp_path / "db")) as lib:
        work_id = lib.add(str(original)).work.work_id
        res = lib.query(str(reupload))
    audio = [m for m in res.matches if m.signal == "audio"]
    assert audio and audio[0].work_id == work_id
    assert not [m for m in res.matches if m.signal == "visual"]
    seg = audio[0].segments[0]
    assert abs((seg.ref_start_s - seg.query_start_s) - 5.0) < 0.25


def test_still_from_a_video_points_to_its_time(tmp_path):
    frames = pan_frames("object_coffee.jpg", 12 * 25, seed=7)
    ref_path = write_clip(tmp_path / "ref.mp4", frames, Fraction(25))
    still = tmp_path / "still.png"
    frames[int(6.0 * 25)].resize((192, 128)).save(still)
    with copytrace.open(str(tmp_path / "db")) as lib:
        work_id = lib.add(str(ref_path)).work.work_id
        res = lib.query(str(still))
    assert [m.work_id for m in res.matches] == [work_id]
    seg = res.matches[0].segments[0]
    assert seg.query_start_s == 0.0 and abs(seg.ref_start_s - 6.0) <= 1.0

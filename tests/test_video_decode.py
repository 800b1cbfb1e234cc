"""Decoding: real timestamps at rates other than 1 fps, rotation, and clear errors."""
from fractions import Fraction

import numpy as np
import pytest

from copytrace.errors import MediaError
from copytrace.media.video import iter_frames, probe_video, read_frames_between

from .video_clips import pan_frames, write_clip

NTSC = Fraction(30000, 1001)


@pytest.fixture(scope="module")
def ntsc_clip(tmp_path_factory):
    p = tmp_path_factory.mktemp("v") / "ntsc.mp4"
    return write_clip(p, pan_frames("eval_baboon.jpg", 150, seed=1), NTSC)  # 5.005 s


def test_probe(ntsc_clip):
    info = probe_video(str(ntsc_clip))
    assert info.fps == pytest.approx(29.97, abs=0.01)
    assert info.duration_s == pytest.approx(150 / 29.97, abs=0.05)
    assert (info.width, info.height, info.rotation, info.has_audio) == (96, 64, 0, False)


def test_sampled_frames_carry_real_presentation_times(ntsc_clip):
    frames = list(iter_frames(str(ntsc_clip), fps=2.0, max_side=None))
    times = np.array([t for t, _ in frames])
    # Every kept time is a real NTSC frame time k * 1001/30000, not a 0.5 s grid value.
    k = times * 30000 / 1001
    assert np.allclose(k, np.round(k), atol=1e-3)
    assert len(frames) == 10 and times[0] == 0.0  # 0, 0.5, ..., 4.5 (last frame 4.97 s)
    assert np.all(np.abs(times - np.arange(10) * 0.5) < 1 / 29.97 + 1e-6)
    assert frames[0][1].size == (96, 64)


def test_max_side_keeps_aspect(ntsc_clip):
    _, im = next(iter_frames(str(ntsc_clip), fps=1.0, max_side=48))
    assert im.size == (48, 32)


def test_read_frames_between_native_rate(ntsc_clip):
    fr = read_frames_between(str(ntsc_clip), 2.0, 2.5)
    t = np.array([x for x, _ in fr])
    assert len(fr) == 15 and np.all(np.diff(t) > 0)
    assert t[0] >= 2.0 and t[-1] <= 2.5


@pytest.mark.parametrize("windows", [
    [(2.0, 2.5), (2.2, 3.4), (4.0, 4.6), (0.0, 0.3), (2.3, 2.4), (4.9, 9.0)],  # overlaps, back
    [(0.5, 1.0), (1.5, 2.0), (3.0, 3.2), (3.2, 3.2)],  # forward: decoded on, no seek back
])
def test_window_reader_gives_read_frames_between_frames(ntsc_clip, windows):
    from copytrace.media.video import WindowReader

    with WindowReader(str(ntsc_clip), max_side=None) as reader:
        for a, b in windows:
            got, want = reader(a, b, None), read_frames_between(str(ntsc_clip), a, b, None)
            assert [t for t, _ in got] == [t for t, _ in want]
            assert all(np.array_equal(np.asarray(g), np.asarray(w))
                       for (_, g), (_, w) in zip(got, want))
        again = reader(*windows[0], None)  # served from memory: the very same images
        assert [id(im) for _, im in again] == [id(im) for _, im in reader(*windows[0], None)]
    with pytest.raises(ValueError, match="max_side"):
        WindowReader(str(ntsc_clip), max_side=None)(0.0, 1.0, 320)


def test_window_reader_decodes_on_instead_of_seeking_back(ntsc_clip, monkeypatch):
    from copytrace.media import video

    opened = []
    real = video._decode
    monkeypatch.setattr(video, "_decode", lambda *a, **k: opened.append(a[1]) or real(*a, **k))
    with video.WindowReader(str(ntsc_clip), max_side=None) as reader:
        for a, b in [(0.5, 1.0), (1.5, 2.0), (3.0, 3.2), (0.6, 0.9)]:
            reader(a, b, None)
        assert opened == [0.5]  # later windows within CONTINUE_S decoded on; the last is cached
        reader(1.0, 1.2, None)  # behind the open decoder, not read before: one seek
        assert opened == [0.5, 1.0]


def test_rotation_applied(tmp_path):
    p = write_clip(tmp_path / "rot.mp4", pan_frames("eval_fruits.jpg", 10, seed=2),
                   Fraction(25), rotation=90)
    info = probe_video(str(p))
    assert info.rotation == 90 and (info.width, info.height) == (64, 96)
    _, im = next(iter_frames(str(p)))
    assert im.size == (64, 96)


def test_no_video_stream(tmp_path):
    import av

    p = tmp_path / "tone.m4a"
    with av.open(str(p), "w") as c:
        st = c.add_stream("aac", rate=16000)
        t = np.arange(16000, dtype=np.float32) / 16000
        fr = av.AudioFrame.from_ndarray(np.sin(2 * np.pi * 440 * t)[None, :], format="fltp",
                                        layout="mono")
        fr.sample_rate = 16000
        for pkt in st.encode(fr):
            c.mux(pkt)
        for pkt in st.encode():
            c.mux(pkt)
    with pytest.raises(MediaError, match="no video stream"):
        probe_video(str(p))


def test_zero_bytes(tmp_path):
    p = tmp_path / "empty.mp4"
    p.write_bytes(b"")
    with pytest.raises(MediaError):
        probe_video(str(p))
    with pytest.raises(MediaError):
        list(iter_frames(str(p)))


def test_not_a_video(tmp_path):
    p = tmp_path / "junk.mkv"
    p.write_bytes(b"\x1a\x45\xdf\xa3" + bytes(range(256)) * 8)
    with pytest.raises(MediaError):
        list(iter_frames(str(p)))


def test_truncated_index_at_end(ntsc_clip, tmp_path):
    # mp4 with its index after the data: cut, the file cannot even be opened.
    data = ntsc_clip.read_bytes()
    p = tmp_path / "cut.mp4"
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(MediaError):
        list(iter_frames(str(p)))


def test_truncated_data_raises_after_partial_frames(tmp_path):
    # Index first (faststart): the cut file opens and decodes its first part, then must fail.
    full = write_clip(tmp_path / "fs.mp4", pan_frames("eval_baboon.jpg", 150, seed=3),
                      Fraction(25), faststart=True)
    data = full.read_bytes()
    p = tmp_path / "cut.mp4"
    p.write_bytes(data[: int(len(data) * 0.5)])
    got = []
    with pytest.raises(MediaError, match="truncated|corrupt"):
        for t, _ in iter_frames(str(p), fps=5.0):
            got.append(t)
    assert 0 < len(got) < 30  # some frames decoded, not all six seconds' worth


def test_flat_frames_are_recognised(ntsc_clip):
    from PIL import Image

    from copytrace.media.video import is_flat_frame

    assert is_flat_frame(Image.new("RGB", (64, 48), (3, 3, 3)))
    assert not is_flat_frame(next(iter_frames(str(ntsc_clip)))[1])


def test_variable_frame_rate_times_are_the_written_ones(tmp_path):
    import av

    from .video_clips import pan_frames

    # Irregular gaps (20-120 ms): any assumed constant rate would misplace frames.
    rng = np.random.default_rng(4)
    pts_ms = np.cumsum(rng.integers(20, 120, 60))
    pts_ms -= pts_ms[0]
    p = tmp_path / "vfr.mkv"
    with av.open(str(p), "w") as c:
        st = c.add_stream("libx264", rate=25)
        st.width, st.height, st.pix_fmt = 96, 64, "yuv420p"
        st.time_base = Fraction(1, 1000)
        st.codec_context.time_base = Fraction(1, 1000)
        for im, t in zip(pan_frames("eval_fruits.jpg", 60, seed=7), pts_ms):
            fr = av.VideoFrame.from_image(im)
            fr.pts, fr.time_base = int(t), Fraction(1, 1000)
            for pkt in st.encode(fr):
                c.mux(pkt)
        for pkt in st.encode():
            c.mux(pkt)
    got = np.array([t for t, _ in read_frames_between(str(p), 0.0, 100.0)])
    assert np.allclose(got, pts_ms / 1000.0, atol=1e-3)
    sampled = np.array([t for t, _ in iter_frames(str(p), fps=2.0)])
    assert np.isin(np.round(sampled * 1000).astype(int), pts_ms).all()


def test_letterbox_and_padding_are_cut_even_under_a_logo(ntsc_clip):
    from PIL import Image, ImageDraw, ImageOps

    from copytrace.media.video import crop_uniform_borders

    _, im = next(iter_frames(str(ntsc_clip), max_side=None))  # 96 x 64 photo content
    boxed = ImageOps.expand(ImageOps.pad(im, (96, 96), color=(0, 0, 0)), 10, fill=(40, 90, 160))
    ImageDraw.Draw(boxed).rectangle((2, 2, 20, 8), fill="white")  # a logo on the padding
    out = crop_uniform_borders(boxed)
    assert abs(out.width - 96) <= 2 and abs(out.height - 64) <= 2
    assert crop_uniform_borders(im).size == im.size  # no bars: untouched
    flat = Image.new("RGB", (50, 40), (9, 9, 9))
    assert crop_uniform_borders(flat).size == (50, 40)  # nothing left to keep: untouched

"""Audio decoding: every common container/codec, resampled to mono, constant-size chunks,
real timestamps, clear errors. Media is generated here with PyAV (a few seconds each)."""
from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from copytrace.errors import MediaError
from copytrace.media.audio import iter_audio, load_audio, probe_audio

from .conftest import mux_pcm

SR_IN = 44100
DUR_S = 3.0


def tone_signal(sr: int, dur_s: float) -> np.ndarray:
    """Stereo test music: a 440 Hz tone in the first half, 1000 Hz in the second."""
    t = np.arange(int(sr * dur_s)) / sr
    f = np.where(t < dur_s / 2, 440.0, 1000.0)
    x = 0.5 * np.sin(2 * np.pi * f * t).astype(np.float32)
    return np.stack([x, 0.5 * x])


def write_audio(path: Path, codec: str, fmt: str, sr: int = SR_IN, with_video: bool = False) -> Path:
    x = tone_signal(sr, DUR_S)
    with av.open(str(path), "w", format=fmt) as out:
        if with_video:
            v = out.add_stream("mpeg4", rate=10)
            v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        st = out.add_stream(codec, rate=sr, layout="stereo")
        if codec == "vorbis":  # FFmpeg's own Vorbis encoder is flagged experimental
            st.codec_context.options = {"strict": "experimental"}
        mux_pcm(out, st, x, sr)
        if with_video:
            for k in range(int(DUR_S * 10)):
                vf = av.VideoFrame.from_ndarray(np.full((48, 64, 3), k * 8, np.uint8), format="rgb24")
                for p in v.encode(vf):
                    out.mux(p)
            for p in v.encode(None):
                out.mux(p)
    return path


CASES = [
    ("wav", "pcm_s16le", "wav"),
    ("flac", "flac", "flac"),
    ("mp3", "libmp3lame", "mp3"),
    ("ogg", "vorbis", "ogg"),
    ("opus", "libopus", "ogg"),
    ("m4a", "aac", "ipod"),
]


@pytest.mark.parametrize("ext,codec,fmt", CASES)
def test_decodes_common_codecs_to_mono_at_rate(tmp_path, ext, codec, fmt):
    sr = 48000 if codec == "libopus" else SR_IN
    p = write_audio(tmp_path / f"a.{ext}", codec, fmt, sr)
    info = probe_audio(p)
    assert info.channels == 2 and not info.has_video
    x = load_audio(p, 8000)
    assert x.dtype == np.float32 and x.ndim == 1
    assert abs(x.size / 8000 - DUR_S) < 0.1  # codec padding is small
    # The tone switch at 1.5 s must still be at 1.5 s: times are real.
    first = x[int(0.3 * 8000) : int(1.2 * 8000)]
    second = x[int(1.8 * 8000) : int(2.7 * 8000)]
    for seg, f in ((first, 440), (second, 1000)):
        spec = np.abs(np.fft.rfft(seg))
        peak_hz = np.argmax(spec) * 8000 / seg.size
        assert abs(peak_hz - f) < 15


def test_chunks_are_constant_size_and_timed(tmp_path):
    p = write_audio(tmp_path / "a.wav", "pcm_s16le", "wav")
    chunks = list(iter_audio(p, 8000, chunk_s=0.7))
    starts = [s for s, _ in chunks]
    sizes = [c.size for _, c in chunks]
    assert all(n == 5600 for n in sizes[:-1]) and 0 < sizes[-1] <= 5600
    assert np.allclose(np.diff(starts), 0.7)
    whole = load_audio(p, 8000)
    assert np.array_equal(np.concatenate([c for _, c in chunks]), whole)


def test_audio_track_of_a_video(tmp_path):
    p = write_audio(tmp_path / "v.mp4", "aac", "mp4", with_video=True)
    assert probe_audio(p).has_video
    assert abs(load_audio(p, 16000).size / 16000 - DUR_S) < 0.1


def test_video_without_audio_is_a_media_error(tmp_path):
    p = tmp_path / "silent.mp4"
    with av.open(str(p), "w") as out:
        v = out.add_stream("mpeg4", rate=5)
        v.width, v.height, v.pix_fmt = 32, 32, "yuv420p"
        for k in range(5):
            for pk in v.encode(av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), np.uint8), format="rgb24")):
                out.mux(pk)
        for pk in v.encode(None):
            out.mux(pk)
    with pytest.raises(MediaError, match="no audio stream"):
        list(iter_audio(p))
    with pytest.raises(MediaError):
        probe_audio(p)


def test_garbage_and_truncated_files_are_media_errors(tmp_path):
    junk = tmp_path / "junk.mp3"
    junk.write_bytes(b"this is not audio" * 100)
    with pytest.raises(MediaError):
        list(iter_audio(junk))
    good = write_audio(tmp_path / "a.flac", "flac", "flac")
    cut = tmp_path / "cut.flac"
    cut.write_bytes(good.read_bytes()[:200])
    with pytest.raises(MediaError):
        load_audio(cut)
    with pytest.raises(MediaError):
        probe_audio(tmp_path / "missing.ogg")

"""Audio decoding with PyAV: any container FFmpeg reads (mp3, ogg/vorbis, opus, flac, wav,
m4a/aac, the audio track of a video), resampled, mixed to mono, streamed in fixed-size chunks.

Memory stays constant whatever the file length: samples flow from the demuxer through the
resampler into one chunk buffer that is yielded and replaced. Times come from the count of
samples delivered at the output rate, anchored at the stream's first timestamp, so a file whose
audio starts late (video with an audio delay) keeps its real offsets.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from copytrace.deadline import check
from copytrace.errors import MediaError
from copytrace.progress import report
from copytrace.media._av_errors import av_cause


@dataclass(frozen=True)
class AudioInfo:
    path: str
    codec: str
    sample_rate: int
    channels: int
    duration_s: float | None
    container: str
    has_video: bool


def _open(path: str | Path):
    import av

    try:
        return av.open(str(path))
    except (av.FFmpegError, OSError, UnicodeDecodeError, ValueError) as e:
        raise MediaError(str(path), f"cannot open as media: {av_cause(e)}") from e


def _audio_stream(container, path: str | Path):
    if not container.streams.audio:
        container.close()
        raise MediaError(str(path), "no audio stream")
    st = container.streams.audio[0]
    if st.codec_context is None:
        container.close()
        raise MediaError(str(path), "audio stream has no decoder (unknown codec or corrupt header)")
    return st


def probe_audio(path: str | Path) -> AudioInfo:
    """Read the header of the first audio stream; no samples are decoded."""
    c = _open(path)
    try:
        st = _audio_stream(c, path)
        dur = None
        if st.duration is not None and st.time_base is not None:
            dur = float(st.duration * st.time_base)
        elif c.duration is not None:
            dur = c.duration / 1_000_000.0
        return AudioInfo(
            path=str(path),
            codec=st.codec_context.name,
            sample_rate=int(st.codec_context.sample_rate or 0),
            channels=int(st.codec_context.channels or 0),
            duration_s=dur,
            container=c.format.name,
            has_video=bool(c.streams.video),
        )
    finally:
        c.close()


def iter_audio(
    path: str | Path, sample_rate: int = 8000, chunk_s: float = 10.0
) -> Iterator[tuple[float, np.ndarray]]:
    """Yield ``(start_s, samples)``: float32 mono chunks of ``chunk_s`` seconds (the last may be
    shorter) at ``sample_rate``. Raises MediaError for unreadable files or no audio stream."""
    import av

    if sample_rate <= 0 or chunk_s <= 0:
        raise ValueError("sample_rate and chunk_s must be positive")
    chunk_n = max(1, round(chunk_s * sample_rate))
    c = _open(path)
    try:
        st = _audio_stream(c, path)
        st.thread_type = "AUTO"
        duration_s = (float(st.duration * st.time_base) if st.duration and st.time_base
                      else c.duration / 1e6 if c.duration else 0.0)  # for a job's progress
        resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
        buf = np.empty(chunk_n, dtype=np.float32)
        fill = 0
        delivered = 0
        origin_s: float | None = None

        def frames():
            try:
                for packet in c.demux(st):
                    check("decoding audio")  # the request's time limit (copytrace.deadline)
                    yield from packet.decode()
            except (av.FFmpegError, IndexError) as e:  # IndexError: PyAV on a stream born mid-file
                raise MediaError(str(path), f"corrupt audio after {delivered / sample_rate:.2f} s: "
                                 f"{av_cause(e)}") from e
            yield None  # flush the resampler

        for frame in frames():
            if frame is not None and origin_s is None:
                origin_s = float(frame.pts * frame.time_base) if frame.pts is not None else 0.0
                origin_s = max(0.0, origin_s)
            for out in resampler.resample(frame):
                x = out.to_ndarray().reshape(-1)
                while x.size:
                    take = min(x.size, chunk_n - fill)
                    buf[fill : fill + take] = x[:take]
                    fill += take
                    x = x[take:]
                    if fill == chunk_n:
                        yield (origin_s or 0.0) + delivered / sample_rate, buf
                        delivered += chunk_n
                        if duration_s > 0:
                            report("decoding audio", delivered / sample_rate / duration_s)
                        buf = np.empty(chunk_n, dtype=np.float32)
                        fill = 0
        if origin_s is None:
            raise MediaError(str(path), "audio stream holds no decodable samples")
        if fill:
            yield origin_s + delivered / sample_rate, buf[:fill].copy()
    finally:
        c.close()


def load_audio(path: str | Path, sample_rate: int = 8000, max_s: float | None = None) -> np.ndarray:
    """Whole file (or its first ``max_s`` seconds) as one float32 mono array."""
    parts, total = [], 0
    for _, x in iter_audio(path, sample_rate, chunk_s=30.0):
        parts.append(x)
        total += x.size
        if max_s is not None and total >= max_s * sample_rate:
            break
    if not parts:
        return np.zeros(0, dtype=np.float32)
    out = np.concatenate(parts)
    return out[: int(max_s * sample_rate)] if max_s is not None else out

"""Video decoding with PyAV: probe, sampled frames with real timestamps, boundary neighbourhoods.

Times are float seconds of presentation time (``pts * time_base``) measured from the start of
the file (the container's start time, else the video stream's), so they match what a player
shows. Frames come out upright: the display matrix (or the legacy ``rotate`` tag) is applied.
Decoding streams: memory stays constant whatever the length of the file.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator

from copytrace.deadline import check
from copytrace.errors import MediaError
from copytrace.progress import report
from copytrace.media._av_errors import av_cause

if TYPE_CHECKING:
    from PIL import Image

log = logging.getLogger(__name__)

# A decode that stops this far before the announced end is a truncated file, not a rounding
# difference between container and stream clocks.
TRUNCATION_SLACK_S = 1.0
TRUNCATION_SLACK_FRACTION = 0.05
# Sampling at most a quarter of the native rate lets the decoder skip non-reference frames:
# the frames we keep are still stamped with their own pts, only the choice among them changes.
SKIP_NONREF_RATIO = 4.0
# Containers whose header duration FFmpeg only estimates from the bit rate (often far off):
# their duration is measured by demuxing to the last packet instead.
ESTIMATED_FORMATS = {"mpeg", "mpegts", "mpegvideo", "h264", "hevc", "m4v", "rawvideo"}


@dataclass(frozen=True)
class VideoInfo:
    """What ``probe_video`` learns without decoding pictures.

    ``width``/``height`` are as displayed (after rotation); ``rotation`` is the display rotation
    in degrees counter-clockwise (FFmpeg's display-matrix convention), one of 0/90/180/270.
    """

    duration_s: float
    fps: float
    width: int
    height: int
    rotation: int
    has_audio: bool
    codec: str = ""


def _open(path: str):
    import av

    try:
        return av.open(str(path), metadata_errors="ignore")
    except (av.FFmpegError, OSError, UnicodeDecodeError) as e:
        raise MediaError(str(path), f"cannot open as a media file ({av_cause(e)})") from e


def _video_stream(container, path: str):
    streams = [s for s in container.streams.video if s.codec_context is not None]
    if not streams:
        raise MediaError(str(path), "no video stream")
    # Cover art in mp4/mkv is an attached picture, not a video.
    moving = [s for s in streams if not (s.disposition and "attached_pic" in str(s.disposition))]
    if not moving:
        raise MediaError(str(path), "no video stream (only attached pictures)")
    return moving[0]


def _stream_rotation(stream) -> int:
    """Display rotation from the legacy ``rotate`` tag (newer files carry it per frame)."""
    tag = stream.metadata.get("rotate") if stream.metadata else None
    try:
        return int(round(-float(tag))) % 360 if tag is not None else 0
    except ValueError:
        return 0


def _first_frame_rotation(container, stream, path: str) -> int:
    """The display matrix travels with decoded frames; the first one tells the rotation."""
    import av

    try:
        container.seek(0)
        for fr in container.decode(stream):
            return _norm_rotation(fr.rotation) if fr.rotation else _stream_rotation(stream)
    except av.FFmpegError as e:
        raise MediaError(str(path), f"corrupt video stream: first frame fails ({av_cause(e)})") from e
    raise MediaError(str(path), "no decodable video frames")


def _norm_rotation(deg: float | None) -> int:
    if deg is None or (isinstance(deg, float) and math.isnan(deg)):
        return 0
    return int(90 * round(float(deg) / 90.0)) % 360


def _origin_s(container, stream) -> float:
    if container.start_time is not None:
        return container.start_time / 1_000_000.0
    if stream.start_time is not None and stream.time_base is not None:
        return float(stream.start_time * stream.time_base)
    return 0.0


def _rate(stream) -> float:
    for r in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if r is not None and float(r) > 0 and float(r) < 1000:
            return float(r)
    return 0.0


def _last_packet_time_s(container, stream) -> float | None:
    """Demux (without decoding) to the last packet: duration of files whose headers omit it."""
    last = None
    for pkt in container.demux(stream):
        if pkt.pts is not None and pkt.time_base is not None:
            end = pkt.pts + (pkt.duration or 0)
            last = end if last is None else max(last, end)
    return None if last is None else float(last * stream.time_base)


def probe_video(path: str) -> VideoInfo:
    """Duration, rate, displayed size, rotation and audio presence; MediaError if unusable."""
    import av

    with _open(path) as c:
        s = _video_stream(c, path)
        cc = s.codec_context
        fps = _rate(s)
        origin = _origin_s(c, s)
        duration = None
        if s.duration is not None and s.time_base is not None:
            duration = float(s.duration * s.time_base)
            # Stream duration is from its own start; the file origin may lie earlier.
            if s.start_time is not None:
                duration += float(s.start_time * s.time_base) - origin
        elif c.duration is not None and not set(c.format.name.split(",")) & ESTIMATED_FORMATS:
            duration = c.duration / 1_000_000.0
        elif s.frames and fps > 0:
            duration = s.frames / fps
        if duration is None or duration <= 0:
            try:
                last = _last_packet_time_s(c, s)
            except av.FFmpegError as e:
                raise MediaError(str(path), f"corrupt video stream ({av_cause(e)})") from e
            duration = None if last is None else last - origin
        if duration is None or duration <= 0:
            raise MediaError(str(path), "zero-length video (no frames)")
        rotation = _first_frame_rotation(c, s, path)
        w, h = int(cc.width or 0), int(cc.height or 0)
        if w <= 0 or h <= 0:
            raise MediaError(str(path), "video stream has no picture size (corrupt header?)")
        if rotation in (90, 270):
            w, h = h, w
        return VideoInfo(
            duration_s=float(duration), fps=fps, width=w, height=h, rotation=rotation,
            has_audio=bool(c.streams.audio), codec=cc.name or "",
        )


class _TimestampPicker:
    """FFmpeg's best-effort timestamp: trust pts unless it goes backwards more often than dts.

    AVI files with packed B-frames (DivX) label decoded frames with swapped pts while their
    dts run straight; the decoder's output order is right, so dts is then the true time.
    """

    def __init__(self, time_base, origin_s: float, step_s: float) -> None:
        self.time_base, self.origin_s, self.step_s = time_base, origin_s, step_s
        self.last_pts = self.last_dts = None
        self.pts_faults = self.dts_faults = 0
        self.count = 0

    def time_s(self, frame) -> float:
        pts, dts = frame.pts, frame.dts
        if pts is not None:
            self.pts_faults += self.last_pts is not None and pts <= self.last_pts
            self.last_pts = pts
        if dts is not None:
            self.dts_faults += self.last_dts is not None and dts <= self.last_dts
            self.last_dts = dts
        self.count += 1
        if pts is not None and (dts is None or self.pts_faults <= self.dts_faults):
            return float(pts * self.time_base) - self.origin_s
        if dts is not None:
            return float(dts * self.time_base) - self.origin_s
        # Only for streams without any timestamps (rare raw files): count frames.
        return (self.count - 1) * self.step_s


def _scaler():
    from av.video.reformatter import VideoReformatter

    return VideoReformatter()


def _to_image(frame, max_side: int | None, rotation: int, reformatter) -> "Image.Image":
    w, h = frame.width, frame.height
    if max_side is not None and max(w, h) > max_side:
        k = max_side / max(w, h)
        w, h = max(2, int(round(w * k))), max(2, int(round(h * k)))
        # swscale resizes while converting: far cheaper than a PIL resize of the full frame.
        # One reformatter per stream reuses its scaler instead of building one per frame.
        im = reformatter.reformat(frame, width=w, height=h, format="rgb24",
                                  interpolation="AREA").to_image()
    else:
        im = frame.to_image()
    if rotation:
        im = im.rotate(rotation, expand=True)
    return im


def _decode(path: str, start_s: float | None, skip_nonref: bool):
    """Yield (time_s, frame, rotation, stream) for every decoded frame, from ``start_s`` on.

    Raises MediaError at the point a corrupt packet stops decoding (after what decoded).
    """
    import av

    c = _open(path)
    try:
        s = _video_stream(c, path)
        s.thread_type = "AUTO"
        if skip_nonref:
            s.codec_context.skip_frame = "NONREF"
            # Sparse sampling for descriptors: skipping the deblocking filter nearly halves
            # H.264 decode time; descriptors don't see the faint block edges it leaves.
            s.codec_context.options = {"skip_loop_filter": "all"}
        origin = _origin_s(c, s)
        rot_tag = _stream_rotation(s)
        step = 1.0 / (_rate(s) or 25.0)
        seeking = start_s is not None and start_s > 0 and s.time_base is not None
        if seeking:
            c.seek(int((start_s + origin) / s.time_base), stream=s, backward=True, any_frame=False)
        clock = _TimestampPicker(s.time_base, origin, step)
        try:
            for pkt in c.demux(s):
                check("decoding video")  # the request's time limit (copytrace.deadline)
                if seeking:
                    # Containers without a keyframe index can land between keyframes: skip to
                    # the next keyframe; if that is already past start_s, decode from the top.
                    if not pkt.is_keyframe:
                        continue
                    seeking = False
                    if pkt.pts is not None and float(pkt.pts * s.time_base) - origin > start_s:
                        c.seek(0, stream=s, backward=True, any_frame=False)
                        continue
                for fr in pkt.decode():
                    t = clock.time_s(fr)
                    rot = _norm_rotation(fr.rotation) if fr.rotation else rot_tag
                    yield t, fr, rot, s
        except (av.FFmpegError, IndexError) as e:  # IndexError: PyAV on a stream born mid-file
            raise MediaError(str(path), f"corrupt or truncated video stream ({av_cause(e)})") from e
    finally:
        c.close()


def iter_frames(
    path: str, fps: float = 1.0, max_side: int | None = 320, info: VideoInfo | None = None
) -> Iterator[tuple[float, "Image.Image"]]:
    """Stream upright RGB frames sampled at ``fps``, each with its real time in seconds.

    A frame is kept when its timestamp reaches the next sampling instant ``k / fps``; so kept
    times are true presentation times, close to (not exactly on) the grid. Raises MediaError
    after the frames that decoded if the stream is corrupt or ends well before its announced
    duration (callers must then treat the frames as partial). ``info``: the file's
    ``probe_video`` result when the caller has it (the header is not read again).
    """
    if not fps > 0:
        raise ValueError(f"fps must be positive, not {fps}")
    info = info or probe_video(path)
    interval = 1.0 / fps
    # Half a native frame of tolerance: a frame at 0.999 s is the 1 s sample.
    eps = 0.5 / info.fps if info.fps > 0 else 0.0
    skip_nonref = info.fps >= SKIP_NONREF_RATIO * fps
    next_s = 0.0
    last_s = None
    scaler = _scaler()
    for t, fr, rot, _ in _decode(path, None, skip_nonref):
        last_s = t if last_s is None else max(last_s, t)
        if t + eps < next_s:
            continue
        yield t, _to_image(fr, max_side, rot, scaler)
        if info.duration_s > 0:
            report("decoding video", t / info.duration_s)  # a job's progress
        next_s = (math.floor((t + eps) / interval) + 1) * interval
    _check_complete(path, info, last_s)


def _check_complete(path: str, info: VideoInfo, last_s: float | None) -> None:
    if last_s is None:
        raise MediaError(str(path), "no decodable video frames")
    slack = max(TRUNCATION_SLACK_S, TRUNCATION_SLACK_FRACTION * info.duration_s)
    if last_s < info.duration_s - slack:
        raise MediaError(
            str(path),
            f"truncated: frames decoded up to {last_s:.2f} s of an announced "
            f"{info.duration_s:.2f} s",
        )


def iter_frames_between(
    path: str, start_s: float, end_s: float, max_side: int | None = 320
) -> Iterator[tuple[float, "Image.Image"]]:
    """Every frame (native rate) with start_s <= time <= end_s: seeks, then decodes the gap."""
    if end_s < start_s:
        raise ValueError(f"end_s {end_s} before start_s {start_s}")
    scaler = _scaler()
    for t, fr, rot, _ in _decode(path, max(0.0, start_s), skip_nonref=False):
        if t > end_s:
            break
        if t >= start_s:
            yield t, _to_image(fr, max_side, rot, scaler)


def read_frames_between(
    path: str, start_s: float, end_s: float, max_side: int | None = 320
) -> list[tuple[float, "Image.Image"]]:
    """``iter_frames_between`` as a list: for short neighbourhoods (boundary refinement)."""
    return list(iter_frames_between(path, start_s, end_s, max_side))


# A window starting at most this far after where the open decoder stands is reached by decoding
# on: a seek would restart from the keyframe before it, often farther back (x264 puts one every
# 10 s unless the scene cuts).
CONTINUE_S = 3.0


class WindowReader:
    """Native-rate frames of one video for many short windows (``read_frames_between``'s
    contract, same frames), each frame decoded and converted at most once.

    Boundary refinement reads four windows per segment, and a query's segments (several works,
    adjacent segments) often share windows: frames already converted come from memory, and a
    window that starts shortly after where the open decoder stands is reached by decoding on
    instead of seeking back to a keyframe. Memory grows with the windows read (frames of at most
    ``max_side``), so one reader serves one request. The same image objects are returned for the
    same frame, so a caller may memoise work on them. Call ``close`` when done (or use it as a
    context manager).
    """

    def __init__(self, path: str, max_side: int | None = 320) -> None:
        self.path = str(path)
        self.max_side = max_side
        self._frames: dict[float, "Image.Image"] = {}
        self._covered: list[tuple[float, float]] = []  # closed spans fully in _frames
        self._gen = None  # the open decode: a _decode generator
        self._pending = None  # the frame it yielded past the last window's end
        self._pos_s = -math.inf  # every frame before this was consumed by the open decode
        self._scaler = None

    def __call__(self, start_s: float, end_s: float,
                 max_side: int | None = 320) -> list[tuple[float, "Image.Image"]]:
        if end_s < start_s:
            raise ValueError(f"end_s {end_s} before start_s {start_s}")
        if max_side != self.max_side:
            raise ValueError(f"this reader converts frames to max_side={self.max_side}, "
                             f"not {max_side}: open one per size")
        start_s = max(0.0, start_s)
        for lo, hi in self._gaps(start_s, end_s):
            self._decode_span(lo, hi)
        return [(t, im) for t, im in sorted(self._frames.items()) if start_s <= t <= end_s]

    def _gaps(self, start_s: float, end_s: float) -> list[tuple[float, float]]:
        """The parts of [start_s, end_s] not yet decoded."""
        gaps, t, t_covered = [], start_s, False
        for lo, hi in sorted(self._covered):
            if hi < t or lo > end_s:
                continue
            if lo > t:
                gaps.append((t, lo))
            t, t_covered = max(t, hi), True
        if t < end_s or not t_covered:
            gaps.append((t, end_s))
        return gaps

    def _decode_span(self, lo: float, hi: float) -> None:
        if self._gen is None or not self._pos_s <= lo <= self._pos_s + CONTINUE_S:
            self.close()
            self._gen = _decode(self.path, lo, skip_nonref=False)
            self._scaler = _scaler()
        try:
            while True:
                item = self._pending if self._pending is not None else next(self._gen, None)
                self._pending = None
                if item is None:  # the stream ended: what [lo, hi] holds is all decoded
                    self.close()
                    break
                t, fr, rot, _ = item
                if t > hi:
                    self._pending, self._pos_s = item, hi
                    break
                if t >= lo and t not in self._frames:
                    self._frames[t] = _to_image(fr, self.max_side, rot, self._scaler)
        except BaseException:
            self.close()  # a corrupt packet (MediaError) or a deadline: start afresh next time
            raise
        self._covered.append((lo, hi))

    def close(self) -> None:
        if self._gen is not None:
            self._gen.close()
        self._gen, self._pending, self._pos_s = None, None, -math.inf

    def __enter__(self) -> "WindowReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# Frames this uniform (grey-level standard deviation out of 255) carry no identity: black
# leaders, fades and title cards match every other video's and would plant false copies.
FLAT_FRAME_STD = 8.0


def is_flat_frame(image: "Image.Image", max_std: float = FLAT_FRAME_STD) -> bool:
    """True for near-uniform frames, whose descriptors should not take part in matching."""
    import numpy as np

    g = np.asarray(image.convert("L").resize((32, 32)), dtype=np.float32)
    return float(g.std()) < max_std


# A border row or column has at least this share of its pixels within BORDER_TOLERANCE grey
# levels of its median colour: solid bars, even with a logo or a caption drawn over them.
BORDER_SHARE = 0.75
BORDER_TOLERANCE = 12.0
MIN_KEPT_FRACTION = 0.4


def crop_uniform_borders(image: "Image.Image") -> "Image.Image":
    """Cut letterbox/pillarbox bars and solid padding, as re-uploads add them.

    Rows and columns are removed from each edge while they are (mostly) one colour; nothing is
    cut when less than 40 % of the picture would remain (a flat frame, or a dark scene).
    """
    import numpy as np

    a = np.asarray(image.convert("RGB"))
    h, w = a.shape[:2]

    def uniform(x: np.ndarray) -> np.ndarray:  # x: [lines, pixels, 3] uint8
        # Exact integer form of "within BORDER_TOLERANCE of the line's median": with m2 the
        # sum of the two middle values (twice the median), |2x - m2| < 2 * tolerance.
        n = x.shape[1]
        k = n // 2
        if n % 2:
            m2 = 2 * np.partition(x, k, axis=1)[:, k:k + 1].astype(np.int16)
        else:
            part = np.partition(x, (k - 1, k), axis=1)
            m2 = part[:, k - 1:k].astype(np.int16) + part[:, k:k + 1]
        d = np.abs(2 * x.astype(np.int16) - m2)
        near = np.maximum(np.maximum(d[..., 0], d[..., 1]), d[..., 2]) < 2 * BORDER_TOLERANCE
        return np.count_nonzero(near, axis=1) >= BORDER_SHARE * n

    def run(lines: np.ndarray) -> int:
        """Uniform lines counted from the first one, looking at as few as needed (most frames
        have no border at all: one line tells)."""
        done, chunk = 0, 1
        while done < len(lines):
            flags = uniform(lines[done:done + chunk])
            nz = np.flatnonzero(~flags)
            if len(nz):
                return done + int(nz[0])
            done, chunk = done + len(flags), chunk * 4
        return len(lines)

    cols = a.transpose(1, 0, 2)
    top, bottom = run(a), run(a[::-1])
    left, right = run(cols), run(cols[::-1])
    if h - top - bottom < MIN_KEPT_FRACTION * h or w - left - right < MIN_KEPT_FRACTION * w:
        return image
    if top == bottom == left == right == 0:
        return image
    return image.crop((left, top, w - right, h - bottom))


def view_crops(image: "Image.Image", corner_fraction: float, centre_fraction: float
               ) -> list["Image.Image"]:
    """Extra views of a query frame, for copies that fill only part of it.

    Four corners at ``corner_fraction`` of each side (picture-in-picture copies sit in a corner
    of someone else's footage, where a whole-frame descriptor can't see them), then the centre
    at ``centre_fraction`` (logos, tickers and captions sit at the edges). 0 leaves a kind out.
    """
    w, h = image.size
    boxes = []
    if corner_fraction > 0:
        cw, ch = max(1, round(w * corner_fraction)), max(1, round(h * corner_fraction))
        boxes += [(0, 0, cw, ch), (w - cw, 0, w, ch), (0, h - ch, cw, h), (w - cw, h - ch, w, h)]
    if centre_fraction > 0:
        cw, ch = max(1, round(w * centre_fraction)), max(1, round(h * centre_fraction))
        x, y = (w - cw) // 2, (h - ch) // 2
        boxes.append((x, y, x + cw, y + ch))
    return [image.crop(b) for b in boxes]

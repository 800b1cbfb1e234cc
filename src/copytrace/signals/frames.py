"""Video frames for the visual signal: sampling and describing them (with a query's partial
views), the vectors a query searches, and overlap suppression between a pair's segments."""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from copytrace.errors import MediaError
from copytrace.types import Descriptors

if TYPE_CHECKING:
    from copytrace.media.video import VideoInfo

VIDEO_BATCH = 32


def describe_video_frames(
    path: str,
    encode: Callable[[list], np.ndarray],
    model: str,
    dims: int,
    fps: float = 1.0,
    max_side: int = 320,
    crop_borders: bool = True,
    view_fractions: tuple[float, float] = (0.0, 0.0),
    needs_views: Callable[[np.ndarray], np.ndarray] | None = None,
    announced_s: float | None = None,
    info: VideoInfo | None = None,
) -> tuple[Descriptors, float]:
    """Descriptors of a video's frames sampled at ``fps``, stamped with their real times.

    Letterbox bars and padding are cut before describing (re-uploads add them), and
    near-uniform frames (black leaders, fades) are left out of matching. ``view_fractions``
    (corners, centre; see ``view_crops``) adds partial views [N, V, D] to each frame, or only to
    the frames that ``needs_views(whole-frame vectors of a batch) -> bool mask`` picks (the
    others' views stay zero). Decoding streams: one batch of frames is in memory at a time. A
    truncated or corrupt file raises MediaError, so partial descriptors are never stored as
    complete. ``info``: the file's ``probe_video`` result when the caller has it (not probed
    again). Returns (descriptors, duration_s).
    """
    from copytrace.media.video import crop_uniform_borders, is_flat_frame, iter_frames, view_crops
    from copytrace.models.frame_cohort import frame_detail

    n_views = 4 * (view_fractions[0] > 0) + (view_fractions[1] > 0)
    times: list[float] = []
    detail: list[float] = []
    parts: list[np.ndarray] = []
    view_parts: list[np.ndarray] = []
    batch: list = []

    def flush() -> None:
        vectors = np.asarray(encode(batch), np.float32)
        parts.append(vectors)
        if n_views:
            views = np.zeros((len(batch), n_views, vectors.shape[1]), np.float32)
            pick = np.ones(len(batch), bool) if needs_views is None else needs_views(vectors)
            rows = np.flatnonzero(pick)
            if len(rows):
                crops = [c for i in rows for c in view_crops(batch[i], *view_fractions)]
                views[rows] = np.asarray(encode(crops), np.float32).reshape(
                    len(rows), n_views, -1)
            view_parts.append(views)
        batch.clear()

    step = 1.0 / fps
    last_t = None
    for t, image in iter_frames(path, fps=fps, max_side=max_side, info=info):
        last_t = t
        if crop_borders:
            image = crop_uniform_borders(image)
        if is_flat_frame(image):
            continue
        times.append(t)
        detail.append(frame_detail(image))
        batch.append(image)
        if len(batch) == VIDEO_BATCH:
            flush()
    if batch:
        flush()
    if last_t is None:
        raise MediaError(path, "no decodable video frames")
    duration_s = float(announced_s) if announced_s else last_t + step
    if duration_s <= last_t:  # a container announcing less than it holds (seen in MPEG-PS)
        duration_s = last_t + step
    starts = np.asarray(times, dtype=np.float64)
    # A frame stands for the time until the next sampled frame (or one step at most).
    ends = np.minimum(np.append(starts[1:], duration_s), starts + step)
    vectors = np.concatenate(parts) if parts else np.zeros((0, dims), np.float32)
    views = None
    if n_views:
        views = (np.concatenate(view_parts) if view_parts
                 else np.zeros((0, n_views, dims), np.float32))
    return Descriptors(vectors, starts, ends, model, "visual", views,
                       np.asarray(detail, np.float32)), duration_s


# A segment whose frames match this much better through partial views than whole is a
# partial-frame copy (picture-in-picture): its boundaries are refined through the views too.
VIEW_GAIN = 0.05


def found_through_views(seg, d: Descriptors, ref: Descriptors, whole: np.ndarray,
                         best: np.ndarray) -> bool:
    if d.views is None:
        return False
    rows = np.flatnonzero((d.starts_s >= seg.query_start_s) & (d.starts_s < seg.query_end_s))
    cols = np.flatnonzero((ref.starts_s >= seg.ref_start_s) & (ref.starts_s < seg.ref_end_s))
    if not len(rows) or not len(cols):
        return False
    gain = best[np.ix_(rows, cols)].max(axis=1) - whole[np.ix_(rows, cols)].max(axis=1)
    return float(gain.mean()) > VIEW_GAIN


def suppress_query_overlaps(segments: list, max_overlap: float) -> list:
    """Keep segments best score first, dropping one when more than ``max_overlap`` of its query
    span is already explained by kept segments of the same pair: a moment of the query shows
    one moment of a given reference, and repeated or static reference content otherwise yields
    extra boxes (each wrong on the reference axis)."""
    if max_overlap >= 1 or len(segments) < 2:
        return segments
    kept: list = []
    for s in sorted(segments, key=lambda s: -s.score):
        span = s.query_end_s - s.query_start_s
        covered = sum(max(0.0, min(s.query_end_s, k.query_end_s)
                          - max(s.query_start_s, k.query_start_s)) for k in kept)
        if span <= 0 or covered <= max_overlap * span:
            kept.append(s)
    return kept


def searched_vectors(d: Descriptors) -> tuple[np.ndarray, np.ndarray]:
    """The vectors to look up for a query (whole frames, then the views computed) and the frame
    each one belongs to."""
    frame_of = np.arange(len(d))
    if d.views is None or d.views.shape[1] == 0:
        return d.vectors, frame_of
    nz = np.abs(d.views).sum(axis=2) > 0  # [N, V]
    rows, cols = np.nonzero(nz)
    return (np.concatenate([d.vectors, d.views[rows, cols]]),
            np.concatenate([frame_of, rows]))

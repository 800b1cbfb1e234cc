"""Frame-accurate segment boundaries: decode only the neighbourhoods of a coarse boundary.

Coarse alignment at 1–2 samples per second puts a boundary within about one sampling interval.
For each end of a segment we decode the query and the reference at their native rate within
``window_s`` of it, describe those frames, and score each query frame by its best match among
the reference frames there. Copied frames score high, the footage around the copy scores low:
a two-level step fit on those scores finds the first (or last) copied query frame. The
reference boundary follows from the offsets of the copied frames' matches near that point,
so it stays right under a speed change.

Frames are embedded lazily, first every ``stride``-th frame, then every frame next to the step
found, which keeps the cost to a few dozen frames per boundary even at 60 fps.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Callable

import numpy as np

from copytrace.types import Segment

if TYPE_CHECKING:
    from PIL import Image

Embed = Callable[["list[Image.Image]"], np.ndarray]
# (start_s, end_s, max_side) -> every frame of a video with start_s <= time <= end_s at its
# native rate, as (time_s, RGB image): e.g. ``partial(media.video.read_frames_between, path)``.
FrameReader = Callable[[float, float, int], "list[tuple[float, Image.Image]]"]


@dataclass(frozen=True)
class RefineConfig:
    window_s: float = 1.5
    coarse_fps: float = 8.0
    min_contrast: float = 0.15
    max_side: int = 320
    offset_frames: int = 8

    def __post_init__(self) -> None:
        if self.window_s <= 0 or self.coarse_fps <= 0:
            raise ValueError("window_s and coarse_fps must be positive")
        if not 0 <= self.min_contrast <= 2:
            raise ValueError(
                f"min_contrast is a cosine difference in [0, 2], not {self.min_contrast}")
        if self.max_side < 16 or self.offset_frames < 1:
            raise ValueError("max_side >= 16 and offset_frames >= 1 please")


class _LazyFrames:
    """Decoded frames of one window whose descriptors are computed on first use."""

    def __init__(self, frames: list, embed: Embed) -> None:
        self.times = np.asarray([t for t, _ in frames], dtype=np.float64)
        self.images = [im for _, im in frames]
        self.embed = embed
        self.vectors: dict[int, np.ndarray] = {}

    def get(self, idx: np.ndarray) -> np.ndarray:
        todo = [int(i) for i in idx if int(i) not in self.vectors]
        if todo:
            v = np.asarray(self.embed([self.images[i] for i in todo]), dtype=np.float32)
            for i, row in zip(todo, v):
                self.vectors[i] = row
        if not len(idx):
            return np.zeros((0, 1))
        return np.stack([self.vectors[int(i)] for i in idx])


def _similarity(qv: np.ndarray, rv: np.ndarray) -> np.ndarray:
    """[n, D] or [n, V, D] query descriptors (V views of each frame) x [m, D] -> [n, m]: the
    best view's similarity."""
    s = qv @ rv.T
    return s.max(axis=1) if s.ndim == 3 else s


def _step_fit(scores: np.ndarray, copy_after: bool, min_contrast: float) -> int | None:
    """Index of the first copied element (copy_after) or one past the last (else).

    None when no step of at least ``min_contrast`` separates low from high scores.
    """
    n = len(scores)
    if n < 2:
        return None
    c = np.concatenate([[0.0], np.cumsum(scores)])
    c2 = np.concatenate([[0.0], np.cumsum(scores ** 2)])
    best, best_k = np.inf, None
    for k in range(1, n):
        m1, m2 = c[k] / k, (c[n] - c[k]) / (n - k)
        high_second = m2 > m1
        if high_second != copy_after or abs(m2 - m1) < min_contrast:
            continue
        sse = (c2[k] - k * m1 * m1) + (c2[n] - c2[k] - (n - k) * m2 * m2)
        if sse < best:
            best, best_k = sse, k
    return best_k


def _stride(times: np.ndarray, fps: float) -> int:
    if len(times) < 2:
        return 1
    native = 1.0 / max(np.median(np.diff(times)), 1e-6)
    return max(1, int(round(native / fps)))


def _refine_one(
    q: _LazyFrames, r: _LazyFrames, is_start: bool, coarse_q_s: float, coarse_r_s: float,
    speed: float, in_copy_sim: float, cfg: RefineConfig,
) -> tuple[float, float]:
    if len(q.times) == 0 or len(r.times) == 0:
        return coarse_q_s, coarse_r_s
    r_idx_coarse = np.arange(0, len(r.times), _stride(r.times, cfg.coarse_fps))
    rv = r.get(r_idx_coarse)

    def best(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        s = _similarity(q.get(idx), rv)
        return s.max(axis=1), r.times[r_idx_coarse[s.argmax(axis=1)]]

    idx = np.arange(0, len(q.times), _stride(q.times, cfg.coarse_fps))
    score, _ = best(idx)
    k = _step_fit(score, is_start, cfg.min_contrast)
    if k is None:
        # No step: the window is all copy (boundary at the window's edge) or none of it.
        if score.mean() < in_copy_sim - cfg.min_contrast:
            return coarse_q_s, coarse_r_s
        k = 0 if is_start else len(idx)
    else:
        # Second pass at the native rate between the coarse samples either side of the step.
        lo = idx[k - 1] if k > 0 else 0
        hi = idx[k] if k < len(idx) else len(q.times) - 1
        idx = np.union1d(idx, np.arange(lo, hi + 1))
        score, _ = best(idx)
        k = _step_fit(score, is_start, cfg.min_contrast)
        if k is None:
            return coarse_q_s, coarse_r_s
    if is_start:
        q_s = q.times[idx[k]] if k < len(idx) else coarse_q_s
        near = idx[k: k + cfg.offset_frames]
    else:
        nxt = idx[k] if k < len(idx) else None
        q_s = q.times[nxt] if nxt is not None else q.times[idx[k - 1]] + _frame_s(q.times)
        near = idx[max(0, k - cfg.offset_frames): k]
    if len(near) == 0:
        return float(q_s), coarse_r_s
    # Offset of the copy from its matches at the native reference rate around the boundary.
    # Only reference frames next to the coarse matches are described at the native rate.
    _, coarse_t = best(near)
    gap = 1.0 / cfg.coarse_fps + 1e-6
    r_near = np.flatnonzero((np.abs(r.times[:, None] - coarse_t[None, :]) <= gap).any(axis=1))
    s = _similarity(q.get(near), r.get(r_near))
    offsets = r.times[r_near[s.argmax(axis=1)]] - speed * q.times[near]
    r_s = speed * q_s + float(np.median(offsets))
    return float(q_s), float(r_s)


def _frame_s(times: np.ndarray) -> float:
    return float(np.median(np.diff(times))) if len(times) > 1 else 0.04


def refine_boundaries(
    segment: Segment,
    read_query: FrameReader,
    read_ref: FrameReader,
    embed: Embed,
    config: RefineConfig = RefineConfig(),
    query_embed: Embed | None = None,
) -> Segment:
    """Move a coarse segment's four boundaries to native-rate frame times.

    ``read_query`` / ``read_ref`` read the frames of the query's and the reference's videos
    around a boundary (``FrameReader``); this module never opens a file.
    ``embed`` maps RGB images to L2-normalised descriptors [N, D] (the frame encoder's
    ``encode_images``); it must be the descriptor the coarse alignment used, so similarities
    compare with ``segment.score``. ``query_embed`` (default ``embed``) describes the query's
    frames, as [N, D] or [N, V, D] for V views of each frame (the best view counts): a copy
    found through partial views (picture-in-picture) is only visible through them.
    """
    dq = segment.query_end_s - segment.query_start_s
    dr = segment.ref_end_s - segment.ref_start_s
    speed = dr / dq if dq > 0 and dr > 0 else 1.0
    w = config.window_s
    out = {}
    for is_start in (True, False):
        qb = segment.query_start_s if is_start else segment.query_end_s
        rb = segment.ref_start_s if is_start else segment.ref_end_s
        # Never look past the segment's middle: the other boundary is not ours.
        half = dq / 2
        q_lo, q_hi = (qb - w, qb + min(w, half)) if is_start else (qb - min(w, half), qb + w)
        r_lo, r_hi = rb - (w + 0.5) * speed, rb + (w + 0.5) * speed
        qf = _LazyFrames(read_query(max(0.0, q_lo), q_hi, config.max_side), query_embed or embed)
        rf = _LazyFrames(read_ref(max(0.0, r_lo), r_hi, config.max_side), embed)
        out[is_start] = _refine_one(qf, rf, is_start, qb, rb, speed, segment.score, config)
    (qs, rs), (qe, re_) = out[True], out[False]
    if not (qe > qs and re_ > rs):
        return segment
    return replace(segment, query_start_s=qs, query_end_s=qe, ref_start_s=max(0.0, rs),
                   ref_end_s=re_)

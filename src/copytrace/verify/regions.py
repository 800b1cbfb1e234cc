"""Query-side region proposals: where inside a larger picture a registered image may sit.

A copy pasted into another photo (picture-in-picture), framed by an app or a desktop
(screenshots), or captioned (memes) fills only part of the query, and a global descriptor of
the whole query is dominated by the rest. ``propose_regions`` returns boxes to describe and
search alongside the whole image:

- **rectangles found by edges**: Canny edges of the grey query (long side at most
  ``work_side``), long straight horizontal and vertical runs found by a morphological opening
  with a line element, their positions clustered; every pair of horizontal and pair of
  vertical lines spans a candidate box, kept when the edge map covers at least
  ``min_side_support`` of each of its four sides (a pasted picture or a window has a
  border there; a texture seldom has four);
- **a fixed grid**: windows of ``grid_scales`` of each side (one scale, 0.5, by default), at a
  stride of half a window, so a copy anywhere at about that size is mostly inside one window.

Edge boxes come first (best supported first), then the grid; near-duplicates (IoU above
``nms_iou``) and boxes covering almost the whole image are dropped. Boxes are integer
(x0, y0, x1, y1) in the query's own pixels, x1/y1 exclusive.

``box_in_query`` turns a verified match (the RANSAC transform of ``LocalVerifier``, query
region -> reference) into the box the reference occupies in the query: the place a registered
image was found.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class RegionConfig:
    """How many and which boxes. Defaults chosen on val of the train packages
    (``bench/regions_val.py --val``): at most 4 edge boxes and one grid scale, 0.5, keep val's
    µAP and recall at the threshold of 6 edge boxes plus grids 0.5 and 0.7 (within 0.01) with
    12 boxes per unregistered query instead of 16."""

    work_side: int = 384              # edge detection runs at this long side
    min_line: float = 0.15            # straight runs shorter than this share of the side are ignored
    edge_strength: float = 40.0       # Sobel response (grey levels x 4) of a border
    min_side_support: float = 0.6     # share of each side of a box the edge map must cover
    min_area: float = 0.04            # boxes smaller than this share of the image are ignored
    max_area: float = 0.85            # ... and larger ones are the whole image again
    max_aspect: float = 4.0           # long side / short side of a box
    max_edge_boxes: int = 4
    max_lines: int = 16               # the longest straight runs kept per direction
    grid_scales: tuple[float, ...] = (0.5,)
    nms_iou: float = 0.6

    def __post_init__(self) -> None:
        if not 64 <= self.work_side <= 2048:
            raise ValueError(f"work_side must be within 64..2048 pixels, got {self.work_side}")
        if not 0 < self.min_area < self.max_area <= 1:
            raise ValueError(f"need 0 < min_area < max_area <= 1, got {self.min_area}, {self.max_area}")
        if not 0 < self.min_side_support <= 1 or not 0 < self.min_line < 1:
            raise ValueError("min_side_support must be in (0, 1] and min_line in (0, 1)")
        if any(not 0 < s < 1 for s in self.grid_scales):
            raise ValueError(f"grid scales are shares of the side, within (0, 1): {self.grid_scales}")
        if self.max_edge_boxes < 0 or not 0 < self.nms_iou <= 1 or self.max_aspect < 1:
            raise ValueError("need max_edge_boxes >= 0, 0 < nms_iou <= 1, max_aspect >= 1")


def _grey_array(image) -> np.ndarray:
    if isinstance(image, np.ndarray):
        a = image
        if a.ndim == 3:
            a = (a[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32))
        return np.ascontiguousarray(a.astype(np.uint8))
    return np.asarray(image.convert("L"))


def _peaks(length: np.ndarray, gap: int, n: int) -> list[int]:
    """Positions of the ``n`` longest straight runs, no two within ``gap`` (1-D NMS)."""
    order = np.argsort(-length, kind="stable")
    out: list[int] = []
    for p in order.tolist():
        if length[p] <= 0 or len(out) >= n:
            break
        if all(abs(p - q) > gap for q in out):
            out.append(p)
    return out


def iou(a: Box, b: Box) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def edge_boxes(image, cfg: RegionConfig = RegionConfig()) -> list[tuple[Box, float]]:
    """Rectangles bounded by long straight edges, as ((x0, y0, x1, y1), support), best first.

    Support of a side is the share of it covered by straight edge runs (Canny edges opened with
    a line element of ``min_line`` of the side), so the texture inside a photograph, whose
    edges are short and curved, does not bound boxes; the image's own border counts as fully
    supported (a pasted picture may touch it), but a box needs two sides of its own.
    """
    import cv2

    grey = _grey_array(image)
    h0, w0 = grey.shape
    k = min(1.0, cfg.work_side / max(h0, w0))
    if k < 1:
        grey = cv2.resize(grey, (max(1, round(w0 * k)), max(1, round(h0 * k))), interpolation=cv2.INTER_AREA)
    h, w = grey.shape
    if min(h, w) < 32:
        return []
    lw, lh = max(8, int(cfg.min_line * w)), max(8, int(cfg.min_line * h))
    # Oriented gradient edges (no thinning, which breaks a border into pieces one row apart):
    # a horizontal border has a strong vertical gradient and a weak horizontal one, and vice
    # versa; texture edges point every way and seldom line up. Rows are merged with their
    # neighbours and gaps of a few pixels closed before the opening keeps long runs only.
    g = cv2.GaussianBlur(grey, (3, 3), 0)
    gx = np.abs(cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3))
    gy = np.abs(cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3))
    h_edges = ((gy > cfg.edge_strength) & (gy > 2 * gx)).astype(np.uint8)
    v_edges = ((gx > cfg.edge_strength) & (gx > 2 * gy)).astype(np.uint8)
    h_edges = cv2.dilate(h_edges, np.ones((3, 1), np.uint8))
    v_edges = cv2.dilate(v_edges, np.ones((1, 3), np.uint8))
    horiz = cv2.morphologyEx(cv2.morphologyEx(h_edges, cv2.MORPH_CLOSE, np.ones((1, 7), np.uint8)),
                             cv2.MORPH_OPEN, np.ones((1, lw), np.uint8)) > 0
    vert = cv2.morphologyEx(cv2.morphologyEx(v_edges, cv2.MORPH_CLOSE, np.ones((7, 1), np.uint8)),
                            cv2.MORPH_OPEN, np.ones((lh, 1), np.uint8)) > 0
    gap = max(3, min(h, w) // 60)
    row_len, col_len = horiz.sum(axis=1), vert.sum(axis=0)
    ys = _peaks(row_len, gap, cfg.max_lines)
    xs = _peaks(col_len, gap, cfg.max_lines)
    ys = sorted(set(ys) | {0, h - 1})
    xs = sorted(set(xs) | {0, w - 1})
    # Cumulative counts of straight runs along rows / columns (±1 pixel): a side's support in O(1).
    hb, vb = horiz, vert
    row_c = np.concatenate([np.zeros((h, 1), np.int32), np.cumsum(hb, axis=1, dtype=np.int32)], axis=1)
    col_c = np.concatenate([np.zeros((1, w), np.int32), np.cumsum(vb, axis=0, dtype=np.int32)], axis=0)
    Y, X = np.array(ys), np.array(xs)
    yi, yj = np.triu_indices(len(Y), 1)
    xi, xj = np.triu_indices(len(X), 1)
    y0, y1, x0, x1 = Y[yi], Y[yj], X[xi], X[xj]
    # hs[line, xpair]: share of the segment x0..x1 on row `line` covered by straight runs.
    hs = (row_c[Y][:, x1 + 1] - row_c[Y][:, x0]) / np.maximum(1, x1 - x0 + 1)[None, :]
    vs = (col_c[y1 + 1][:, X] - col_c[y0][:, X]).T / np.maximum(1, y1 - y0 + 1)[None, :]
    hs[(Y <= 0) | (Y >= h - 1)] = 1.0
    vs[(X <= 0) | (X >= w - 1)] = 1.0
    top, bottom = hs[yi], hs[yj]             # [ypairs, xpairs]
    left, right = vs[xi].T, vs[xj].T         # [ypairs, xpairs]
    support = np.minimum(np.minimum(top, bottom), np.minimum(left, right))
    own = (((y0 > 0)[:, None].astype(int) + (y1 < h - 1)[:, None]) +
           ((x0 > 0)[None, :].astype(int) + (x1 < w - 1)[None, :]))
    bw, bh = (x1 - x0)[None, :], (y1 - y0)[:, None]
    area = bw * bh / float(h * w)
    aspect = np.maximum(bw / np.maximum(bh, 1), bh / np.maximum(bw, 1))
    ok = ((support >= cfg.min_side_support) & (own >= 2) & (area >= cfg.min_area)
          & (area <= cfg.max_area) & (aspect <= cfg.max_aspect))
    cand = np.argwhere(ok)
    if cand.size == 0:
        return []
    # Boxes bounded by more borders of their own first (a pasted picture has four, one
    # against the frame has fewer), then by support, then larger.
    ca, cb = cand[:, 0], cand[:, 1]
    order = np.lexsort((-area[ca, cb], -support[ca, cb], -own[ca, cb]))
    inv = 1.0 / k
    out: list[tuple[Box, float]] = []
    for a, b in cand[order]:
        box = (int(x0[b] * inv), int(y0[a] * inv), min(w0, round((x1[b] + 1) * inv)),
               min(h0, round((y1[a] + 1) * inv)))
        if all(iou(box, o) <= cfg.nms_iou for o, _ in out):
            out.append((box, float(support[a, b])))
        if len(out) >= cfg.max_edge_boxes:
            break
    return out


def grid_boxes(size: tuple[int, int], scales: tuple[float, ...]) -> list[Box]:
    """Windows of each scale (share of width and of height), stride half a window, covering
    the image edge to edge."""
    w, h = size
    out = []
    for s in scales:
        bw, bh = max(1, round(w * s)), max(1, round(h * s))
        nx = max(1, int(np.ceil((w - bw) / (bw / 2))) + 1)
        ny = max(1, int(np.ceil((h - bh) / (bh / 2))) + 1)
        for yi in np.linspace(0, h - bh, ny):
            for xi in np.linspace(0, w - bw, nx):
                out.append((round(xi), round(yi), round(xi) + bw, round(yi) + bh))
    return out


def propose_regions(image, cfg: RegionConfig = RegionConfig()) -> list[Box]:
    """Boxes worth describing on their own: edge-bounded rectangles, then the grid."""
    grey = _grey_array(image)
    h, w = grey.shape
    boxes: list[Box] = [b for b, _ in edge_boxes(grey, cfg)]
    for b in grid_boxes((w, h), cfg.grid_scales):
        if all(iou(b, o) <= cfg.nms_iou for o in boxes):
            boxes.append(b)
    whole = (0, 0, w, h)
    return [b for b in boxes if iou(b, whole) < cfg.max_area + 0.1 and b[2] - b[0] >= 16 and b[3] - b[1] >= 16]


def box_in_query(transform: np.ndarray, ref_size: tuple[int, int], query_work_size: tuple[int, int],
                 query_size: tuple[int, int], mirrored: bool = False,
                 offset: tuple[int, int] = (0, 0), crop_size: tuple[int, int] | None = None) -> Box | None:
    """Where the reference sits in the query, from a verifier transform (query -> reference,
    both at the verifier's working sizes). ``query_work_size`` is the working size of the
    image that was verified (the whole query or a crop of it of ``crop_size`` at ``offset``);
    ``query_size`` the query's full size, to clip. None when the transform is not invertible."""
    m = np.asarray(transform, np.float64)
    m3 = np.vstack([m, [0.0, 0.0, 1.0]]) if m.shape == (2, 3) else m
    try:
        inv = np.linalg.inv(m3)
    except np.linalg.LinAlgError:
        return None
    rw, rh = ref_size
    corners = np.array([[0, 0, 1], [rw, 0, 1], [rw, rh, 1], [0, rh, 1]], np.float64).T
    p = inv @ corners
    if np.any(np.abs(p[2]) < 1e-9):
        return None
    xy = p[:2] / p[2]
    qw, qh = query_work_size
    if mirrored:
        xy[0] = qw - xy[0]
    cw, ch = crop_size if crop_size is not None else query_size
    xy[0] *= cw / qw
    xy[1] *= ch / qh
    xy[0] += offset[0]
    xy[1] += offset[1]
    W, H = query_size
    x0, x1 = float(np.clip(xy[0].min(), 0, W)), float(np.clip(xy[0].max(), 0, W))
    y0, y1 = float(np.clip(xy[1].min(), 0, H)), float(np.clip(xy[1].max(), 0, H))
    if x1 - x0 < 1 or y1 - y0 < 1:
        return None
    return (round(x0), round(y0), round(x1), round(y1))


def crop_regions(image, boxes: list[Box]):
    """PIL crops of ``image`` for ``boxes`` (what gets described and verified)."""
    return [image.crop(b) for b in boxes]


def merge_region_hits(whole_sims: np.ndarray, whole_idx: np.ndarray, region_sims: np.ndarray,
                      region_idx: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One query's candidates from its whole image and its regions: per reference the best
    cosine and where it came from.

    ``whole_sims``/``whole_idx`` [k0]: the whole image's top hits; ``region_sims``/
    ``region_idx`` [R, k1]: each region's. Returns (sims [<=k], idx [<=k], region [<=k]),
    best first, ``region`` = -1 where the whole image gave the best cosine, else the row of
    the region that did. Ties go to the whole image.
    """
    best: dict[int, tuple[float, int]] = {}
    for s, j in zip(np.asarray(whole_sims).tolist(), np.asarray(whole_idx).tolist()):
        if j >= 0 and (j not in best or s > best[j][0]):
            best[j] = (s, -1)
    for r in range(np.asarray(region_idx).shape[0] if np.size(region_idx) else 0):
        for s, j in zip(region_sims[r].tolist(), region_idx[r].tolist()):
            if j >= 0 and (j not in best or s > best[j][0]):
                best[j] = (s, r)
    ranked = sorted(best.items(), key=lambda kv: (-kv[1][0], kv[1][1] != -1, kv[0]))[:k]
    sims = np.array([v[0] for _, v in ranked], np.float32)
    idx = np.array([j for j, _ in ranked], np.int64)
    reg = np.array([v[1] for _, v in ranked], np.int64)
    return sims, idx, reg

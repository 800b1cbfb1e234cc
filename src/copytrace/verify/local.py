"""Local-feature geometric verification: keypoints, ratio-test matching, RANSAC.

A copy keeps the geometry of its source: many keypoint matches agree on one transform (crop,
scale, rotation, paste into another picture). Two different photos of a similar subject (aligned
face chips of one person) are globally close but share few such matches. OpenCV is imported only
when a verifier is built.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from copytrace.verify.config import VerifyConfig
from copytrace.verify.score import verified_score


def _cv2():
    try:
        import cv2
    except ModuleNotFoundError as e:
        raise ModuleNotFoundError(
            "local verification needs OpenCV: pip install opencv-python-headless"
        ) from e
    return cv2


@dataclass(frozen=True)
class LocalFeatures:
    """Keypoints of one image at the verifier's working size.

    ``points`` float32 [N, 2] (x, y) in pixels of the resized image of ``size`` (w, h);
    ``mirrored`` holds the features of the horizontally flipped image (queries only).
    """

    points: np.ndarray
    descriptors: np.ndarray
    size: tuple[int, int]
    mirrored: LocalFeatures | None = None


@dataclass(frozen=True)
class VerifyResult:
    """``inliers``: matches consistent with ``transform`` (2x3 or 3x3, query -> reference pixels
    at the working size, None when no model was found); ``inlier_ratio`` = inliers / tentative
    matches; ``mirrored``: the transform maps the flipped query."""

    inliers: int
    inlier_ratio: float
    transform: np.ndarray | None
    matches: int = 0
    mirrored: bool = False


NO_MATCH = VerifyResult(0, 0.0, None)


class LocalVerifier:
    """``verify(query, ref) -> VerifyResult``; ``rescore(query, candidates) -> scores``."""

    def __init__(self, cfg: VerifyConfig | None = None):
        cv2 = _cv2()
        self.cfg = cfg = cfg if cfg is not None else VerifyConfig()
        self._cv2 = cv2
        if cfg.detector == "sift":
            self._detector = cv2.SIFT_create(nfeatures=cfg.max_features)
            self._matcher = cv2.BFMatcher(cv2.NORM_L2)
        else:
            self._detector = cv2.ORB_create(nfeatures=cfg.max_features)
            self._matcher = cv2.BFMatcher(cv2.NORM_HAMMING)

    # --- features ---------------------------------------------------------------------------

    def _grey(self, image) -> np.ndarray:
        """Any image -> uint8 grey array with its long side at most ``max_side``."""
        cv2 = self._cv2
        if isinstance(image, (str, os.PathLike)):
            from copytrace.media.image import load_image

            image = load_image(str(image), draft_size=self.cfg.max_side)
        if not isinstance(image, np.ndarray):  # PIL
            image = np.asarray(image.convert("L"))
        elif image.ndim == 3:
            image = cv2.cvtColor(np.ascontiguousarray(image[..., :3]), cv2.COLOR_RGB2GRAY)
        h, w = image.shape[:2]
        k = self.cfg.max_side / max(h, w)
        if k < 1:
            image = cv2.resize(image, (max(1, round(w * k)), max(1, round(h * k))),
                               interpolation=cv2.INTER_AREA)
        return np.ascontiguousarray(image, dtype=np.uint8)

    def _detect(self, grey: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        kps, desc = self._detector.detectAndCompute(grey, None)
        if desc is None or not kps:
            d = 128 if self.cfg.detector == "sift" else 32
            return np.zeros((0, 2), np.float32), np.zeros((0, d), np.float32 if d == 128 else np.uint8)
        pts = np.array([k.pt for k in kps], np.float32)
        if self.cfg.detector == "sift":  # RootSIFT: Hellinger kernel, better ratio-test matches
            desc = desc / (np.abs(desc).sum(axis=1, keepdims=True) + 1e-7)
            desc = np.sqrt(desc).astype(np.float32)
        return pts, desc

    def features(self, image, query: bool = False) -> LocalFeatures:
        """Features of ``image`` (PIL, RGB/grey array or path). ``query=True`` adds the mirror
        when the config asks for it, so flipped copies verify too."""
        grey = self._grey(image)
        pts, desc = self._detect(grey)
        size = (grey.shape[1], grey.shape[0])
        mirrored = None
        if query and self.cfg.mirror:
            mpts, mdesc = self._detect(np.ascontiguousarray(grey[:, ::-1]))
            mirrored = LocalFeatures(mpts, mdesc, size)
        return LocalFeatures(pts, desc, size, mirrored)

    # --- verification -----------------------------------------------------------------------

    def _match(self, q: LocalFeatures, r: LocalFeatures) -> tuple[np.ndarray, np.ndarray]:
        """Ratio-test matches, one per reference keypoint (the closest), as point arrays."""
        if len(q.points) < 2 or len(r.points) < 2:
            return np.zeros((0, 2), np.float32), np.zeros((0, 2), np.float32)
        pairs = self._matcher.knnMatch(q.descriptors, r.descriptors, k=2)
        best: dict[int, tuple[float, int]] = {}
        for m in pairs:
            if len(m) == 2 and m[0].distance < self.cfg.ratio * m[1].distance:
                # Many query points on one reference point would count one feature many times.
                t = m[0].trainIdx
                if t not in best or m[0].distance < best[t][0]:
                    best[t] = (m[0].distance, m[0].queryIdx)
        if not best:
            return np.zeros((0, 2), np.float32), np.zeros((0, 2), np.float32)
        ti = np.fromiter(best.keys(), np.int64)
        qi = np.array([v[1] for v in best.values()], np.int64)
        return q.points[qi], r.points[ti]

    def _fit(self, src: np.ndarray, dst: np.ndarray, ref_size: tuple[int, int]):
        cv2, cfg = self._cv2, self.cfg
        thr = cfg.reproj_px * max(ref_size)
        if cfg.model == "similarity":
            m, mask = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=thr,
                                                  maxIters=cfg.ransac_iters, confidence=0.995)
        elif cfg.model == "affine":
            m, mask = cv2.estimateAffine2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=thr,
                                           maxIters=cfg.ransac_iters, confidence=0.995)
        else:
            m, mask = cv2.findHomography(src, dst, cv2.RANSAC, thr, maxIters=cfg.ransac_iters,
                                         confidence=0.995)
        if m is None or mask is None or not self._plausible(m):
            return None, 0
        return m, int(mask.sum())

    def _plausible(self, m: np.ndarray) -> bool:
        """Reject collapsing or exploding maps: RANSAC's favourite way to fit junk."""
        det = float(np.linalg.det(m[:2, :2]))
        lim = self.cfg.max_scale ** 2
        return np.isfinite(det) and 1 / lim <= abs(det) <= lim

    def _verify_one(self, q: LocalFeatures, r: LocalFeatures) -> VerifyResult:
        src, dst = self._match(q, r)
        n = len(src)
        if n < self.cfg.min_matches:
            return VerifyResult(0, 0.0, None, n)
        m, inl = self._fit(src, dst, r.size)
        return VerifyResult(inl, inl / n, m, n)

    def verify_features(self, q: LocalFeatures, r: LocalFeatures) -> VerifyResult:
        res = self._verify_one(q, r)
        if q.mirrored is not None:
            flipped = self._verify_one(q.mirrored, r)
            if flipped.inliers > res.inliers:
                return VerifyResult(flipped.inliers, flipped.inlier_ratio, flipped.transform,
                                    flipped.matches, True)
        return res

    def verify(self, query_image, ref_image) -> VerifyResult:
        """Geometric verification of one (query, reference) pair of images or paths."""
        return self.verify_features(self.features(query_image, query=True), self.features(ref_image))

    def rescore(self, query_image, candidates: Sequence[tuple[object, float]]) -> list[float]:
        """Combined scores for ``[(reference image | path | LocalFeatures, cosine), ...]``.

        The query's features are computed once; pass a reference's LocalFeatures (cached by
        the caller) to skip its detection.
        """
        q = query_image if isinstance(query_image, LocalFeatures) else self.features(query_image, query=True)
        out = []
        for ref, cosine in candidates:
            r = ref if isinstance(ref, LocalFeatures) else self.features(ref)
            out.append(verified_score(cosine, self.verify_features(q, r).inliers, self.cfg))
        return out

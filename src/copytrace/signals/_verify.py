"""Still-image queries' second stage: local features + RANSAC on the top candidates.

The combined similarity (cosine plus a bonus for geometrically consistent inliers; see
``copytrace.verify``) is calibrated on validation data with its own threshold, so every image
candidate is re-scored against it, verified or not. Only candidates whose bonus could lift them
over the threshold are verified, so innocent queries whose candidates are all far below it cost
nothing extra. The threshold and the bonus are the image model's (its registry entry's
``verify_threshold_similarity``, ``verify_bonus`` and ``verify_score_slope``).
"""
from __future__ import annotations

import logging
from dataclasses import replace

from copytrace.errors import MediaError
from copytrace.signals.base import remember
from copytrace.types import Match

log = logging.getLogger(__name__)

REF_FEATURES_CACHED = 512  # registered images whose local features are kept between queries


def verified_match_score(spec, combined: float, threshold: float) -> float:
    """``sigmoid(slope * (combined - threshold))``: 0.5 at the verifier's threshold; the slope
    is the registry entry's ``verify_score_slope`` (fitted on val top-1s), else its
    ``score_slope``."""
    import math

    slope = spec.verify_score_slope if spec.verify_score_slope is not None else spec.score_slope
    z = slope * (float(combined) - float(threshold))
    return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))


class ImageVerifier:
    def __init__(self, spec, image_limits, verify_top: int) -> None:
        from copytrace.verify import LocalVerifier, VerifyConfig

        self.spec = spec
        self.image_limits = image_limits
        self.verify_top = verify_top
        self.local = LocalVerifier(VerifyConfig(bonus=spec.verify_bonus,
                                                threshold_score=spec.verify_threshold_similarity))
        self._ref_features: dict[str, object] = {}  # work id -> LocalFeatures

    def rescore(self, query_path: str, matches: list[Match],
                regions: dict[str, tuple[int, int, int, int]] | None = None,
                whole_similarity: dict[str, float] | None = None,
                cache: dict | None = None) -> list[Match]:
        """``matches`` (best cosine first) scored on the combined similarity; without the
        query's file (``query_path`` empty) none is verified, each is scored on its cosine.

        ``regions`` maps a work id to the query box (``copytrace.verify.regions``) whose
        descriptor brought it (``m.similarity`` is then the box's cosine): that box is verified
        too. A box's cosine counts only when the box's own verification gives it a bonus
        (more than ``min_inliers``); otherwise the match is scored as the whole image scores it,
        on ``whole_similarity[work_id]``, the whole query's cosine: a box is a smaller, plainer
        picture than the query, and its cosine with an unrelated reference runs higher. A
        verified match reports ``box``, where the reference sits in the query. ``cache``: one
        query's decoded image ("image") and local features ("whole", and per box), kept
        between calls for that query."""
        from copytrace.media.image import load_image
        from copytrace.verify import verified_score
        from copytrace.verify.regions import box_in_query

        spec, cfg = self.spec, self.local.cfg
        regions = regions or {}
        rescored = []
        cache = {} if cache is None else cache
        for rank, m in enumerate(matches):
            if m.media_type != "image":
                rescored.append(m)  # a frame of a video: scored by its cosine, as for video queries
                continue
            rbox = regions.get(m.work_id)
            whole_cos = (whole_similarity or {}).get(m.work_id, m.similarity)
            # Unverified, a box's cosine does not count (see above).
            combined, box = (m.similarity if rbox is None else whole_cos), None
            if (query_path and rank < self.verify_top
                    and m.similarity >= cfg.threshold_score - cfg.bonus):
                ref = self._features_of(m)
                if ref is not None:
                    if "image" not in cache:
                        cache["image"] = load_image(query_path, self.image_limits)
                    image = cache["image"]
                    if "whole" not in cache:
                        cache["whole"] = self.local.features(image, query=True)
                    query_features = cache["whole"]
                    whole = self.local.verify_features(query_features, ref)
                    res, qf, used = whole, query_features, None
                    combined = float(verified_score(whole_cos, whole.inliers, cfg))
                    if rbox is not None:
                        if rbox not in cache:
                            cache[rbox] = self.local.features(image.crop(rbox), query=True)
                        cf = cache[rbox]
                        by_box = self.local.verify_features(cf, ref)
                        if by_box.inliers > cfg.min_inliers:
                            boxed = float(verified_score(m.similarity, max(by_box.inliers, whole.inliers), cfg))
                            if boxed > combined:
                                combined = boxed
                                if by_box.inliers >= whole.inliers:
                                    res, qf, used = by_box, cf, rbox
                    rbox = used
                    if res.transform is not None and res.inliers > cfg.min_inliers:
                        crop = None if rbox is None else (rbox[2] - rbox[0], rbox[3] - rbox[1])
                        box = box_in_query(res.transform, ref.size, qf.size, image.size, res.mirrored,
                                           offset=(0, 0) if rbox is None else rbox[:2], crop_size=crop)
            score = verified_match_score(spec, combined, cfg.threshold_score)
            rescored.append(replace(m, score=float(score), similarity=float(combined), box=box))
        return rescored

    def _features_of(self, m: Match):
        """Local features of a registered image, or None when its file is gone or unreadable."""
        from copytrace.media.image import load_image

        if m.work_id in self._ref_features:
            return self._ref_features[m.work_id]
        try:
            image = load_image(m.path, self.image_limits)
        except MediaError as e:
            log.warning("verification skipped for %s: %s", m.work_id, e)
            return None
        return remember(self._ref_features, m.work_id, lambda: self.local.features(image),
                        REF_FEATURES_CACHED)

"""How local verification runs and how its evidence joins the global cosine."""
from __future__ import annotations

from dataclasses import dataclass

DETECTORS = ("sift", "orb")
MODELS = ("similarity", "affine", "homography")


@dataclass(frozen=True)
class VerifyConfig:
    """Keypoints, matching, RANSAC and the score combination.

    The combination ``score = cosine + bonus * clip((inliers - min_inliers) /
    (full_inliers - min_inliers), 0, 1)`` is monotone in both inputs: a pair with no geometric
    support keeps its cosine, a pair with ``full_inliers`` or more gains ``bonus``. Defaults were
    chosen on the validation set of train-package images (bench/verify_val.py, docs/descriptor.md
    "Local verification"), never on the eval benchmark.
    """

    detector: str = "sift"
    max_side: int = 512            # images are resized so the longer side is at most this
    max_features: int = 1000
    ratio: float = 0.8             # Lowe's ratio test on the two nearest descriptors
    model: str = "similarity"      # RANSAC model: similarity (4 DoF), affine (6), homography (8)
    reproj_px: float = 0.012       # RANSAC inlier distance, as a fraction of the reference's long side
    ransac_iters: int = 2000
    max_scale: float = 8.0         # a transform shrinking/enlarging more than this is not a copy
    min_matches: int = 5           # fewer tentative matches: no RANSAC, zero inliers
    mirror: bool = True            # also try the horizontally mirrored query
    min_inliers: int = 3           # the combination gives nothing at or below this
    full_inliers: int = 43         # ... and the whole bonus from here on
    bonus: float = 0.5
    # Decision threshold on the combined score for ct-image-r18s 1.0.0 (precision 0.99 on the
    # val set); another descriptor needs its own (bench/verify_val.py).
    threshold_score: float = 0.987

    def __post_init__(self) -> None:
        if self.detector not in DETECTORS:
            raise ValueError(f"detector must be one of {DETECTORS}, got {self.detector!r}")
        if self.model not in MODELS:
            raise ValueError(f"model must be one of {MODELS}, got {self.model!r}")
        if not 64 <= self.max_side <= 4096:
            raise ValueError(f"max_side must be within 64..4096 (pixels), got {self.max_side}")
        if self.max_features < 16:
            raise ValueError(f"max_features must be >= 16, got {self.max_features}")
        if not 0 < self.ratio < 1:
            raise ValueError(f"ratio must be within (0, 1) (Lowe uses 0.7..0.8), got {self.ratio}")
        if not 0 < self.reproj_px < 0.2:
            raise ValueError(f"reproj_px is a fraction of the image side: within (0, 0.2), got {self.reproj_px}")
        if self.ransac_iters < 10:
            raise ValueError(f"ransac_iters must be >= 10, got {self.ransac_iters}")
        if self.max_scale <= 1:
            raise ValueError(f"max_scale must be > 1, got {self.max_scale}")
        need = {"similarity": 2, "affine": 3, "homography": 4}[self.model]
        if self.min_matches < need:
            raise ValueError(f"a {self.model} needs min_matches >= {need}, got {self.min_matches}")
        if not 0 <= self.min_inliers < self.full_inliers:
            raise ValueError(f"need 0 <= min_inliers < full_inliers, got {self.min_inliers}, {self.full_inliers}")
        if self.bonus < 0:
            raise ValueError(f"bonus must be >= 0 (a penalty would break monotonicity), got {self.bonus}")

"""Join the global cosine with the local-verification inlier count into one score."""
from __future__ import annotations

import numpy as np

from copytrace.verify.config import VerifyConfig


def verified_score(cosine, inliers, cfg: VerifyConfig):
    """``cosine + bonus * clip((inliers - min_inliers) / (full_inliers - min_inliers), 0, 1)``.

    Monotone in both inputs, so a verified pair never ranks below the same pair unverified;
    works on scalars and numpy arrays alike.
    """
    support = np.clip((np.asarray(inliers, np.float64) - cfg.min_inliers)
                      / (cfg.full_inliers - cfg.min_inliers), 0.0, 1.0)
    out = np.asarray(cosine, np.float64) + cfg.bonus * support
    return float(out) if out.ndim == 0 else out

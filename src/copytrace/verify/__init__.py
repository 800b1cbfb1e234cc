"""Optional second stage: re-score top candidates by local-feature geometric verification.

Uses OpenCV (a core dependency since the engine verifies by default); importing this package
does not import OpenCV.
"""
from copytrace.verify.config import VerifyConfig
from copytrace.verify.local import LocalFeatures, LocalVerifier, VerifyResult
from copytrace.verify.score import verified_score

__all__ = ["LocalFeatures", "LocalVerifier", "VerifyConfig", "VerifyResult", "verified_score"]

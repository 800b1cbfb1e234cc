"""Verify the top-k candidates of many queries (benchmarks): inlier counts and timings."""
from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from copytrace.verify.local import LocalFeatures, LocalVerifier

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TopkVerification:
    """``inliers`` int [Nq, k] (-1 where not verified: beyond ``top``); ``query_s`` float [Nq]:
    wall seconds per query for its own features (plus mirror) and the matching against its
    candidates, two queries running at once; reference features are computed first (an engine
    would store them at registration) and timed apart in ``ref_features_s``."""

    inliers: np.ndarray
    query_s: np.ndarray
    ref_features_s: float


def verify_topk(verifier: LocalVerifier, query_paths: list[str], ref_paths: list[str],
                idx: np.ndarray, top: int, workers: int = 2) -> TopkVerification:
    """Verify query i against references ``idx[i, :top]``. OpenCV releases the GIL in
    detection and matching, so threads use both cores."""
    nq, k = idx.shape
    top = min(top, k)
    inliers = np.full((nq, k), -1, np.int32)
    query_s = np.zeros(nq)
    # Reference features are what an engine would compute once at registration: time them apart.
    needed = sorted({int(j) for j in idx[:, :top].ravel()})
    t0 = time.perf_counter()
    with ThreadPoolExecutor(workers) as ex:
        feats = list(ex.map(lambda j: verifier.features(ref_paths[j]), needed))
    ref_cache: dict[int, LocalFeatures] = dict(zip(needed, feats))
    ref_features_s = time.perf_counter() - t0
    log.info("reference features: %d images in %.1f s", len(needed), ref_features_s)

    def one(i: int) -> tuple[int, list[int], float]:
        t = time.perf_counter()
        q = verifier.features(query_paths[i], query=True)
        counts = [verifier.verify_features(q, ref_cache[int(j)]).inliers for j in idx[i, :top]]
        return i, counts, time.perf_counter() - t

    with ThreadPoolExecutor(workers) as ex:
        for n, (i, counts, dt) in enumerate(ex.map(one, range(nq))):
            inliers[i, :top] = counts
            query_s[i] = dt
            if n % 200 == 0:
                log.info("verified %d / %d queries", n + 1, nq)
    return TopkVerification(inliers, query_s, ref_features_s)

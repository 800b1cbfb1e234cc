"""Throughput measurement shared by ``copytrace quantize`` and bench/speed.py (numpy only).

Paired timing: the FP32 and INT8 encoders are called alternately, so load from other processes
on a shared machine slows both alike and the ratio stays meaningful.
"""
from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import numpy as np


def paired_throughput(
    runs: dict[str, Callable[[np.ndarray], object]], batch: int, size: tuple[int, int],
    min_s: float = 3.0, min_rounds: int = 5, channels: int = 3,
) -> dict[str, float]:
    """Median descriptors/s of each callable on one random batch, timed alternately."""
    x = np.random.default_rng(0).standard_normal((batch, channels, *size)).astype(np.float32)
    for f in runs.values():  # warm-up (graph compilation, caches)
        f(x)
        f(x)
    times: dict[str, list[float]] = {k: [] for k in runs}
    t_end = time.perf_counter() + min_s
    rounds = 0
    while rounds < min_rounds or time.perf_counter() < t_end:
        for k, f in runs.items():
            t0 = time.perf_counter()
            f(x)
            times[k].append(time.perf_counter() - t0)
        rounds += 1
    return {k: batch / statistics.median(v) for k, v in times.items()}

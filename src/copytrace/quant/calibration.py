"""Activation calibration: max, percentile, MSE and entropy (KL) from |x| histograms.

Calibration takes a callback ``forward_loop(model) -> None`` that runs calibration batches
through the model, so this module never depends on a data-loader type. Histogram methods run
the loop twice (first the range, then a fixed-range histogram), which keeps the histogram
exact instead of re-binning on the fly.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from copytrace.quant.config import CALIBRATION_METHODS, QuantConfig
from copytrace.quant.quantizer import QMAX, TensorQuantizer


def _activation_quantizers(model: nn.Module) -> list[TensorQuantizer]:
    return [m for m in model.modules() if isinstance(m, TensorQuantizer) and m.axis is None]


@torch.no_grad()
def collect_statistics(model: nn.Module, forward_loop: Callable[[nn.Module], None]) -> None:
    """Fill every activation quantizer's running max and |x| histogram."""
    qs = _activation_quantizers(model)
    was_training = model.training
    model.eval()
    enabled = [q.enabled for q in qs]
    try:
        for mode in ("collect_max", "collect_hist"):
            for q in qs:
                q.enabled, q.mode = True, mode
                if mode == "collect_max":
                    q.stat_max, q.hist = 0.0, None
            forward_loop(model)
    finally:
        for q, e in zip(qs, enabled):
            q.enabled, q.mode = e, "quant"
        model.train(was_training)
    missing = [q for q in qs if q.hist is None]
    if missing:
        raise RuntimeError(f"{len(missing)} quantizers saw no data: does forward_loop run the model?")


def load_amax(model: nn.Module, method: str, percentile: float = 99.99) -> None:
    """Set every activation quantizer's amax from its collected statistics."""
    if method not in CALIBRATION_METHODS:
        raise ValueError(f"calibration method {method!r} unknown: pick one of {CALIBRATION_METHODS}")
    for q in _activation_quantizers(model):
        if q.hist is None:
            raise RuntimeError("no statistics collected: run collect_statistics first")
        q.set_amax(amax_from_histogram(q.hist.numpy(), q.stat_max, method, percentile))


def calibrate_observers(
    model: nn.Module, forward_loop: Callable[[nn.Module], None], method: str,
    percentile: float = 99.99,
) -> int:
    """Calibrate only the observers (e.g. of a model calibrated before they existed), leaving
    every quantizer's scale as it is. Returns how many observers were set."""
    collect_statistics(model, forward_loop)
    obs = [q for q in _activation_quantizers(model) if q.observe_only]
    for q in obs:
        q.set_amax(amax_from_histogram(q.hist.numpy(), q.stat_max, method, percentile))
    return len(obs)


def calibrate(
    model: nn.Module,
    forward_loop: Callable[[nn.Module], None],
    method: str = "max",
    percentile: float = 99.99,
) -> nn.Module:
    """Collect activation statistics with ``forward_loop`` and set scales by ``method``."""
    QuantConfig(method=method, percentile=percentile)  # validates
    collect_statistics(model, forward_loop)
    load_amax(model, method, percentile)
    return model


def amax_from_histogram(hist: np.ndarray, max_value: float, method: str, percentile: float) -> float:
    """Choose a clipping threshold for symmetric INT8 from a histogram of |x| over [0, max]."""
    if max_value <= 0 or hist.sum() <= 0:
        return 1e-8
    if method == "max":
        return float(max_value)
    width = max_value / len(hist)
    edges = np.arange(1, len(hist) + 1) * width
    if method == "percentile":
        cdf = np.cumsum(hist) / hist.sum()
        i = int(np.searchsorted(cdf, percentile / 100.0))
        return float(edges[min(i, len(hist) - 1)])
    if method == "mse":
        return _amax_mse(hist, width)
    return _amax_entropy(hist, width)


def _amax_mse(hist: np.ndarray, width: float) -> float:
    """Threshold minimising the expected squared error of quantizing the histogram's mass."""
    centers = (np.arange(len(hist)) + 0.5) * width
    best, best_err = len(hist), np.inf
    for stop in range(QMAX + 1, len(hist) + 1, max(1, len(hist) // 512)):
        amax = stop * width
        scale = amax / QMAX
        q = np.clip(np.round(centers / scale), 0, QMAX) * scale
        err = float(np.sum(hist * (centers - q) ** 2))
        if err < best_err:
            best, best_err = stop, err
    return best * width


def _amax_entropy(hist: np.ndarray, width: float) -> float:
    """TensorRT-style KL calibration: the threshold whose 128-level quantized distribution is
    closest (KL divergence) to the clipped reference distribution."""
    levels = QMAX + 1
    hist = hist.astype(np.float64).copy()
    # The first bin holds the exact zeros ReLU produces (40-70% of some tensors): zero is
    # exact at every scale, so it says nothing about the threshold, yet its mass dominates the
    # KL terms and drives the search to its smallest candidate (measured: amax = max/16).
    hist[0] = 0.0
    best, best_kl = len(hist), np.inf
    step = max(1, len(hist) // 512)
    for stop in range(levels, len(hist) + 1, step):
        ref = hist[:stop].copy()
        ref[stop - 1] += hist[stop:].sum()  # outliers clip onto the last bin
        nonzero = hist[:stop] > 0
        # Merge `stop` bins into `levels` groups, then spread each group's mass back over its
        # non-empty bins.
        groups = np.minimum((np.arange(stop) * levels) // stop, levels - 1)
        mass = np.bincount(groups, weights=hist[:stop], minlength=levels)
        count = np.bincount(groups, weights=nonzero.astype(np.float64), minlength=levels)
        per_bin = np.where(count > 0, mass / np.maximum(count, 1), 0.0)
        cand = np.where(nonzero, per_bin[groups], 0.0)
        p = ref / max(ref.sum(), 1e-30)
        qd = cand / max(cand.sum(), 1e-30)
        mask = p > 0
        kl = float(np.sum(p[mask] * np.log(p[mask] / np.maximum(qd[mask], 1e-12))))
        if kl < best_kl:
            best, best_kl = stop, kl
    return (best + 0.5) * width

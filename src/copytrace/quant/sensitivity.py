"""Per-layer sensitivity and mixed precision.

Sensitivity of a layer = metric loss when that layer alone is quantized (everything else
float). When the fully quantized model misses the accuracy gate, the most sensitive layers go
back to float one at a time until it passes, so a worse model is never shipped silently.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from copytrace.quant.placement import enable_only, quant_layers, set_float_layers

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LayerSensitivity:
    name: str
    metric: float
    loss: float  # reference metric minus metric with only this layer quantized


def relative_gap(reference: float, metric: float) -> float:
    return (reference - metric) / reference if reference else 0.0


def layer_sensitivity(
    model: nn.Module, evaluate: Callable[[nn.Module], float], reference: float,
    float_layers: tuple[str, ...] = (),
) -> list[LayerSensitivity]:
    """Quantize one layer at a time; most sensitive first. Restores ``float_layers`` after."""
    out = []
    try:
        for name, _ in quant_layers(model):
            enable_only(model, {name})
            metric = evaluate(model)
            out.append(LayerSensitivity(name, metric, reference - metric))
            log.info("sensitivity %-28s metric %.5f loss %+.5f", name, metric, reference - metric)
    finally:
        set_float_layers(model, float_layers)
    return sorted(out, key=lambda s: -s.loss)


def choose_float_layers(
    model: nn.Module, evaluate: Callable[[nn.Module], float], reference: float,
    sensitivities: list[LayerSensitivity], gate: float, max_float: int = 4,
) -> tuple[tuple[str, ...], float]:
    """Greedy mixed precision: float the most sensitive layers until the relative gap <= gate.

    Returns the chosen float layers and the metric reached (the model is left configured so).
    """
    chosen: list[str] = []
    set_float_layers(model, ())
    metric = evaluate(model)
    for s in sensitivities[:max_float]:
        if relative_gap(reference, metric) <= gate or s.loss <= 0:
            break
        chosen.append(s.name)
        set_float_layers(model, tuple(chosen))
        metric = evaluate(model)
        log.info("mixed precision: float %s -> metric %.5f", chosen, metric)
    return tuple(chosen), metric

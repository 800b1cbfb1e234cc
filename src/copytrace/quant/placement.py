"""Insert fake quantization into a float model (TensorRT explicit-quantization placement).

BatchNorm is folded into the preceding convolution *before* quantizers go in. Why: every
runtime we ship (TensorRT, OpenVINO, ONNX Runtime) folds BN anyway, so quantizing the folded
weight per output channel is exactly what runs; the exported graph is a plain DQ(w)->Conv(+bias)
that each of them fuses; and QAT with frozen BN statistics is the same function as QAT of the
folded conv, so nothing is lost by not simulating the fold (which TensorRT advises against).
"""
from __future__ import annotations

import copy

from torch import nn

from copytrace.models.fold import fold_batchnorm
from copytrace.quant.config import QuantConfig
from copytrace.quant.modules import (
    QUANT_TYPES,
    ObservedPool,
    QuantConv2d,
    QuantLinear,
    QuantResidualAdd,
    init_weight_amax,
    quantizers_of,
)


def prepare(model: nn.Module, config: QuantConfig | None = None) -> nn.Module:
    """Return a copy of ``model`` (put in eval mode) with fake quantizers inserted.

    Conv2d/Linear become Quant* layers (per-tensor input quantizer, per-channel weight
    quantizer on axis 0); each ``ResidualAdd`` gets a quantizer on its skip input. Weight
    scales are set now (max |w| per channel); activation scales need ``calibrate``.
    """
    from copytrace.models.resnet import GeM, ResidualAdd

    config = config or QuantConfig()
    model = copy.deepcopy(model).eval()
    if config.fold_bn:
        fold_batchnorm(model)
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, QUANT_TYPES):
                continue
            if isinstance(child, nn.Conv2d):
                parent._modules[name] = QuantConv2d(child, config.num_bins)
            elif isinstance(child, nn.Linear):
                parent._modules[name] = QuantLinear(child, config.num_bins)
            elif isinstance(child, ResidualAdd) and config.quantize_residual:
                parent._modules[name] = QuantResidualAdd(config.num_bins)
            elif isinstance(child, GeM):
                parent._modules[name] = ObservedPool(child, config.num_bins)
    for _, layer in quant_layers(model):
        init_weight_amax(layer)
    set_float_layers(model, config.float_layers)
    return model


def quant_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The quantized layers, in forward order for DescriptorNet (module registration order)."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, QUANT_TYPES)]


def set_float_layers(model: nn.Module, names: tuple[str, ...] | list[str]) -> None:
    """Enable every quantizer except those of the named layers (mixed precision)."""
    known = dict(quant_layers(model))
    unknown = sorted(set(names) - set(known))
    if unknown:
        raise ValueError(f"float_layers not found among quantized layers: {unknown}")
    for name, layer in known.items():
        for q in quantizers_of(layer):
            q.enabled = name not in names


def enable_only(model: nn.Module, names: set[str]) -> None:
    """Quantize only the named layers (per-layer sensitivity)."""
    for name, layer in quant_layers(model):
        for q in quantizers_of(layer):
            q.enabled = name in names

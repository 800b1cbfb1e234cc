"""Quantized wrappers: Conv2d and Linear with input + weight quantizers, and the residual add.

Placement follows TensorRT's explicit-quantization rules: quantizers on the inputs of
Conv/Gemm and on the skip input of residual adds, never on outputs, so the builder can fuse
Conv+bias+ReLU(+add) and pick INT8 kernels.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from copytrace.quant.quantizer import TensorQuantizer, weight_amax


class QuantConv2d(nn.Conv2d):
    def __init__(self, conv: nn.Conv2d, num_bins: int) -> None:
        super().__init__(
            conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
            conv.dilation, conv.groups, conv.bias is not None, conv.padding_mode,
            device=conv.weight.device, dtype=conv.weight.dtype,
        )
        self.load_state_dict(conv.state_dict())
        self.input_quantizer = TensorQuantizer(None, num_bins)
        self.weight_quantizer = TensorQuantizer(0, num_bins)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(
            self.input_quantizer(x), self.weight_quantizer(self.weight), self.bias
        )


class QuantLinear(nn.Linear):
    def __init__(self, linear: nn.Linear, num_bins: int) -> None:
        super().__init__(
            linear.in_features, linear.out_features, linear.bias is not None,
            device=linear.weight.device, dtype=linear.weight.dtype,
        )
        self.load_state_dict(linear.state_dict())
        self.input_quantizer = TensorQuantizer(None, num_bins)
        self.weight_quantizer = TensorQuantizer(0, num_bins)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(self.input_quantizer(x), self.weight_quantizer(self.weight), self.bias)


class QuantResidualAdd(nn.Module):
    """``x + Q(skip)``: the conv branch ``x`` stays unquantized so TensorRT fuses the add into
    the conv producing it; the skip input carries the Q/DQ pair the fused INT8 add reads."""

    def __init__(self, num_bins: int) -> None:
        super().__init__()
        self.skip_quantizer = TensorQuantizer(None, num_bins)
        # Not quantized here (TensorRT rules); its calibrated range is exported as metadata for
        # the ONNX Runtime variant, which must quantize the conv branch to use QLinearAdd.
        self.branch_observer = TensorQuantizer(None, num_bins, observe_only=True)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.branch_observer(x) + self.skip_quantizer(skip)


class ObservedPool(nn.Module):
    """A pooling layer (GeM) whose input range is observed, never quantized: the S8 file stays
    TensorRT-placed, and the ONNX Runtime variant can quantize the last convolution's output
    (so that convolution runs as QLinearConv instead of a float FusedConv)."""

    def __init__(self, pool: nn.Module, num_bins: int) -> None:
        super().__init__()
        self.pool = pool
        self.input_observer = TensorQuantizer(None, num_bins, observe_only=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.input_observer(x))


QUANT_TYPES = (QuantConv2d, QuantLinear, QuantResidualAdd)


def quantizers_of(layer: nn.Module) -> list[TensorQuantizer]:
    return [m for m in layer.children() if isinstance(m, TensorQuantizer)]


def init_weight_amax(layer: nn.Module) -> None:
    if isinstance(layer, (QuantConv2d, QuantLinear)):
        layer.weight_quantizer.set_amax(weight_amax(layer.weight))

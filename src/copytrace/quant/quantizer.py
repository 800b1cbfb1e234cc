"""The fake quantizer: symmetric INT8, per-tensor or per-channel, with calibration statistics.

Numerics follow TensorRT's explicit quantization: ``scale = amax / 127``, zero point 0, values
rounded half-to-even and clamped to [-128, 127]. ``torch.fake_quantize_*`` implements the
straight-through estimator for training and exports to ONNX QuantizeLinear/DequantizeLinear.
"""
from __future__ import annotations

import torch
from torch import nn

QMIN, QMAX = -128, 127
_EPS_AMAX = 1e-8


class TensorQuantizer(nn.Module):
    """Fake-quantizes its input. Modes: ``quant`` (default), ``collect_max``, ``collect_hist``.

    ``axis=None`` is per-tensor; ``axis=0`` keeps one scale per output channel (weights).
    ``amax`` is a buffer, not a parameter: scales stay frozen during QAT.
    """

    def __init__(self, axis: int | None = None, num_bins: int = 2048,
                 observe_only: bool = False) -> None:
        super().__init__()
        self.axis = axis
        self.num_bins = num_bins
        self.enabled = True
        # An observer is calibrated like the others but never quantizes: its scale is exported
        # as metadata for runtimes that need one more quantizer (the ONNX Runtime variant).
        self.observe_only = observe_only
        self.mode = "quant"
        self.register_buffer("amax", torch.tensor(-1.0))
        # Calibration statistics of |x| (activations only): running max, then a histogram.
        self.stat_max: float = 0.0
        self.hist: torch.Tensor | None = None

    @property
    def calibrated(self) -> bool:
        return bool((self.amax > 0).all())

    def set_amax(self, amax: torch.Tensor | float) -> None:
        amax = torch.as_tensor(amax, dtype=torch.float32, device=self.amax.device)
        self.amax = amax.clamp(min=_EPS_AMAX).detach().clone()

    def collect(self, x: torch.Tensor) -> None:
        a = x.detach().abs().float()
        if self.mode == "collect_max":
            self.stat_max = max(self.stat_max, float(a.max()))
        elif self.mode == "collect_hist":
            if self.stat_max <= 0:  # an all-zero tensor (e.g. a zero-initialised branch)
                h = torch.zeros(self.num_bins, dtype=torch.float64)
            else:
                h = torch.histc(a, bins=self.num_bins, min=0.0, max=self.stat_max).cpu().double()
            self.hist = h if self.hist is None else self.hist + h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.enabled:
            return x
        if self.mode != "quant":
            self.collect(x)
            return x
        if self.observe_only:
            return x
        if not torch.jit.is_tracing() and not self.calibrated:
            raise RuntimeError("quantizer used before calibration: run quant.calibrate first")
        if self.axis is None:
            scale = (self.amax / QMAX).reshape(()).float()
            zp = torch.zeros((), dtype=torch.int32, device=x.device)
            return torch.fake_quantize_per_tensor_affine(x, scale, zp, QMIN, QMAX)
        scale = (self.amax / QMAX).float().reshape(-1)
        zp = torch.zeros(scale.shape, dtype=torch.int32, device=x.device)
        return torch.fake_quantize_per_channel_affine(x, scale, zp, self.axis, QMIN, QMAX)

    def extra_repr(self) -> str:
        kind = "per-tensor" if self.axis is None else f"per-channel(axis={self.axis})"
        if self.observe_only:
            kind = "observer, " + kind
        state = "on" if self.enabled else "off"
        return f"{kind}, {state}, amax={'calibrated' if self.calibrated else 'unset'}"


def weight_amax(weight: torch.Tensor) -> torch.Tensor:
    """Per-output-channel max |w| (weights always use max: they are known exactly)."""
    return weight.detach().abs().reshape(weight.shape[0], -1).amax(dim=1)

"""Configuration objects for quantization (no torch here: the CLI imports this cheaply)."""
from __future__ import annotations

from dataclasses import dataclass

CALIBRATION_METHODS = ("max", "percentile", "mse", "entropy")


@dataclass(frozen=True)
class QuantConfig:
    """Where and how to fake-quantize.

    ``float_layers`` are module names (as in ``model.named_modules()``) kept in floating point:
    the mixed-precision escape hatch when a layer alone breaks the accuracy gate.
    """

    method: str = "max"
    percentile: float = 99.99
    num_bins: int = 2048
    quantize_residual: bool = True
    float_layers: tuple[str, ...] = ()
    fold_bn: bool = True

    def __post_init__(self) -> None:
        if self.method not in CALIBRATION_METHODS:
            raise ValueError(
                f"calibration method {self.method!r} unknown: pick one of {CALIBRATION_METHODS}"
            )
        if not 50.0 < self.percentile <= 100.0:
            raise ValueError(f"percentile must be in (50, 100], got {self.percentile}")
        if self.num_bins < 256:
            raise ValueError("num_bins must be >= 256 so entropy/MSE search has 128-level room")
        if isinstance(self.float_layers, (str, bytes)):
            raise TypeError("float_layers is a tuple of module names, not a single string")


@dataclass(frozen=True)
class FinetuneConfig:
    """QAT schedule: a short cosine decay from a small learning rate, scales frozen.

    NVIDIA's recipe: 1-10% of the original schedule, starting near 1% of the original LR.
    """

    steps: int = 300
    lr: float = 2e-5
    weight_decay: float = 0.0
    warmup_steps: int = 0
    grad_clip: float = 1.0
    log_every: int = 50

    def __post_init__(self) -> None:
        if self.steps <= 0:
            raise ValueError("steps must be positive")
        if not 0 < self.lr < 1:
            raise ValueError(f"lr {self.lr} out of range: QAT uses ~1% of the original LR")
        if self.warmup_steps < 0 or self.warmup_steps >= self.steps:
            raise ValueError("warmup_steps must be in [0, steps)")
        if self.weight_decay < 0 or self.grad_clip <= 0:
            raise ValueError("weight_decay must be >= 0 and grad_clip > 0")


@dataclass(frozen=True)
class QuantRecipe:
    """How ``quantize`` searches for an INT8 model that keeps the metric.

    ``methods``: calibration methods tried after one statistics pass (the best on the metric
    wins). ``qat``: fine-tuning runs tried from the chosen PTQ model (none: PTQ only).
    ``gate``: the largest relative metric loss accepted. ``sensitivity``: True sweeps every
    layer up front (full report); ``"on-miss"`` only when the gate is missed; False never (no
    mixed-precision fallback). ``max_float_layers``: how many layers mixed precision may keep
    in floating point.
    """

    methods: tuple[str, ...] = CALIBRATION_METHODS
    qat: tuple[FinetuneConfig, ...] = ()
    gate: float = 0.002
    sensitivity: bool | str = True
    max_float_layers: int = 4

    def __post_init__(self) -> None:
        if not self.methods or any(m not in CALIBRATION_METHODS for m in self.methods):
            raise ValueError(f"methods {self.methods!r}: pick from {CALIBRATION_METHODS}")
        if not all(isinstance(c, FinetuneConfig) for c in self.qat):
            raise TypeError("qat is a tuple of FinetuneConfig")
        if not 0 <= self.gate < 1:
            raise ValueError(f"gate {self.gate} is a relative loss in [0, 1)")
        if self.sensitivity not in (True, False, "on-miss"):
            raise ValueError("sensitivity must be True, False or 'on-miss'")
        if self.max_float_layers < 0:
            raise ValueError("max_float_layers must be >= 0")

"""INT8 quantization: prepare (Q/DQ placement), calibrate, fine-tune (QAT), export QDQ ONNX.

The torch-based functions live in submodules that only the ``[train]`` extra imports; this
package's ``__init__`` stays cheap so the CLI (``copytrace.recipes.command``) can import it
without loading torch. Attribute access (``copytrace.quant.prepare``) imports lazily.
"""
from __future__ import annotations

import importlib

from copytrace.quant.config import CALIBRATION_METHODS, FinetuneConfig, QuantConfig, QuantRecipe

_LAZY = {
    "quantize": "copytrace.quant.pipeline",
    "prepare": "copytrace.quant.placement",
    "fold_batchnorm": "copytrace.models.fold",
    "quant_layers": "copytrace.quant.placement",
    "set_float_layers": "copytrace.quant.placement",
    "calibrate": "copytrace.quant.calibration",
    "collect_statistics": "copytrace.quant.calibration",
    "load_amax": "copytrace.quant.calibration",
    "finetune": "copytrace.quant.qat",
    "export": "copytrace.quant.onnx_export",
    "derive_u8": "copytrace.quant.onnx_export",
    "check_tensorrt_rules": "copytrace.quant.tensorrt_rules",
    "layer_sensitivity": "copytrace.quant.sensitivity",
    "choose_float_layers": "copytrace.quant.sensitivity",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'copytrace.quant' has no attribute {name!r}")


__all__ = [  # noqa: PLE0604 - the lazy names are strings too
    "CALIBRATION_METHODS", "FinetuneConfig", "QuantConfig", "QuantRecipe", *_LAZY,
]

"""Check a QDQ ONNX against TensorRT's explicit-quantization rules (no TensorRT needed).

Rules checked: opset >= 13; INT8 Q/DQ only, zero point 0 (symmetric); no QLinear*/Integer
ops (those are implicit/operator-form quantization TensorRT does not take); weights
per-channel on axis 0, activations per-tensor; every Q feeds only DQs; DQ outputs feed only
Conv/Gemm/MatMul inputs, Add inputs (the residual input of a skip connection) or a MaxPool
whose output is quantized again (INT8 pooling); no Q/DQ on graph outputs.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

_COMPUTE = ("Conv", "ConvTranspose", "Gemm", "MatMul")
_FORBIDDEN_SUFFIXES = ("Integer",)
_FORBIDDEN_PREFIXES = ("QLinear", "DynamicQuantize")


def check_tensorrt_rules(path: str | Path) -> list[str]:
    """Return human-readable violations (empty list: the file follows the rules)."""
    import onnx
    from onnx import numpy_helper

    m = onnx.load(str(path))
    g = m.graph
    out: list[str] = []
    opset = max((o.version for o in m.opset_import if o.domain in ("", "ai.onnx")), default=0)
    if opset < 13:
        out.append(f"opset {opset} < 13: per-channel Q/DQ needs opset 13")
    inits = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    for node in g.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            inits[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    consumers: dict[str, list] = {}
    for node in g.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    graph_outputs = {o.name for o in g.output}

    for node in g.node:
        label = f"{node.op_type} {node.name or node.output[0]!r}"
        if node.op_type.startswith(_FORBIDDEN_PREFIXES) or node.op_type.endswith(_FORBIDDEN_SUFFIXES):
            out.append(f"{label}: operator-form quantization is not TensorRT explicit quantization")
            continue
        if node.op_type not in ("QuantizeLinear", "DequantizeLinear"):
            continue
        out.extend(_check_qparams(node, label, inits))
        if node.output[0] in graph_outputs:
            out.append(f"{label}: Q/DQ on a graph output")
        users = consumers.get(node.output[0], [])
        if node.op_type == "QuantizeLinear":
            bad = [u.op_type for u in users if u.op_type != "DequantizeLinear"]
            if bad:
                out.append(f"{label}: feeds {bad}, a Q must feed only DequantizeLinear")
            continue
        is_weight = node.input[0] in inits or _from_weight_q(node, g, inits)
        for u in users:
            if u.op_type in _COMPUTE:
                if is_weight and list(u.input).index(node.output[0]) != 1:
                    out.append(f"{label}: quantized weight used as {u.op_type} data input")
            elif u.op_type == "Add" and not is_weight:
                if not any(_producer_op(i, g) in _COMPUTE for i in u.input if i != node.output[0]):
                    out.append(f"{label}: Add {u.name!r} is not a residual add after a Conv/Gemm")
            elif u.op_type == "MaxPool" and not is_weight:
                # TensorRT commutes Q/DQ with max pooling and pools in INT8, provided the
                # pooled tensor is quantized again (one scale) before its readers.
                readers = consumers.get(u.output[0], [])
                if not readers or any(r.op_type != "QuantizeLinear" for r in readers):
                    out.append(f"{label}: DQ feeds MaxPool {u.name!r} whose output is not "
                               f"re-quantized")
            else:
                out.append(f"{label}: DQ feeds {u.op_type}; allowed: {_COMPUTE} inputs, residual Add")
    return out


def _check_qparams(node, label: str, inits: dict) -> list[str]:
    errs = []
    scale_name = node.input[1]
    zp_name = node.input[2] if len(node.input) > 2 and node.input[2] else None
    if scale_name not in inits:
        return [f"{label}: scale is not a constant"]
    scale = np.asarray(inits[scale_name])
    if not np.all(scale > 0):
        errs.append(f"{label}: scale must be positive")
    if zp_name is None:
        errs.append(f"{label}: zero point missing (defaults to uint8); TensorRT needs INT8 zp 0")
    elif zp_name not in inits:
        errs.append(f"{label}: zero point is not a constant")
    else:
        zp = np.asarray(inits[zp_name])
        if zp.dtype != np.int8:
            errs.append(f"{label}: zero point dtype {zp.dtype}, TensorRT needs int8")
        if np.any(zp != 0):
            errs.append(f"{label}: zero point {zp.ravel()[:4].tolist()} is not 0 (asymmetric)")
    if scale.ndim > 0 and scale.size > 1:
        axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
        if axis != 0:
            errs.append(f"{label}: per-channel axis {axis}; TensorRT weights use axis 0")
    return errs


def _from_weight_q(dq, g, inits: dict) -> bool:
    prod = next((n for n in g.node if dq.input[0] in n.output), None)
    return prod is not None and prod.op_type == "QuantizeLinear" and prod.input[0] in inits


def _producer_op(name: str, g) -> str | None:
    prod = next((n for n in g.node if name in n.output), None)
    return None if prod is None else prod.op_type

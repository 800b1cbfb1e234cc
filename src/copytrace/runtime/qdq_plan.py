"""The INT8 network of a QDQ ONNX file as a plan of integer steps (issue 26).

The QDQ file that ``copytrace quantize`` exports holds, per convolution, the int8 weights with
their per-channel scales and the per-tensor scale of every quantized activation. ``read_plan``
turns it into the steps an 8-bit backend runs: quantize the input; convolutions on int8 codes
with bias, the residual add, ReLU and requantization in the epilogue; max pooling on codes;
then GeM, the quantized projection and L2 normalisation in float. ``reference_forward`` runs a
plan with torch float ops on dequantized codes (the arithmetic of the QDQ graph), so any
backend's kernels can be checked against it, on any device, and it against ONNX Runtime.

Only the descriptor network's shape of graph is accepted (models/resnet.py: Conv, optional
Add of a quantized skip, optional Relu, QuantizeLinear, MaxPool on codes, GeM + Gemm); anything
else raises ModelError naming the node.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from copytrace.errors import ModelError


@dataclass
class ConvStep:
    """``dst = q(relu?(conv(src) + bias (+ residual)))``; codes in, codes (or float) out."""

    src: str
    dst: str
    weight: np.ndarray            # int8 [cout, cin, kh, kw]
    weight_scale: np.ndarray      # float32 [cout]
    bias: np.ndarray              # float32 [cout]
    stride: int
    pad: int
    relu: bool
    residual: str | None = None
    out_scale: float | None = None  # None: float output (the last convolution, before GeM)


@dataclass
class PoolStep:
    src: str
    dst: str
    kernel: int
    stride: int
    pad: int


@dataclass
class QdqPlan:
    input_name: str
    scales: dict[str, float]       # every int8 tensor's scale
    steps: list = field(default_factory=list)
    gem_p: float = 3.0
    gem_eps: float = 1e-6
    pooled_scale: float | None = None  # the projection's input quantizer
    proj_weight: np.ndarray | None = None  # float32 [dims, channels], dequantized
    proj_bias: np.ndarray | None = None

    @property
    def output(self) -> str:
        return self.steps[-1].dst


def _attr(node, name, default):
    for a in node.attribute:
        if a.name == name:
            return list(a.ints) if a.ints else (a.f if a.type == 1 else a.i)
    return default


def read_plan(path: str | Path) -> QdqPlan:
    """Parse a QDQ ONNX descriptor into a QdqPlan (ModelError when it has another shape)."""
    import onnx
    from onnx import numpy_helper

    path = Path(path)
    try:
        g = onnx.load(str(path)).graph
    except Exception as e:
        raise ModelError(f"{path}: cannot read the ONNX file: {e}") from e
    inits = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    consumers: dict[str, list] = {}
    for n in g.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    producer = {o: n for n in g.node for o in n.output}

    def scalar(name):
        if name not in inits or inits[name].size != 1:
            raise ModelError(f"{path}: {name} is not a constant scalar")
        return float(inits[name].ravel()[0])

    def only(name, op):
        return _single_consumer(path, consumers, name, op)

    def zero_point_ok(node):
        if len(node.input) > 2 and node.input[2]:
            zp = inits.get(node.input[2])
            if zp is None or np.any(zp != 0) or zp.dtype != np.int8:
                raise ModelError(f"{path}: {node.name or node.op_type}: only symmetric int8 "
                                 "(zero point 0) quantization is supported")

    scales: dict[str, float] = {}
    for n in g.node:
        if n.op_type == "QuantizeLinear":
            zero_point_ok(n)
            scales[n.output[0]] = scalar(n.input[1])

    def codes_of(dq_out):
        """The int8 tensor a DequantizeLinear output decodes."""
        dq = producer.get(dq_out)
        if dq is None or dq.op_type != "DequantizeLinear" or dq.input[0] not in scales:
            raise ModelError(f"{path}: {dq_out} is not a dequantized activation")
        return dq.input[0]

    def weight_of(dq_out):
        dq = producer.get(dq_out)
        if dq is None or dq.op_type != "DequantizeLinear" or dq.input[0] not in inits:
            raise ModelError(f"{path}: {dq_out} is not a dequantized int8 weight")
        zero_point_ok(dq)
        w = inits[dq.input[0]]
        if w.dtype != np.int8:
            raise ModelError(f"{path}: weight {dq.input[0]} is {w.dtype}, not int8")
        s = inits[dq.input[1]].astype(np.float32).reshape(-1)
        return w, s

    q_in = only(g.input[0].name, "QuantizeLinear")
    plan = QdqPlan(input_name=q_in.output[0], scales=scales)
    for n in g.node:
        if n.op_type == "MaxPool":
            src = codes_of(n.input[0])
            q = only(n.output[0], "QuantizeLinear")
            if abs(scales[q.output[0]] - scales[src]) > 1e-12 * scales[src]:
                raise ModelError(f"{path}: MaxPool changes the scale ({src} -> {q.output[0]})")
            k = _attr(n, "kernel_shape", [1, 1])
            s = _attr(n, "strides", [1, 1])
            p = _attr(n, "pads", [0, 0, 0, 0])
            if len(set(k)) != 1 or len(set(s)) != 1 or len(set(p)) != 1:
                raise ModelError(f"{path}: only square max pooling is supported")
            plan.steps.append(PoolStep(src, q.output[0], k[0], s[0], p[0]))
        elif n.op_type == "Conv":
            if _attr(n, "group", 1) != 1 or set(_attr(n, "dilations", [1, 1])) != {1}:
                raise ModelError(f"{path}: {n.name}: grouped or dilated convolutions")
            k = _attr(n, "kernel_shape", [1, 1])
            s = _attr(n, "strides", [1, 1])
            p = _attr(n, "pads", [0, 0, 0, 0])
            if len(set(k)) != 1 or len(set(s)) != 1 or len(set(p)) != 1 or k[0] != 2 * p[0] + 1:
                raise ModelError(f"{path}: {n.name}: only square 'same' convolutions")
            w, ws = weight_of(n.input[1])
            bias = (inits[n.input[2]].astype(np.float32) if len(n.input) > 2
                    else np.zeros(w.shape[0], np.float32))
            step = ConvStep(codes_of(n.input[0]), "", w, ws, bias, s[0], p[0], relu=False)
            out = n.output[0]
            nxt = consumers.get(out, [])
            if len(nxt) == 1 and nxt[0].op_type == "Add":
                add = nxt[0]
                other = add.input[1] if add.input[0] == out else add.input[0]
                step.residual = codes_of(other)
                out, nxt = add.output[0], consumers.get(add.output[0], [])
            if len(nxt) == 1 and nxt[0].op_type == "Relu":
                step.relu = True
                out, nxt = nxt[0].output[0], consumers.get(nxt[0].output[0], [])
            if len(nxt) == 1 and nxt[0].op_type == "QuantizeLinear":
                step.dst, step.out_scale = nxt[0].output[0], scales[nxt[0].output[0]]
            else:
                step.dst = out  # float: must be the GeM input, checked below
            plan.steps.append(step)
    last = plan.steps[-1] if plan.steps else None
    if not isinstance(last, ConvStep) or last.out_scale is not None:
        raise ModelError(f"{path}: the network should end in a float convolution output")
    if any(isinstance(st, ConvStep) and st.out_scale is None for st in plan.steps[:-1]):
        raise ModelError(f"{path}: only the last convolution may have a float output")
    _read_head(path, g, inits, consumers, last.dst, plan)
    return plan


def _single_consumer(path, consumers, name, op):
    nodes = consumers.get(name, [])
    if len(nodes) != 1 or nodes[0].op_type != op:
        raise ModelError(f"{path}: {name} should feed one {op}, feeds "
                         f"{[n.op_type for n in nodes]}")
    return nodes[0]


def _read_head(path, g, inits, consumers, feat, plan: QdqPlan) -> None:
    """GeM (Cast? Clip Pow ReduceMean Pow), the projection's quantizer and Gemm."""
    def follow(name, op):
        return _single_consumer(path, consumers, name, op)

    cur = feat
    nodes = consumers.get(cur, [])
    if len(nodes) == 1 and nodes[0].op_type == "Cast":
        cur = nodes[0].output[0]
    clip = follow(cur, "Clip")
    plan.gem_eps = float(inits[clip.input[1]].ravel()[0])
    pw = follow(clip.output[0], "Pow")
    plan.gem_p = float(inits[pw.input[1]].ravel()[0])
    mean = follow(pw.output[0], "ReduceMean")
    root = follow(mean.output[0], "Pow")
    q = follow(root.output[0], "QuantizeLinear")
    plan.pooled_scale = plan.scales[q.output[0]]
    dq = follow(q.output[0], "DequantizeLinear")
    gemm = follow(dq.output[0], "Gemm")
    if _attr(gemm, "transB", 0) != 1:
        raise ModelError(f"{path}: the projection Gemm should have transB=1")
    wdq = next(n for n in g.node if gemm.input[1] in n.output)
    w = inits[wdq.input[0]].astype(np.float32)
    s = inits[wdq.input[1]].astype(np.float32).reshape(-1, 1)
    plan.proj_weight = w * s
    plan.proj_bias = inits[gemm.input[2]].astype(np.float32)


def _quantize(x, scale: float):
    """ONNX QuantizeLinear, int8, zero point 0: round half to even, saturate (as float codes)."""
    import torch

    return torch.clamp(torch.round(x / scale), -128, 127)


def head(plan: QdqPlan, feat, dtype=None):
    """Float feature map [N, C, H, W] -> descriptors: GeM, the projection's fake-quantized
    input, Gemm, L2 norm."""
    import torch

    dtype = dtype or torch.float32
    x = feat.to(dtype).clamp(min=plan.gem_eps).pow(plan.gem_p).mean(dim=(2, 3))
    x = x.pow(1.0 / plan.gem_p)
    x = _quantize(x, plan.pooled_scale) * plan.pooled_scale
    w = torch.as_tensor(plan.proj_weight, device=x.device).to(dtype)
    b = torch.as_tensor(plan.proj_bias, device=x.device).to(dtype)
    return torch.nn.functional.normalize(x @ w.T + b, dim=1)


def reference_forward(plan: QdqPlan, images, dtype=None):
    """float32 NCHW images -> descriptors, with torch float ops on dequantized codes
    (``dtype`` float32 by default; float64 takes rounding out of the comparison)."""
    import torch
    import torch.nn.functional as F

    dtype = dtype or torch.float32
    codes = {plan.input_name: _quantize(images.to(dtype), plan.scales[plan.input_name])}
    feat = None
    for st in plan.steps:
        x = codes[st.src] * plan.scales[st.src]
        if isinstance(st, PoolStep):
            y = F.max_pool2d(x, st.kernel, st.stride, st.pad)
            codes[st.dst] = _quantize(y, plan.scales[st.dst])
            continue
        w = torch.as_tensor(st.weight.astype(np.float32) * st.weight_scale[:, None, None, None],
                            device=x.device).to(dtype)
        y = F.conv2d(x, w, torch.as_tensor(st.bias, device=x.device).to(dtype), st.stride,
                     st.pad)
        if st.residual is not None:
            y = y + codes[st.residual] * plan.scales[st.residual]
        if st.relu:
            y = torch.relu(y)
        if st.out_scale is None:
            feat = y
        else:
            codes[st.dst] = _quantize(y, st.out_scale)
    return head(plan, feat, dtype)

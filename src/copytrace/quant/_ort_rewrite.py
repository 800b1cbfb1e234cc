"""Rewrite a TensorRT-placed QDQ graph into the form ONNX Runtime's CPU EP runs as INT8.

ORT fuses ``DQ -> Conv -> Q`` into QLinearConv, ``DQ,DQ -> Add -> Q`` into QLinearAdd and
``DQ -> LeakyRelu -> Q`` into QLinearLeakyRelu, and runs ``DQ -> MaxPool -> Q`` on integers
when the scales match. TensorRT's placement has no Q on conv outputs, so ORT would dequantize
weights and run convolutions in float. The rewrite walks each activation quantizer backwards:

* through Relu, MaxPool and Flatten, inserting a Q/DQ pair with the same scale on their input. This is
  exact: both ops are monotone and Q(relu(y)) == relu-in-the-integer-domain(Q(y)) because
  rounding commutes with max(., 0) and max-pooling;
* at a residual Add whose output is now quantized, onto the Add's float input (the conv
  branch). This is the one *approximate* step: the conv branch is rounded once more before the
  add. Its scale comes from the branch's own calibrated range when the export recorded it
  (``branch_amax``, one per residual Add in graph order); the Add output's scale is a poor
  stand-in (it clips the branch's large negative values, which the add and ReLU would absorb).

Relu becomes LeakyRelu(alpha=0), the same function, which ORT has an INT8 kernel for.
"""
from __future__ import annotations

import numpy as np

from copytrace.quant._graph import consumers, producers

# Flatten only moves values, so quantizing before or after it is the same (audio head).
_MONOTONE = ("Relu", "MaxPool", "Flatten")


def _scale_of(q, inits) -> float | None:
    s = inits.get(q.input[1])
    return None if s is None or np.asarray(s).size != 1 else float(np.asarray(s))


def _insert_pair(g, tensor: str, consumer, scale_name: str, zp_name: str, tag: str) -> str:
    from onnx import helper

    q_out, dq_out = f"{tensor}_{tag}_q", f"{tensor}_{tag}_dq"
    g.node.append(helper.make_node("QuantizeLinear", [tensor, scale_name, zp_name], [q_out],
                                   name=f"{tensor}_{tag}_Q"))
    g.node.append(helper.make_node("DequantizeLinear", [q_out, scale_name, zp_name], [dq_out],
                                   name=f"{tensor}_{tag}_DQ"))
    for i, name in enumerate(consumer.input):
        if name == tensor:
            consumer.input[i] = dq_out
    return q_out


def requantize_for_ort(
    g, inits: dict, exact: bool = True, branch_amax: list[float] | None = None
) -> dict[str, int]:
    """Propagate activation quantizers backwards (see module doc). Returns counts.

    ``exact=False`` leaves Relu in place for ORT to drop (it does so when the following Q
    has zero point 0, see ``nonnegative_tensors``): faster, but no longer bit-identical
    where the s8 model saturates.
    """
    from onnx import numpy_helper

    counts = {"exact": 0, "approximate": 0, "leaky_relu": 0, "calibrated_branches": 0}
    adds = [n for n in g.node if n.op_type == "Add"]
    branch_scale: dict[str, str] = {}
    if branch_amax is not None and len(branch_amax) == len(adds):
        for i, (node, amax) in enumerate(zip(adds, branch_amax)):
            name = f"residual_branch_scale_{i}"
            g.initializer.append(numpy_helper.from_array(np.array(amax / 127.0, np.float32), name))
            branch_scale[node.name or node.output[0]] = name
    work = [(n.input[0], n) for n in g.node
            if n.op_type == "QuantizeLinear" and n.input[0] not in inits]
    seen: set[str] = set()
    while work:
        tensor, q = work.pop()
        if tensor in seen:
            continue
        seen.add(tensor)
        prod = producers(g).get(tensor)
        if prod is None:
            continue
        users = consumers(g).get(tensor, [])
        # Only when every reader of this tensor is a quantizer of one scale is it safe to
        # move the quantization upstream (a virtual walk past a kept Relu has one reader).
        scales = {_scale_of(u, inits) for u in users if u.op_type == "QuantizeLinear"}
        if len(users) > 1 and (any(u.op_type != "QuantizeLinear" for u in users) or len(scales) != 1):
            continue
        if prod.op_type == "Relu" and not exact:
            work.append((prod.input[0], q))  # ORT fuses Relu into what precedes the Q
        elif prod.op_type in _MONOTONE:
            src = prod.input[0]
            p = producers(g).get(src)
            if p is not None and p.op_type == "DequantizeLinear":
                continue
            new_q = _insert_pair(g, src, prod, q.input[1], q.input[2], f"{prod.op_type}_in")
            counts["exact"] += 1
            work.append((src, next(n for n in g.node if n.output[0] == new_q)))
        elif prod.op_type == "Add" and not any(i in inits for i in prod.input):
            # A residual add of two activations; an add of a constant (the audio net's
            # level offset before its first conv) is not one, and the walk stops there.
            for src in list(prod.input):
                p = producers(g).get(src)
                if p is not None and p.op_type == "DequantizeLinear":
                    continue
                scale = branch_scale.get(prod.name or prod.output[0])
                counts["calibrated_branches"] += scale is not None
                _insert_pair(g, src, prod, scale or q.input[1], q.input[2], "add_in")
                counts["approximate"] += 1
    if exact:
        from onnx import helper

        for n in g.node:
            if n.op_type == "Relu":
                n.op_type = "LeakyRelu"
                n.attribute.append(helper.make_attribute("alpha", 0.0))
                counts["leaky_relu"] += 1
    return counts


def nonnegative_tensors(g) -> set[str]:
    """Tensors that are Relu outputs, or MaxPool/DQ-Q chains of them (topological order)."""
    out: set[str] = set()
    for n in g.node:
        if n.op_type == "Relu" or (
            n.op_type in ("MaxPool", "QuantizeLinear", "DequantizeLinear") and n.input[0] in out
        ):
            out.add(n.output[0])
    return out

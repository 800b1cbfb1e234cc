"""Export a fake-quantized model to one QDQ ONNX, and derive the ONNX Runtime (U8) variant.

The exported file is the portable form: QuantizeLinear/DequantizeLinear with INT8 zero point 0
(TensorRT's explicit quantization), weights stored as INT8 initializers behind a
DequantizeLinear (per-channel, axis 0), activations as Q->DQ pairs (per-tensor).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from copytrace.quant._graph import (
    initializer_arrays,
    prune_initializers,
    topological_sort,
)

INPUT_NAME, OUTPUT_NAME = "images", "descriptors"


def export(model, path: str | Path, input_size: tuple[int, int], opset: int = 17,
           channels: int = 3, input_name: str = INPUT_NAME,
           output_name: str = OUTPUT_NAME) -> Path:
    """Trace ``model`` (prepared + calibrated) to ``path``; dynamic batch, input
    ``[N, channels, *input_size]`` named ``input_name`` (the FP32 twin's names)."""
    import onnx
    import torch

    if opset < 13:
        raise ValueError("per-channel QuantizeLinear needs opset >= 13")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval().float().cpu()
    dummy = torch.zeros(2, channels, input_size[0], input_size[1])
    with torch.no_grad():
        torch.onnx.export(
            model, (dummy,), str(path), input_names=[input_name], output_names=[output_name],
            dynamic_axes={input_name: {0: "batch"}, output_name: {0: "batch"}},
            opset_version=opset, dynamo=False, do_constant_folding=True,
        )
    m = onnx.load(str(path))
    _record_branch_ranges(m, model)
    _constants_to_initializers(m.graph)
    _drop_identities(m.graph)
    _fold_weight_quantizers(m.graph)
    _merge_duplicate_quantizers(m.graph)
    _quantize_maxpool_inputs(m.graph)
    prune_initializers(m.graph)
    onnx.checker.check_model(m)
    onnx.save(m, str(path))
    return path


def derive_u8(
    path_in: str | Path, path_out: str | Path, ort_rewrite: bool = True, exact: bool = True
) -> dict:
    """Write the ONNX Runtime variant: activations uint8 with zero point 128.

    The U8 shift is exact: ``q_u8 = q_s8 + 128`` maps [-128, 127] onto [0, 255] one to one,
    so every dequantized value is unchanged. ONNX Runtime's x86 INT8 kernels want U8
    activations (U8S8). Weights stay INT8, zero point 0. With ``ort_rewrite`` the graph is
    also rewritten so ORT fuses its INT8 kernels (``_ort_rewrite``: exact through Relu and
    MaxPool, one extra rounding on the conv branch of residual adds). Returns counts.

    ``exact=False``: tensors known to be non-negative (after Relu) get zero point 0 instead of
    128, so ORT drops the Relu and fuses it. Values on the INT8 grid are unchanged; only where
    the s8 model saturates at ``amax`` does the U8 file keep up to ``2 * amax``.
    """
    import onnx
    from onnx import numpy_helper

    from copytrace.quant._ort_rewrite import nonnegative_tensors, requantize_for_ort

    m = onnx.load(str(path_in))
    g = m.graph
    inits = initializer_arrays(g)
    meta = {p.key: p.value for p in m.metadata_props}
    branch_amax = json.loads(meta[BRANCH_AMAX_KEY]) if BRANCH_AMAX_KEY in meta else None
    n_pool = 0
    if ort_rewrite and POOL_AMAX_KEY in meta:
        n_pool = quantize_pool_inputs(g, json.loads(meta[POOL_AMAX_KEY]))
        inits = initializer_arrays(g)
    counts = requantize_for_ort(g, inits, exact, branch_amax) if ort_rewrite else {}
    counts = {**counts, "pool_inputs": n_pool} if ort_rewrite else counts
    topological_sort(g)
    nonneg = set() if exact else nonnegative_tensors(g)
    n_new = 0
    for node in list(g.node):
        if node.op_type != "QuantizeLinear" or node.input[0] in inits:
            continue  # weights (folded to INT8 initializers) keep their signed form
        pair = [node] + [
            n for n in g.node if n.op_type == "DequantizeLinear" and n.input[0] == node.output[0]
        ]
        zp = 0 if node.input[0] in nonneg else 128
        zp_name = f"{node.output[0]}_zp_u8"
        g.initializer.append(numpy_helper.from_array(np.array(zp, dtype=np.uint8), zp_name))
        for n in pair:
            while len(n.input) < 3:
                n.input.append("")
            n.input[2] = zp_name
        n_new += 1
    if n_new == 0:
        raise ValueError(f"{path_in}: no activation QuantizeLinear found: is it a QDQ model?")
    topological_sort(g)
    prune_initializers(g)
    onnx.checker.check_model(m)
    Path(path_out).parent.mkdir(parents=True, exist_ok=True)
    onnx.save(m, str(path_out))
    return {"activation_quantizers": n_new, **counts}


BRANCH_AMAX_KEY = "copytrace.residual_branch_amax"
POOL_AMAX_KEY = "copytrace.pool_input_amax"


def quantize_pool_inputs(g, pool_amax: dict[str, float]) -> int:
    """Put an S8 Q/DQ pair (calibrated observer range) on each pooling layer's input, so the
    backward walk of ``requantize_for_ort`` reaches the last convolution and ORT runs it as
    QLinearConv. The one *approximate* step it adds: the last feature map is rounded to
    8 bits before GeM pooling (the S8 file pools it in float)."""
    from onnx import helper, numpy_helper

    n = 0
    for path, amax in pool_amax.items():
        prefix = "/" + path.replace(".", "/") + "/"
        inside = [node for node in g.node if node.name.startswith(prefix)]
        made = {o for node in inside for o in node.output}
        entry = {i for node in inside for i in node.input if i and i not in made}
        inits = {i.name for i in g.initializer}
        entry -= inits
        if len(entry) != 1:
            continue  # not a single-input pool as exported by torch: leave it float
        t = entry.pop()
        s_name, z_name = f"{t}_pool_scale", f"{t}_pool_zp"
        g.initializer.extend([numpy_helper.from_array(np.array(amax / 127.0, np.float32), s_name),
                              numpy_helper.from_array(np.array(0, np.int8), z_name)])
        g.node.extend([
            helper.make_node("QuantizeLinear", [t, s_name, z_name], [f"{t}_pool_q"],
                             name=f"{t}_pool_Q"),
            helper.make_node("DequantizeLinear", [f"{t}_pool_q", s_name, z_name],
                             [f"{t}_pool_dq"], name=f"{t}_pool_DQ")])
        for node in inside:
            for i, name in enumerate(node.input):
                if name == t:
                    node.input[i] = f"{t}_pool_dq"
        n += 1
    topological_sort(g)
    return n


def _record_branch_ranges(m, model) -> None:
    """Store each residual add's calibrated conv-branch range (graph order) as metadata."""
    from copytrace.quant.modules import QuantResidualAdd

    adds = [a for a in model.modules() if isinstance(a, QuantResidualAdd)]
    amax = [float(a.branch_observer.amax) for a in adds]
    if adds and all(v > 0 for v in amax):
        entry = m.metadata_props.add()
        entry.key, entry.value = BRANCH_AMAX_KEY, json.dumps(amax)
    from copytrace.quant.modules import ObservedPool

    pools = {name: float(p.input_observer.amax) for name, p in model.named_modules()
             if isinstance(p, ObservedPool)}
    if pools and all(v > 0 for v in pools.values()):
        entry = m.metadata_props.add()
        entry.key, entry.value = POOL_AMAX_KEY, json.dumps(pools)


def _merge_duplicate_quantizers(g) -> None:
    """One Q/DQ pair per (tensor, scale): the identity skip and the next conv read the same
    tensor with equal scales, and one pair lets runtimes share the quantized tensor."""
    inits = initializer_arrays(g)
    key_of = {}
    rename = {}
    keep = []
    for n in g.node:
        if n.op_type in ("QuantizeLinear", "DequantizeLinear") and n.input[1] in inits:
            src = rename.get(n.input[0], n.input[0])
            zp = inits.get(n.input[2]) if len(n.input) > 2 else None
            key = (n.op_type, src, inits[n.input[1]].tobytes(),
                   None if zp is None else zp.tobytes(),
                   tuple((a.name, a.i) for a in n.attribute))
            if key in key_of:
                rename[n.output[0]] = key_of[key]
                continue
            key_of[key] = n.output[0]
        keep.append(n)
    for n in keep:
        for i, name in enumerate(n.input):
            n.input[i] = rename.get(name, name)
    del g.node[:]
    g.node.extend(keep)


def _quantize_maxpool_inputs(g) -> int:
    """``MaxPool -> Q`` becomes ``Q -> DQ -> MaxPool -> Q``, same scale: exact, because max
    pooling commutes with monotone rounding. Runtimes then pool the INT8 tensor (OpenVINO fuses
    the new Q into the producing convolution and runs ``MaxPool`` in i8 instead of a float
    MaxPool plus a FakeQuantize; TensorRT and ONNX Runtime run INT8 max pooling)."""
    from onnx import helper

    from copytrace.quant._graph import consumers

    users = consumers(g)
    n = 0
    for node in list(g.node):
        if node.op_type != "MaxPool":
            continue
        qs = users.get(node.output[0], [])
        if not qs or any(q.op_type != "QuantizeLinear" for q in qs):
            continue
        if len({tuple(q.input[1:]) for q in qs}) != 1:
            continue
        t, (scale, zp) = node.input[0], qs[0].input[1:3]
        g.node.extend([
            helper.make_node("QuantizeLinear", [t, scale, zp], [f"{t}_pool_in_q"],
                             name=f"{node.name}_in_Q"),
            helper.make_node("DequantizeLinear", [f"{t}_pool_in_q", scale, zp],
                             [f"{t}_pool_in_dq"], name=f"{node.name}_in_DQ")])
        node.input[0] = f"{t}_pool_in_dq"
        n += 1
    if n:
        topological_sort(g)
    return n


def _constants_to_initializers(g) -> None:
    from onnx import numpy_helper

    keep = []
    for node in g.node:
        if node.op_type == "Constant" and len(node.attribute) == 1 and node.attribute[0].name == "value":
            arr = numpy_helper.to_array(node.attribute[0].t)
            g.initializer.append(numpy_helper.from_array(arr, node.output[0]))
        else:
            keep.append(node)
    del g.node[:]
    g.node.extend(keep)


def _drop_identities(g) -> None:
    outputs = {o.name for o in g.output}
    rename = {}
    keep = []
    for node in g.node:
        if node.op_type == "Identity" and node.output[0] not in outputs:
            rename[node.output[0]] = node.input[0]
        else:
            keep.append(node)
    for node in keep:
        for i, name in enumerate(node.input):
            while name in rename:
                name = rename[name]
            node.input[i] = name
    del g.node[:]
    g.node.extend(keep)


def _fold_weight_quantizers(g) -> None:
    """Q(w_float) -> DQ  becomes  w_int8 -> DQ: the stored weight is the quantized one."""
    from onnx import numpy_helper

    inits = {i.name: i for i in g.initializer}
    keep = []
    by_input: dict[str, list] = {}
    for node in g.node:
        for name in node.input:
            by_input.setdefault(name, []).append(node)
    for node in g.node:
        if node.op_type != "QuantizeLinear" or node.input[0] not in inits:
            keep.append(node)
            continue
        w = numpy_helper.to_array(inits[node.input[0]]).astype(np.float32)
        scale = numpy_helper.to_array(inits[node.input[1]]).astype(np.float32)
        axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
        if scale.ndim == 1:
            shape = [1] * w.ndim
            shape[axis] = -1
            scale = scale.reshape(shape)
        q = np.clip(np.rint(w / scale), -128, 127).astype(np.int8)
        name = node.output[0] + "_int8"  # per Q node: the exporter may share one float weight
        g.initializer.append(numpy_helper.from_array(q, name))
        for consumer in by_input.get(node.output[0], []):
            for i, inp in enumerate(consumer.input):
                if inp == node.output[0]:
                    consumer.input[i] = name
    del g.node[:]
    g.node.extend(keep)

"""The INT8/FP32 ceiling of this CPU in OpenVINO: stacks of large convolutions and a matmul.

Each case is built twice: FP32, and QDQ exactly as `copytrace.quant.export` writes it
(per-tensor Q/DQ on each layer input, per-channel INT8 weights behind a DequantizeLinear).
A case is a chain of ``DEPTH`` identical Conv+ReLU layers (or MatMuls), so the kernels, not the
input conversion, dominate. Both files are compiled with the f32 precision hint and timed
alternately (medians); besides the wall time, ``PERF_COUNT`` gives the time of the
convolution/matmul nodes alone. Whatever ratio these big layers reach is the most a whole
network can reach on this CPU with this runtime: no Q/DQ placement can beat it.

``--runtime onnxruntime`` builds the INT8 stack the way ORT wants it (uint8 activations, zero
point 0 after ReLU, a Q after every layer), so ORT fuses each layer into QLinearConv /
QLinearMatMul (its U8S8 MLAS kernels, VNNI where the CPU has it); only wall time there.

    python bench/experiments/quant_vnni_ceiling.py --json out/quant/vnni_ceiling.json
    python bench/experiments/quant_vnni_ceiling.py --runtime onnxruntime --json out/quant/ort_ceiling.json
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

DEPTH = 6
# (name, batch, channels, hw, kernel): DEPTH Conv(c->c)+ReLU layers.
CONVS = [
    ("conv3x3 64ch 40x40", 32, 64, 40, 3),
    ("conv3x3 128ch 20x20", 32, 128, 20, 3),
    ("conv3x3 256ch 10x10", 32, 256, 10, 3),
    ("conv3x3 512ch 5x5", 32, 512, 5, 3),
    ("conv1x1 256ch 20x20", 32, 256, 20, 1),
]
MATMUL = ("matmul 2048x1024 @ 1024x1024", 2048, 1024)


def _qdq(nodes, inits, x: str, scale: float, tag: str, u8: bool = False) -> str:
    from onnx import helper, numpy_helper

    inits += [numpy_helper.from_array(np.array(scale, np.float32), f"{tag}_s"),
              numpy_helper.from_array(np.array(0, np.uint8 if u8 else np.int8), f"{tag}_z")]
    nodes += [helper.make_node("QuantizeLinear", [x, f"{tag}_s", f"{tag}_z"], [f"{tag}_q"]),
              helper.make_node("DequantizeLinear", [f"{tag}_q", f"{tag}_s", f"{tag}_z"],
                               [f"{tag}_dq"])]
    return f"{tag}_dq"


def _weight(nodes, inits, w: np.ndarray, conv: bool, int8: bool, tag: str) -> str:
    from onnx import helper, numpy_helper

    if not int8:
        inits.append(numpy_helper.from_array(w.astype(np.float32), tag))
        return tag
    amax = np.abs(w).reshape(w.shape[0], -1).max(1) if conv else np.abs(w).max(0)
    scale = (amax / 127).astype(np.float32)
    shape = [-1] + [1] * (w.ndim - 1) if conv else [1, -1]
    q = np.clip(np.rint(w / scale.reshape(shape)), -128, 127).astype(np.int8)
    inits += [numpy_helper.from_array(q, f"{tag}_q"), numpy_helper.from_array(scale, f"{tag}_s"),
              numpy_helper.from_array(np.zeros(len(scale), np.int8), f"{tag}_z")]
    nodes.append(helper.make_node("DequantizeLinear", [f"{tag}_q", f"{tag}_s", f"{tag}_z"],
                                  [tag], axis=0 if conv else 1))
    return tag


def build(path: Path, weights: list[np.ndarray], shape, conv: bool, int8: bool,
          u8: bool = False) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits = [], []
    x = "x"
    for i, w in enumerate(weights):
        if int8:
            x = _qdq(nodes, inits, x, 3.0 / (255 if u8 else 127), f"a{i}", u8)
        wname = _weight(nodes, inits, w, conv, int8, f"w{i}")
        if conv:
            inits.append(numpy_helper.from_array(np.zeros(w.shape[0], np.float32), f"b{i}"))
            k = w.shape[-1]
            nodes.append(helper.make_node("Conv", [x, wname, f"b{i}"], [f"c{i}"],
                                          pads=[k // 2] * 4))
        else:
            nodes.append(helper.make_node("MatMul", [x, wname], [f"c{i}"]))
        nodes.append(helper.make_node("Relu", [f"c{i}"], [f"y{i}"]))
        x = f"y{i}"
    if int8 and u8:  # ORT fuses a layer into QLinear* only when a Q follows it
        x = _qdq(nodes, inits, x, 3.0 / 255, "out", u8)
    nodes.append(helper.make_node("Identity", [x], ["y"]))
    g = helper.make_graph(nodes, "stack", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                         shape)],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)], inits)
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def time_pair(files: dict[str, Path], x: np.ndarray, min_s: float, threads: int) -> dict:
    """-> {name: (median wall s, median s in Convolution/MatMul/FullyConnected nodes)}."""
    import openvino as ov

    core = ov.Core()
    cfg = {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY", "PERF_COUNT": True}
    if threads:
        cfg["INFERENCE_NUM_THREADS"] = threads
    reqs = {k: core.compile_model(core.read_model(str(p)), "CPU", cfg).create_infer_request()
            for k, p in files.items()}
    for r in reqs.values():
        r.infer({0: x})
        r.infer({0: x})
    wall: dict[str, list[float]] = {k: [] for k in reqs}
    kern: dict[str, list[float]] = {k: [] for k in reqs}
    kinds: dict[str, set[str]] = {k: set() for k in reqs}
    t_end = time.perf_counter() + min_s
    while time.perf_counter() < t_end or len(wall["fp32"]) < 5:
        for k, r in reqs.items():
            t0 = time.perf_counter()
            r.infer({0: x})
            wall[k].append(time.perf_counter() - t0)
            heavy = [p for p in r.get_profiling_info() if p.node_type in
                     ("Convolution", "MatMul", "FullyConnected", "FullyConnectedQuantizedLegacy")
                     and p.status.name == "EXECUTED"]
            kern[k].append(sum(p.real_time.total_seconds() for p in heavy))
            kinds[k].update(p.exec_type for p in heavy)
    return {k: (statistics.median(wall[k]), statistics.median(kern[k]), sorted(kinds[k]))
            for k in reqs}


def time_pair_ort(files: dict[str, Path], x: np.ndarray, min_s: float, threads: int) -> dict:
    import onnxruntime as ort

    sess = {}
    for k, p in files.items():
        o = ort.SessionOptions()
        o.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            o.intra_op_num_threads = threads
        sess[k] = ort.InferenceSession(str(p), o, providers=["CPUExecutionProvider"])
    for s in sess.values():
        s.run(None, {"x": x})
        s.run(None, {"x": x})
    wall: dict[str, list[float]] = {k: [] for k in sess}
    t_end = time.perf_counter() + min_s
    while time.perf_counter() < t_end or len(wall["fp32"]) < 5:
        for k, s in sess.items():
            t0 = time.perf_counter()
            s.run(None, {"x": x})
            wall[k].append(time.perf_counter() - t0)
    return {k: (statistics.median(v), statistics.median(v), ["ort"]) for k, v in wall.items()}


def _row(name: str, gmac: float, t: dict) -> dict:
    (fw, fk, fkind), (iw, ik, ikind) = t["fp32"], t["int8"]
    return {"case": name, "fp32_wall_ms": fw * 1e3, "int8_wall_ms": iw * 1e3,
            "wall_int8_over_fp32": fw / iw, "fp32_kernel_gmac_s": gmac / fk,
            "int8_kernel_gmac_s": gmac / ik, "kernel_int8_over_fp32": fk / ik,
            "kernels": {"fp32": fkind, "int8": ikind}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--min-s", type=float, default=3.0)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--runtime", choices=["openvino", "onnxruntime"], default="openvino")
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    ort_mode = a.runtime == "onnxruntime"
    rng = np.random.default_rng(0)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        cases = [(name, n, c, hw, k, True) for name, n, c, hw, k in CONVS]
        cases.append((MATMUL[0], MATMUL[1], MATMUL[2], None, None, False))
        for name, n, c, hw, k, conv in cases:
            wshape = (c, c, k, k) if conv else (c, c)
            ws = [rng.standard_normal(wshape).astype(np.float32) * (1.0 / np.sqrt(np.prod(wshape[1:])))
                  for _ in range(DEPTH)]
            shape = [n, c, hw, hw] if conv else [n, c]
            x = np.abs(rng.standard_normal(shape)).astype(np.float32)
            files = {}
            for prec in ("fp32", "int8"):
                files[prec] = Path(tmp) / f"{prec}.onnx"
                build(files[prec], ws, shape, conv, prec == "int8", u8=ort_mode)
            t = (time_pair_ort if ort_mode else time_pair)(files, x, a.min_s, a.threads)
            gmac = DEPTH * (n * c * c * k * k * hw * hw if conv else n * c * c) / 1e9
            rows.append(_row(name, gmac, t))
            r = rows[-1]
            print(f"{name:32s} wall {r['wall_int8_over_fp32']:.2f}x  kernels "
                  f"{r['kernel_int8_over_fp32']:.2f}x  ({r['fp32_kernel_gmac_s']:.0f} -> "
                  f"{r['int8_kernel_gmac_s']:.0f} GMAC/s)  {r['kernels']}", flush=True)
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps({"runtime": a.runtime, "depth": DEPTH, "rows": rows},
                                     indent=1))


if __name__ == "__main__":
    main()

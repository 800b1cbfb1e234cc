"""Where OpenVINO spends the time of an FP32 and an INT8 descriptor, layer by layer.

Compiles both files with ``PERF_COUNT`` on, runs ``--calls`` inferences at ``--batch``
alternately, and sums ``get_profiling_info()`` per layer *type* and *kernel* (exec_type, e.g.
``brgconv_avx512_I8`` vs ``brgconv_avx512_FP32``), plus the layers that still run in float in the
INT8 model. Medians per call; the machine is shared, so read the shares, not the milliseconds.

    python bench/experiments/quant_ov_profile.py --model ct-image-r18s --batch 32
    python bench/experiments/quant_ov_profile.py --fp32 a.onnx --int8 a.int8.onnx --shape 32,1,64,76
"""
from __future__ import annotations

import argparse
import json
import statistics
from collections import defaultdict
from pathlib import Path

import numpy as np


def _compile(path: Path, threads: int):
    import openvino as ov

    core = ov.Core()
    cfg = {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY", "PERF_COUNT": True}
    if threads:
        cfg["INFERENCE_NUM_THREADS"] = threads
    compiled = core.compile_model(core.read_model(str(path)), "CPU", cfg)
    return compiled, compiled.create_infer_request()


def profile(files: dict[str, Path], shape: tuple[int, ...], calls: int, threads: int) -> dict:
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    reqs = {k: _compile(p, threads)[1] for k, p in files.items()}
    for r in reqs.values():
        r.infer({0: x})
        r.infer({0: x})
    per_layer: dict[str, dict[str, list[float]]] = {k: defaultdict(list) for k in reqs}
    info: dict[str, dict[str, tuple[str, str]]] = {k: {} for k in reqs}
    wall: dict[str, list[float]] = {k: [] for k in reqs}
    import time

    for _ in range(calls):
        for k, r in reqs.items():
            t0 = time.perf_counter()
            r.infer({0: x})
            wall[k].append(time.perf_counter() - t0)
            for p in r.get_profiling_info():
                if p.status.name != "EXECUTED":
                    continue
                per_layer[k][p.node_name].append(p.real_time.total_seconds() * 1e3)
                info[k][p.node_name] = (p.node_type, p.exec_type)
    out = {}
    for k in reqs:
        med = {n: statistics.median(v) for n, v in per_layer[k].items()}
        by_type: dict[str, float] = defaultdict(float)
        by_kernel: dict[str, float] = defaultdict(float)
        for n, ms in med.items():
            t, e = info[k][n]
            by_type[t] += ms
            by_kernel[f"{t}:{e}"] += ms
        total = sum(med.values())
        float_convs = [n for n, (t, e) in info[k].items()
                       if t in ("Convolution", "FullyConnected", "MatMul") and "I8" not in e
                       and "i8" not in e and "u8" not in e.lower()]
        out[k] = {
            "wall_ms": statistics.median(wall[k]) * 1e3, "layers_ms": total,
            "by_type_ms": dict(sorted(by_type.items(), key=lambda kv: -kv[1])),
            "by_kernel_ms": dict(sorted(by_kernel.items(), key=lambda kv: -kv[1])),
            "top_layers": sorted(((n, *info[k][n], round(ms, 3)) for n, ms in med.items()),
                                 key=lambda r: -r[3])[:15],
            "float_weight_layers": float_convs,
            "n_reorders": sum(1 for t, _ in info[k].values() if t == "Reorder"),
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="registry name (image descriptor)")
    ap.add_argument("--fp32", type=Path)
    ap.add_argument("--int8", type=Path, nargs="+", help="one or more INT8 files to compare")
    ap.add_argument("--shape", default=None, help="input shape, e.g. 32,3,160,160")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--calls", type=int, default=10)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    if a.model:
        from copytrace.models.registry import get_spec

        spec = get_spec(a.model)
        files = {"fp32": spec.path("fp32"), "int8": spec.path("int8")}
        shape = (a.batch, 3, *spec.input_size)
    else:
        files = {"fp32": a.fp32}
        files.update({f"int8:{p.parent.name}/{p.name}": p for p in a.int8})
        shape = tuple(int(v) for v in a.shape.split(","))
    if a.int8 and a.model:
        files.update({f"int8:{p.parent.name}/{p.name}": p for p in a.int8})
    res = profile(files, shape, a.calls, a.threads)
    base = res["fp32"]["wall_ms"]
    for k, r in res.items():
        print(f"\n== {k}: wall {r['wall_ms']:.1f} ms/call (fp32/this {base / r['wall_ms']:.2f}x),"
              f" layers {r['layers_ms']:.1f} ms, reorders {r['n_reorders']}")
        for kern, ms in list(r["by_kernel_ms"].items())[:12]:
            print(f"   {ms:8.2f} ms {100 * ms / r['layers_ms']:5.1f}%  {kern}")
        if k != "fp32":
            print("   float weight layers:", r["float_weight_layers"] or "none")
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps({"shape": shape, "results": res}, indent=1))


if __name__ == "__main__":
    main()

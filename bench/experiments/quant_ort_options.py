"""ONNX Runtime session options vs the INT8/FP32 ratio of a descriptor (U8 variant).

Each option set builds an FP32 and an INT8 session and times them alternately (medians), so
every row's ratio is paired; rows run one after another on a shared machine, so compare ratios,
not rates, across rows. Also reports which operators ORT's optimizer left in the INT8 graph
(QLinearConv count, float Conv/FusedConv left over).

    python bench/experiments/quant_ort_options.py --model ct-image-r18s --batches 1,32
    python bench/experiments/quant_ort_options.py --model ct-image-r18s --int8-file other.int8-u8.onnx
"""
from __future__ import annotations

import argparse
import collections
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

OPTION_SETS = {
    "default (ALL, threads auto)": {},
    "no spinning": {"spin": False},
    "EXTENDED level": {"level": "EXTENDED"},
    "BASIC level": {"level": "BASIC"},
    "intra 1 thread": {"threads": 1},
    "intra 2 threads, no spinning": {"threads": 2, "spin": False},
    "sequential, mem pattern off": {"mem_pattern": False},
}


def _session(path: Path, opts: dict, optimized: Path | None = None):
    import onnxruntime as ort

    o = ort.SessionOptions()
    o.graph_optimization_level = getattr(ort.GraphOptimizationLevel,
                                         f"ORT_ENABLE_{opts.get('level', 'ALL')}")
    if "threads" in opts:
        o.intra_op_num_threads = opts["threads"]
    if "spin" in opts:
        o.add_session_config_entry("session.intra_op.allow_spinning", "1" if opts["spin"] else "0")
    if "mem_pattern" in opts:
        o.enable_mem_pattern = opts["mem_pattern"]
    if optimized is not None:
        o.optimized_model_filepath = str(optimized)
    return ort.InferenceSession(str(path), o, providers=["CPUExecutionProvider"])


def paired(fp32, int8, x: np.ndarray, min_s: float) -> tuple[float, float]:
    name = fp32.get_inputs()[0].name
    for s in (fp32, int8):
        s.run(None, {name: x})
        s.run(None, {name: x})
    tf, ti = [], []
    t_end = time.perf_counter() + min_s
    while time.perf_counter() < t_end or len(tf) < 5:
        for s, acc in ((fp32, tf), (int8, ti)):
            t0 = time.perf_counter()
            s.run(None, {name: x})
            acc.append(time.perf_counter() - t0)
    return len(x) / statistics.median(tf), len(x) / statistics.median(ti)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="ct-image-r18s")
    ap.add_argument("--int8-file", type=Path, default=None, help="default: the registry's U8")
    ap.add_argument("--batches", default="1,32")
    ap.add_argument("--min-s", type=float, default=4.0)
    ap.add_argument("--sets", default=None, help="'|'-separated subset of the option sets")
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    from copytrace.models.registry import get_spec

    spec = get_spec(a.model)
    fp32_path, int8_path = spec.path("fp32"), a.int8_file or spec.path("int8-u8")
    with tempfile.TemporaryDirectory() as tmp:
        _session(int8_path, {}, Path(tmp) / "opt.onnx")
        import onnx

        ops = collections.Counter(n.op_type for n in onnx.load(str(Path(tmp) / "opt.onnx")).graph.node)
    print("INT8 graph after ORT's optimizer:", dict(ops))
    rows = []
    names = a.sets.split("|") if a.sets else list(OPTION_SETS)
    for batch in (int(b) for b in a.batches.split(",")):
        x = np.random.default_rng(0).standard_normal((batch, 3, *spec.input_size)).astype(np.float32)
        for name in names:
            opts = OPTION_SETS[name]
            f, q = paired(_session(fp32_path, opts), _session(int8_path, opts), x, a.min_s)
            rows.append({"options": name, "batch": batch, "fp32_per_s": f, "int8_per_s": q,
                         "int8_over_fp32": q / f})
            print(f"batch {batch:3d}  {name:32s} fp32 {f:7.1f}/s  int8 {q:7.1f}/s  {q / f:.2f}x",
                  flush=True)
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps({"int8_file": str(int8_path), "ops": dict(ops),
                                      "rows": rows}, indent=1))


if __name__ == "__main__":
    main()

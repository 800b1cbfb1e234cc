"""Descriptor throughput, FP32 vs INT8, per runtime, at batch 1 and 32, with peak memory.

Two kinds of measurement, all in one invocation:
* ratios: per (runtime, batch), one subprocess loads the FP32 and the INT8 encoder and calls
  them alternately (copytrace.recipes.speed.paired_throughput, medians), so load from other
  processes on a shared machine hits both alike;
* peak memory: every (runtime, precision, batch) cell in its own subprocess, so its peak RSS
  (and its own median rate) is that cell's alone.

    python bench/speed.py --model ct-image-r18s --json out/speed.json
    python bench/speed.py --fp32 a.onnx --int8 a.int8.onnx --int8-u8 a.int8-u8.onnx --size 160
"""
from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

# ORT INT8 reads the U8-activation variant (runtime/onnxruntime.py); OpenVINO the S8 QDQ file.
CELLS = [("openvino", "fp32"), ("openvino", "int8"), ("onnxruntime", "fp32"), ("onnxruntime", "int8")]


def _spec(args):
    from copytrace.models.registry import DescriptorSpec, get_spec

    if args.model:
        return get_spec(args.model)
    files = [Path(p).resolve() for p in (args.fp32, args.int8, args.int8_u8)]
    dirs = {p.parent for p in files}
    if len(dirs) != 1:
        raise SystemExit("--fp32/--int8/--int8-u8 must sit in one directory")
    return DescriptorSpec(
        name="bench", version="0", media="image", file=files[0].name, int8_file=files[1].name,
        int8_u8_file=files[2].name, input_size=(args.size, args.size), resize="squash",
        mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), dims=args.dims,
        directory=str(dirs.pop()),
    )


def run_cell(args) -> dict:
    import numpy as np

    from copytrace.runtime import load_encoder

    spec = _spec(args)
    if args.size:
        spec = replace(spec, input_size=(args.size, args.size))
    enc = load_encoder(spec, args.backend, args.precision, threads=args.threads)
    h, w = spec.input_size
    x = np.random.default_rng(0).standard_normal((args.batch, 3, h, w)).astype(np.float32)
    for _ in range(3):
        enc.encode(x)
    # Enough calls for ~min_s of work, at least `repeats`.
    t0 = time.perf_counter()
    enc.encode(x)
    one = max(time.perf_counter() - t0, 1e-4)
    n = max(args.repeats, int(args.min_s / one))
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        enc.encode(x)
        times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    return {
        "backend": args.backend, "precision": args.precision, "batch": args.batch,
        "median_batch_s": med, "descriptors_per_s": args.batch / med, "calls": n,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "input_size": [h, w],
    }


def run_pair(args) -> dict:
    from copytrace.recipes.speed import paired_throughput
    from copytrace.runtime import load_encoder

    spec = _spec(args)
    if args.size:
        spec = replace(spec, input_size=(args.size, args.size))
    encs = {p: load_encoder(spec, args.backend, p, threads=args.threads) for p in ("fp32", "int8")}
    r = paired_throughput({p: e.encode for p, e in encs.items()}, args.batch,
                          tuple(spec.input_size), min_s=args.min_s)
    return {"backend": args.backend, "batch": args.batch, "fp32_per_s": r["fp32"],
            "int8_per_s": r["int8"], "int8_over_fp32": r["int8"] / r["fp32"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--model", help="registry name (uses its fp32/int8/int8-u8 files)")
    ap.add_argument("--fp32"), ap.add_argument("--int8"), ap.add_argument("--int8-u8")
    ap.add_argument("--size", type=int, default=0, help="square input side (default: spec's)")
    ap.add_argument("--dims", type=int, default=256)
    ap.add_argument("--batches", default="1,32")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--min-s", type=float, default=4.0, help="timed seconds per cell (about)")
    ap.add_argument("--json", help="write results here")
    ap.add_argument("--cell", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--pair", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--backend"), ap.add_argument("--precision"), ap.add_argument("--batch", type=int)
    args = ap.parse_args()
    if not args.model and not all((args.fp32, args.int8, args.int8_u8)):
        ap.error("give --model, or all of --fp32 --int8 --int8-u8")
    if args.cell:
        print(json.dumps(run_cell(args)))
        return
    if args.pair:
        print(json.dumps(run_pair(args)))
        return
    base = [sys.executable, __file__]
    for k in ("model", "fp32", "int8", "int8_u8"):
        v = getattr(args, k)
        if v:
            base += [f"--{k.replace('_', '-')}", v]
    base += ["--size", str(args.size), "--dims", str(args.dims), "--threads", str(args.threads),
             "--repeats", str(args.repeats), "--min-s", str(args.min_s)]
    rows = []
    for batch in [int(b) for b in args.batches.split(",")]:
        for backend, precision in CELLS:
            cmd = base + ["--cell", "--backend", backend, "--precision", precision,
                          "--batch", str(batch)]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            row = json.loads(out.strip().splitlines()[-1])
            rows.append(row)
            print(f"{backend:12s} {precision:5s} batch {batch:3d}: "
                  f"{row['descriptors_per_s']:9.1f} desc/s  peak {row['peak_rss_mb']:7.1f} MB",
                  flush=True)
    ratios = {}
    for batch in [int(b) for b in args.batches.split(",")]:
        for backend in ("openvino", "onnxruntime"):
            cmd = base + ["--pair", "--backend", backend, "--batch", str(batch)]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            r = json.loads(out.strip().splitlines()[-1])
            ratios[f"{backend}@{batch}"] = r
            print(f"paired {backend:12s} batch {batch:3d}: fp32 {r['fp32_per_s']:8.1f}/s  "
                  f"int8 {r['int8_per_s']:8.1f}/s  INT8/FP32 {r['int8_over_fp32']:.2f}x", flush=True)
    result = {"machine": platform.processor() or platform.machine(), "cpu": _cpu_name(),
              "rows": rows, "int8_over_fp32": ratios}
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2))


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    main()

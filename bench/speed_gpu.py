"""GPU descriptor throughput and the 8-bit backend's accuracy gate, in one run on one GPU.

    python bench/speed_gpu.py --model ct-image-r18s --batches 256,1024 --val data/images \
        --json out/speed_gpu.json

The shipped network (FP32 ONNX for the float cells, its QDQ INT8 file for the 8-bit one):
fp32 eager, tf32 eager, bf16 channels-last eager, bf16 + torch.compile, and the Triton INT8
backend (runtime/triton_int8.py). Images/s are medians of CUDA-event-timed batches after
warm-up; GPU memory per batch is the peak allocated during a forward above what the weights
hold. With ``--val``: the validation µAP (the quantize report's metric) of FP32, of the INT8
reference arithmetic (runtime/qdq_plan.reference_forward) and of the Triton backend, and the
per-descriptor parity of Triton vs that reference.
"""
from __future__ import annotations

import argparse
import itertools
import json
import statistics
import time
from pathlib import Path


def _time(fn, x, iters: int) -> float:
    import torch

    for _ in range(5):
        fn(x)
    torch.cuda.synchronize()
    ts = []
    for _ in range(iters):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn(x)
        b.record()
        b.synchronize()
        ts.append(a.elapsed_time(b) / 1e3)
    return x.shape[0] / statistics.median(ts)


def _peak_bytes(fn, x) -> int:
    import torch

    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    fn(x)
    torch.cuda.synchronize()
    return int(torch.cuda.max_memory_allocated() - base)


def _steps(net, x, iters: int) -> list:
    """Median time of each step of the INT8 network (CUDA events between launches)."""
    import torch

    times = []
    for _ in range(iters):
        ev: list = []
        net(x, events=ev)
        torch.cuda.synchronize()
        times.append([a.elapsed_time(b) for a, b in itertools.pairwise(ev)])
    names = ["quantize input"]
    for st, lay in zip(net.plan.steps, net.layers):
        if lay is None:
            names.append(f"maxpool {st.kernel}x{st.kernel}/{st.stride}")
        else:
            names.append(f"conv {lay['cin']}->{lay['cout']} {lay['k']}x{lay['k']}/{st.stride}"
                         + (" +res" if st.residual else ""))
    names.append("head (GeM, proj, norm)")
    return [{"step": n, "ms": statistics.median(t[i] for t in times)}
            for i, n in enumerate(names)]


def _gate(spec, fp32_net, int8_net, plan, data: Path) -> dict:
    import numpy as np
    import torch

    from copytrace.recipes.image_task import load_val_set, preprocess, uap_from_descriptors
    from copytrace.runtime.qdq_plan import reference_forward

    val = load_val_set(data)
    size = spec.input_size[0]
    fns = {"fp32": fp32_net, "int8_reference": lambda x: reference_forward(plan, x),
           "int8_triton": int8_net}
    desc = {}
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    with torch.inference_mode():
        for name, fn in fns.items():
            desc[name] = {}
            for part in ("refs", "queries"):
                imgs = getattr(val, part)
                out = [fn(torch.from_numpy(preprocess(imgs[i:i + 256], size)).cuda()).float()
                       for i in range(0, len(imgs), 256)]
                d = torch.nn.functional.normalize(torch.cat(out), dim=1).cpu().numpy()
                desc[name][part] = d
    truth = val.truth.numpy()
    uap = {k: uap_from_descriptors(d["queries"], d["refs"], truth) for k, d in desc.items()}
    cos = np.concatenate([(desc["int8_triton"][p] * desc["int8_reference"][p]).sum(1)
                          for p in ("refs", "queries")])
    # the same arithmetic in float64 on the first 256 queries: rounding out of the way
    with torch.inference_mode():
        x = torch.from_numpy(preprocess(val.queries[:256], size)).cuda()
        r64 = reference_forward(plan, x, torch.float64).float().cpu().numpy()
    cos64 = (desc["int8_triton"]["queries"][:256] * r64).sum(1)
    return {
        "triton_vs_reference_fp64": {"min_cosine": float(cos64.min()),
                                     "mean_cosine": float(cos64.mean()),
                                     "share_cosine_ge_0999": float((cos64 >= 0.999).mean()),
                                     "n": len(cos64)},
        "uap": uap, "gap_vs_fp32": {k: (uap["fp32"] - v) / uap["fp32"] for k, v in uap.items()},
        "triton_vs_reference": {"min_cosine": float(cos.min()), "mean_cosine": float(cos.mean()),
                                "share_cosine_ge_0999": float((cos >= 0.999).mean())},
        "n_refs": len(val.refs), "n_queries": len(val.queries),
    }


def main() -> None:
    import torch

    from copytrace.models.registry import get_spec
    from copytrace.runtime.qdq_plan import read_plan
    from copytrace.runtime.torch_cuda import load_descriptor_net
    from copytrace.runtime.triton_int8 import Int8Network

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default="ct-image-r18s")
    ap.add_argument("--batches", default="1024,256")
    ap.add_argument("--iters", type=int, default=30)
    ap.add_argument("--compile-mode", default="max-autotune",
                    help="torch.compile mode of the bf16 cell ('none' skips it)")
    ap.add_argument("--val", type=Path, default=None, help="data dir with val/ (accuracy gate)")
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    spec = get_spec(a.model)
    h, w = spec.input_size
    model = load_descriptor_net(spec).cuda().eval()
    plan = read_plan(spec.path("int8"))
    t0 = time.perf_counter()
    int8 = Int8Network(plan, "cuda")
    out = {"device": torch.cuda.get_device_name(), "torch": torch.__version__,
           "model": spec.name, "size": [h, w], "descriptors_per_s": {}, "peak_mib_per_batch": {},
           "compile_s": {}}

    def save():
        if a.json:
            a.json.parent.mkdir(parents=True, exist_ok=True)
            a.json.write_text(json.dumps(out, indent=1))

    if a.val:
        out["gate"] = _gate(spec, model, int8, plan, a.val)
        print(json.dumps(out["gate"], indent=1), flush=True)
        save()

    def bf16(net):
        def run(inp):
            with torch.autocast("cuda", dtype=torch.bfloat16):
                return net(inp)
        return run

    rows, mem = out["descriptors_per_s"], out["peak_mib_per_batch"]
    with torch.inference_mode():
        for batch in [int(b) for b in a.batches.split(",")]:
            x = torch.randn(batch, 3, h, w, device="cuda")
            cells = {}
            t = time.perf_counter()
            int8(x)
            torch.cuda.synchronize()
            out["compile_s"][f"int8_triton@{batch}"] = time.perf_counter() - t
            cells["int8_triton"] = (int8, x)
            out[f"int8_steps_ms@{batch}"] = _steps(int8, x, a.iters)
            torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
            cells["fp32_eager"] = (model, x)
            m = model.to(memory_format=torch.channels_last)
            xc = x.contiguous(memory_format=torch.channels_last)
            cells["bf16_cl_eager"] = (bf16(m), xc)
            for name, (fn, inp) in cells.items():
                if name == "int8_triton":
                    int8._buffers.clear()  # its activation buffers count as working memory
                    mem[f"{name}@{batch}"] = _peak_bytes(fn, inp) / 2**20
                if name == "fp32_eager":
                    torch.backends.cudnn.allow_tf32 = False
                    torch.backends.cuda.matmul.allow_tf32 = False
                rows[f"{name}@{batch}"] = _time(fn, inp, a.iters)
                if name != "int8_triton":
                    mem[f"{name}@{batch}"] = _peak_bytes(fn, inp) / 2**20
                if name == "fp32_eager":
                    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = True
                    rows[f"tf32_eager@{batch}"] = _time(fn, inp, a.iters)
                print(f"{name}@{batch}: {rows[f'{name}@{batch}']:.0f}/s", flush=True)
                save()
            if a.compile_mode != "none":
                t = time.perf_counter()
                comp = bf16(torch.compile(m, mode=a.compile_mode, dynamic=False))
                # first call: compiles and records its graphs' memory pool, which then stays
                mem[f"bf16_cl_compiled@{batch}"] = _peak_bytes(comp, xc) / 2**20
                out["compile_s"][f"bf16_cl_compiled@{batch}"] = time.perf_counter() - t
                rows[f"bf16_cl_compiled@{batch}"] = _time(comp, xc, a.iters)
            for k in sorted(k for k in rows if k.endswith(f"@{batch}")):
                print(f"{k:26s} {rows[k]:10.0f} img/s  peak {mem.get(k, float('nan')):8.1f} MiB",
                      flush=True)
            c = rows.get(f"bf16_cl_compiled@{batch}")
            if c:
                out[f"int8_over_bf16_compiled@{batch}"] = rows[f"int8_triton@{batch}"] / c
            save()
    out["setup_s"] = time.perf_counter() - t0
    save()


if __name__ == "__main__":
    main()

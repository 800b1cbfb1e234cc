"""GPU descriptor throughput: torch FP32 eager vs TF32 vs bf16 + channels_last + torch.compile.

    python bench/speed_gpu.py --weights weights/ct-image-r18s.pt --size 160 --json out.json

Medians of CUDA-event-timed batches after warm-up, all cells in one process and one run.
PyTorch has no INT8 convolution; the INT8 GPU path is TensorRT (runtime/tensorrt.py).
"""
from __future__ import annotations

import argparse
import json
import statistics
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


def main() -> None:
    import torch

    from copytrace.models.resnet import DescriptorNet, NetConfig

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--weights", type=Path, default=None)
    ap.add_argument("--net", default="{}", help="NetConfig JSON (spec training.net)")
    ap.add_argument("--size", type=int, default=160)
    ap.add_argument("--batches", default="32,256")
    ap.add_argument("--iters", type=int, default=30)
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    net_cfg = {k: tuple(v) if isinstance(v, list) else v for k, v in json.loads(a.net).items()}
    model = DescriptorNet(NetConfig(**net_cfg))
    if a.weights:
        model.load_state_dict(torch.load(a.weights, map_location="cpu", weights_only=True))
    model = model.cuda().eval()
    rows = {}
    with torch.inference_mode():
        for batch in [int(b) for b in a.batches.split(",")]:
            x = torch.randn(batch, 3, a.size, a.size, device="cuda")
            torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
            rows[f"fp32_eager@{batch}"] = _time(model, x, a.iters)
            torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = True
            rows[f"tf32_eager@{batch}"] = _time(model, x, a.iters)
            # bf16 via autocast: GeM pools in fp32, so weights stay fp32 (as in runtime/torch_cuda)
            m = model.to(memory_format=torch.channels_last)
            xc = x.contiguous(memory_format=torch.channels_last)

            def bf16(net):
                def run(inp):
                    with torch.autocast("cuda", dtype=torch.bfloat16):
                        return net(inp)
                return run

            rows[f"bf16_cl_eager@{batch}"] = _time(bf16(m), xc, a.iters)
            rows[f"bf16_cl_compiled@{batch}"] = _time(bf16(torch.compile(m)), xc, a.iters)
            model = model.to(memory_format=torch.contiguous_format)
            base = rows[f"fp32_eager@{batch}"]
            for k in [k for k in rows if k.endswith(f"@{batch}")]:
                print(f"{k:24s} {rows[k]:10.0f} desc/s  x{rows[k] / base:5.2f}", flush=True)
    out = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "size": a.size,
           "descriptors_per_s": rows}
    if a.json:
        a.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()

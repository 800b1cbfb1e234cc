"""Export a trained state_dict to FP32 ONNX and check it against torch.

    python -m copytrace.train.ship --weights weights/ct-image-r18s.pt --spec OUT/ct-image-r18s.json \
        --out src/copytrace/models/weights
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import torch

from copytrace.models.resnet import DescriptorNet, NetConfig, export_onnx


def load_model(weights: Path, net: NetConfig) -> DescriptorNet:
    model = DescriptorNet(net)
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return model.eval()


def export_checked(weights: Path, net: NetConfig, onnx_path: Path, size: int) -> float:
    """Write the ONNX file; return max |torch - onnxruntime| on a random batch (raises if > 1e-4)."""
    import onnxruntime as ort

    model = load_model(weights, net)
    export_onnx(model, str(onnx_path), (size, size))
    x = torch.randn(3, 3, size, size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref = model(x).numpy()
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"images": x.numpy()})[0]
    err = float(np.abs(got - ref).max())
    if err > 1e-4:
        raise RuntimeError(f"ONNX export differs from torch by {err:.2e} (> 1e-4)")
    return err


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m copytrace.train.ship", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", type=Path, required=True, help="fp32 state_dict (.pt)")
    p.add_argument("--spec", type=Path, required=True, help="spec JSON written by training")
    p.add_argument("--out", type=Path, required=True, help="weights folder of the registry")
    args = p.parse_args(argv)
    spec = json.loads(args.spec.read_text())
    net = NetConfig(**{k: tuple(v) if isinstance(v, list) else v
                       for k, v in spec["training"]["net"].items()})
    args.out.mkdir(parents=True, exist_ok=True)
    err = export_checked(args.weights, net, args.out / spec["file"], spec["input_size"][0])
    if args.spec.resolve() != (args.out / f"{spec['name']}.json").resolve():
        shutil.copyfile(args.spec, args.out / f"{spec['name']}.json")
    print(f"wrote {args.out / spec['file']} (max |torch - onnxruntime| {err:.2e})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

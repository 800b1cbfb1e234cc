"""Export a randomly initialised DescriptorNet + registry entry, to develop benchmarks before
trained weights exist (needs torch: the [train] extra).

    python bench/random_descriptor.py --out /tmp/ct-random --size 160
    python bench/images.py --model /tmp/ct-random/ct-image-r18s.json ...
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="directory for <name>.onnx and <name>.json")
    ap.add_argument("--name", default="ct-image-r18s")
    ap.add_argument("--size", type=int, default=160, help="square input side in pixels")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    import torch

    from copytrace.models.resnet import DescriptorNet, NetConfig, export_onnx

    torch.manual_seed(args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = NetConfig()
    export_onnx(DescriptorNet(cfg), str(out / f"{args.name}.onnx"), (args.size, args.size))
    spec = {
        "name": args.name, "version": "random-0", "media": "image", "file": f"{args.name}.onnx",
        "input_size": [args.size, args.size], "resize": "squash",
        "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225], "dims": cfg.dims,
        "threshold_similarity": 0.5, "calibration": "none: random weights for development",
    }
    (out / f"{args.name}.json").write_text(json.dumps(spec, indent=2) + "\n")
    print(out / f"{args.name}.json")


if __name__ == "__main__":
    main()

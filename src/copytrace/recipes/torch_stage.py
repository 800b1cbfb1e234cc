"""The torch stage of ``copytrace quantize`` as a plain script (no click), for GPU machines:

    python -m copytrace.recipes.torch_stage --weights weights/ct-image-r18s.pt \
        --data data/images --device cuda --state OUT/qstate.pt --report OUT/report.json
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from copytrace.quant.config import CALIBRATION_METHODS


def run(weights: Path, net: dict | None, data: Path, size: int, device: str, method: str,
        calibration: str, qat_steps: int, qat_lrs: tuple[float, ...], qat_batch: int,
        gate: float, sensitivity: bool):
    """FP32 + PTQ (+ QAT) + sensitivity + mixed precision -> (fake-quant model, report)."""
    import torch

    from copytrace.quant.config import FinetuneConfig, QuantRecipe
    from copytrace.quant.pipeline import quantize
    from copytrace.recipes.image_task import load_fp32_model, load_image_task

    if device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False  # INT8 decisions want true fp32 math
        torch.backends.cudnn.allow_tf32 = False
    fp32_model = load_fp32_model(weights, net)
    task = load_image_task(Path(data), size, device, qat_batch=qat_batch)
    methods = CALIBRATION_METHODS if calibration == "auto" else (calibration,)
    qat = tuple(FinetuneConfig(steps=qat_steps, lr=lr) for lr in qat_lrs) if method == "qat" else ()
    recipe = QuantRecipe(methods, qat, gate, sensitivity)
    model, report = quantize(fp32_model, recipe, task.forward_loop, task.evaluate, task.qat_loss,
                             device)
    report.update({"n_val_refs": len(task.val.refs), "n_val_queries": len(task.val.queries),
                   "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
                   "torch": torch.__version__, "input_size": size})
    return fp32_model, model, report


def main(argv: list[str] | None = None) -> int:
    from copytrace.models.registry import get_spec
    from copytrace.quant.pipeline import save_state

    p = argparse.ArgumentParser(prog="python -m copytrace.recipes.torch_stage", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="ct-image-r18s")
    p.add_argument("--weights", type=Path, required=True)
    p.add_argument("--data", type=Path, default=Path("data/images"))
    p.add_argument("--device", default="cuda")
    p.add_argument("--method", choices=["ptq", "qat"], default="qat")
    p.add_argument("--calibration", choices=["auto", *CALIBRATION_METHODS], default="auto")
    p.add_argument("--qat-steps", type=int, default=500)
    p.add_argument("--qat-lr", default="2e-5",
                   help="comma-separated: one QAT run each, the best on validation is kept")
    p.add_argument("--qat-batch", type=int, default=256)
    p.add_argument("--gate", type=float, default=0.002)
    p.add_argument("--no-sensitivity", action="store_true")
    p.add_argument("--state", type=Path, required=True)
    p.add_argument("--report", type=Path, default=None)
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stdout)
    spec = get_spec(a.model)
    _, model, report = run(a.weights, spec.training.get("net"), a.data, spec.input_size[0],
                           a.device, a.method, a.calibration, a.qat_steps,
                           tuple(float(v) for v in a.qat_lr.split(",")), a.qat_batch,
                           a.gate, not a.no_sensitivity)
    a.state.parent.mkdir(parents=True, exist_ok=True)
    save_state(model, report, a.state)
    if a.report:
        a.report.write_text(json.dumps(report, indent=1))
    print(json.dumps({k: v for k, v in report.items() if k != "sensitivity"}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

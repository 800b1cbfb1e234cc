"""The quantization recipe as one function: FP32 metric, PTQ with each calibration method,
per-layer sensitivity, optional QAT, and mixed precision when the gate is missed.

Returns the chosen fake-quantized model and a plain-dict report (JSON-ready).
"""
from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable

import torch
from torch import nn

from copytrace.quant.calibration import collect_statistics, load_amax
from copytrace.quant.config import QuantConfig, QuantRecipe
from copytrace.quant.placement import prepare, quant_layers, set_float_layers
from copytrace.quant.qat import finetune
from copytrace.quant.sensitivity import choose_float_layers, layer_sensitivity, relative_gap

log = logging.getLogger(__name__)


def quantize(
    fp32_model: nn.Module,
    recipe: QuantRecipe,
    forward_loop: Callable[[nn.Module], None],
    evaluate: Callable[[nn.Module], float],
    qat_loss: Callable[[nn.Module, int], torch.Tensor] | None = None,
    device: str | torch.device = "cpu",
) -> tuple[nn.Module, dict]:
    """FP32 metric, PTQ with each of ``recipe.methods``, the ``recipe.qat`` runs (given a
    ``qat_loss(model, step)``), then mixed precision if the gate is still missed. Returns the
    chosen fake-quantized model and the report."""
    methods, qat, gate, sensitivity = (recipe.methods, recipe.qat, recipe.gate,
                                       recipe.sensitivity)
    t0 = time.perf_counter()
    fp32_model = fp32_model.to(device).eval()
    fp32 = evaluate(fp32_model)
    log.info("fp32 metric %.5f", fp32)
    model = prepare(fp32_model, QuantConfig()).to(device)
    collect_statistics(model, forward_loop)
    ptq = {}
    for method in methods:
        load_amax(model, method)
        ptq[method] = evaluate(model)
        log.info("ptq %-10s metric %.5f (gap %.3f%%)", method, ptq[method],
                 100 * relative_gap(fp32, ptq[method]))
    method = max(methods, key=lambda m: ptq[m])
    load_amax(model, method)
    report: dict = {
        "fp32": fp32, "ptq_by_method": ptq, "calibration": method, "ptq": ptq[method],
        "ptq_gap": relative_gap(fp32, ptq[method]), "gate": gate,
        "n_quant_layers": len(quant_layers(model)),
    }
    sens = []
    if sensitivity is True:
        sens = _sensitivity(model, evaluate, fp32, report)
    chosen, metric = model, ptq[method]
    runs = []
    for cfg in qat if qat_loss is not None else ():
        qmodel = copy.deepcopy(model)
        t_qat = time.perf_counter()
        history = finetune(qmodel, qat_loss, cfg)
        qmetric = evaluate(qmodel)
        log.info("qat lr %.1e: metric %.5f (gap %.3f%%)", cfg.lr, qmetric,
                 100 * relative_gap(fp32, qmetric))
        runs.append({"steps": cfg.steps, "lr": cfg.lr, "metric": qmetric,
                     "gap": relative_gap(fp32, qmetric), "wall_s": time.perf_counter() - t_qat,
                     "loss_first_last": [history[0], history[-1]]})
        if qmetric > metric:
            chosen, metric = qmodel, qmetric
    if runs:
        best = max(runs, key=lambda r: r["metric"])
        # Several QAT runs are a choice made on the validation set, like the calibration.
        report.update({"qat": best["metric"], "qat_gap": best["gap"],
                       "qat_config": {"steps": best["steps"], "lr": best["lr"]}, "qat_runs": runs})
    report["chosen"] = "qat" if chosen is not model else "ptq"
    float_layers: tuple[str, ...] = ()
    if relative_gap(fp32, metric) > gate and sensitivity == "on-miss":
        sens = _sensitivity(chosen, evaluate, fp32, report)
    if relative_gap(fp32, metric) > gate and sens:
        float_layers, metric = choose_float_layers(chosen, evaluate, fp32, sens, gate,
                                                   recipe.max_float_layers)
    set_float_layers(chosen, float_layers)
    report.update({
        "float_layers": list(float_layers), "final": metric,
        "final_gap": relative_gap(fp32, metric),
        "gate_passed": relative_gap(fp32, metric) <= gate, "torch_wall_s": time.perf_counter() - t0,
    })
    return chosen.eval(), report


def _sensitivity(model, evaluate, fp32: float, report: dict):
    sens = layer_sensitivity(model, evaluate, fp32)
    report["sensitivity"] = [
        {"layer": s.name, "metric": s.metric, "loss": s.loss,
         "relative_loss": relative_gap(fp32, s.metric)} for s in sens
    ]
    return sens


def save_state(model: nn.Module, report: dict, path) -> None:
    """The quantized model as state_dict (weights + amax buffers) + float layers + report."""
    net = getattr(model, "cfg", None)
    torch.save({
        "state_dict": {k: v.detach().float().cpu() for k, v in model.state_dict().items()},
        "float_layers": report.get("float_layers", []),
        "net": None if net is None else {k: list(v) if isinstance(v, tuple) else v
                                         for k, v in vars(net).items()},
        "report": report,
    }, path)


def load_state(path, fp32_model: nn.Module) -> tuple[nn.Module, dict]:
    """Rebuild the prepared model saved by ``save_state`` around ``fp32_model``'s structure."""
    blob = torch.load(path, map_location="cpu", weights_only=False)
    model = prepare(fp32_model.cpu(), QuantConfig())
    missing, unexpected = model.load_state_dict(blob["state_dict"], strict=False)
    # States written before the observers existed lack only their amax.
    missing = [k for k in missing if not k.endswith(("branch_observer.amax",
                                                      "input_observer.amax"))]
    if missing or unexpected:
        raise RuntimeError(f"{path}: state does not fit the model: {missing or unexpected}")
    set_float_layers(model, tuple(blob["float_layers"]))
    return model.eval(), blob["report"]

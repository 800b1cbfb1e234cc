"""``copytrace quantize``: INT8 model + report (FP32 vs PTQ vs QAT, sensitivity, speed).

Two stages, so the torch part can run on a GPU machine and the ONNX part here:
  torch stage   FP32 metric, PTQ (max/percentile/mse/entropy), sensitivity, QAT, mixed
                precision; writes a state file (``--state``).
  export stage  QDQ ONNX + U8 variant, TensorRT-rules check, parity (torch vs ONNX Runtime vs
                OpenVINO), µAP of the deployed files, throughput FP32 vs INT8 per runtime;
                fills ``int8_file``/``int8_u8_file`` of the registry entry when the gate holds.
Importing this module is cheap (click only); torch loads when the command runs.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import click

from copytrace.quant.config import CALIBRATION_METHODS

log = logging.getLogger("copytrace.quant")


@click.command("quantize")
@click.option("--model", "model_name", default="ct-image-r18s", show_default=True,
              help="registry name of the descriptor")
@click.option("--method", type=click.Choice(["ptq", "qat"]), default="qat", show_default=True)
@click.option("--weights", type=click.Path(path_type=Path), default=None,
              help="FP32 state_dict (.pt); default weights/NAME.pt")
@click.option("--data", type=click.Path(path_type=Path), default=None,
              help="image: train/ and val/ shards (default data/images); audio: the packs of the "
                   "training calls, whose held-out tracks validate: 'a,b,c' one call per pack, "
                   "'a+b+c' one call on all three (default data/audio/train/pack)")
@click.option("--calibration", type=click.Choice(["auto", *CALIBRATION_METHODS]), default="auto",
              show_default=True, help="auto: try all, keep the best on the validation metric")
@click.option("--qat-steps", type=int, default=None,
              help="QAT steps (image: 500; audio: 200, CPU)")
@click.option("--qat-lr", default="2e-5", show_default=True,
              help="comma-separated learning rates: one QAT run each, best on validation kept")
@click.option("--qat-batch", type=int, default=None,
              help="QAT batch (image: 256 views; audio: 32 clean/degraded pairs)")
@click.option("--gate", type=float, default=0.002, show_default=True,
              help="max relative metric loss vs FP32")
@click.option("--no-sensitivity", is_flag=True, help="skip the per-layer sensitivity sweep")
@click.option("--device", default="cpu", show_default=True, help="torch device: cpu or cuda")
@click.option("--state", type=click.Path(path_type=Path), default=None,
              help="quantized torch state file to write (torch stage) or read (--resume)")
@click.option("--resume", is_flag=True, help="skip the torch stage: export from --state")
@click.option("--torch-only", is_flag=True, help="stop after writing --state (GPU machines)")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="where the INT8 files go; default: the registry's weights folder")
@click.option("--report", "report_path", type=click.Path(path_type=Path), default=None,
              help="report JSON (a Markdown twin is written beside it)")
@click.option("--bench-s", type=float, default=4.0, show_default=True,
              help="seconds of paired timing per batch size (0: skip)")
@click.option("--val-blocks", type=int, default=4, show_default=True,
              help="audio: validation blocks of 2048 windows (more = firmer 0.2%% decisions)")
@click.option("--json", "as_json", is_flag=True, help="print the report as JSON")
def quantize_command(model_name, method, weights, data, calibration, qat_steps, qat_lr,
                     qat_batch, gate, no_sensitivity, device, state, resume, torch_only, out,
                     report_path, bench_s, val_blocks, as_json) -> None:
    """Quantize a descriptor to INT8 (QDQ ONNX), check it, and report."""
    from copytrace.models.registry import get_spec, models_dir, read_entry

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    entry = models_dir() / f"{model_name}.json"
    if entry.is_file() and read_entry(entry).get("media") == "audio":
        _audio(model_name, method, weights, data, calibration, qat_steps, qat_lr, qat_batch,
               gate, no_sensitivity, state, out, report_path, bench_s, val_blocks, resume,
               as_json)
        return
    data = data or Path("data/images")
    qat_batch, qat_steps = qat_batch or 256, qat_steps or 500
    spec = get_spec(model_name)
    weights = weights or Path("weights") / f"{model_name}.pt"
    state = state or Path("out/quant") / f"{model_name}.qstate.pt"
    if not weights.is_file():
        raise click.ClickException(f"FP32 weights {weights} not found (train first, or --weights)")
    from copytrace.recipes.image_task import load_fp32_model

    fp32_model = load_fp32_model(weights, spec.training.get("net"))
    size = spec.input_size[0]
    if resume:
        from copytrace.quant.pipeline import load_state

        qmodel, report = load_state(state, fp32_model)
        _calibrate_missing_observers(qmodel, report, data, size)
    else:
        qmodel, report = _torch_stage(fp32_model, weights, spec.training.get("net"), data, size,
                                      device, method, calibration, qat_steps, qat_lr, qat_batch,
                                      gate, not no_sensitivity)
        from copytrace.quant.pipeline import save_state

        state.parent.mkdir(parents=True, exist_ok=True)
        save_state(qmodel, report, state)
        click.echo(f"wrote {state}")
    if not torch_only:
        from copytrace.recipes.deploy import export_stage

        report["deploy"] = export_stage(spec, fp32_model, qmodel, data, out, bench_s,
                                        gate, report["fp32"])
    report_path = report_path or Path("out/quant") / f"{model_name}.report.json"
    from copytrace.recipes.report import write_report

    write_report(report, report_path)
    click.echo(json.dumps(report, indent=1) if as_json else f"wrote {report_path} (+ .md)")


def _audio(model_name, method, weights, data, calibration, qat_steps, qat_lr, qat_batch, gate,
           no_sensitivity, state, out, report_path, bench_s, val_blocks, resume,
           as_json) -> None:
    """The audio descriptor: everything on this CPU in one go (a 2 M-parameter net). QAT
    batches are (clean, degraded) pairs; ``--qat-batch`` above 128 is slow on a CPU."""
    from copytrace.models.audio_spec import get_audio_spec
    from copytrace.models.registry import models_dir
    from copytrace.recipes.audio_stage import quantize_audio
    from copytrace.recipes.report import write_report

    spec = get_audio_spec(model_name, models_dir())
    if spec.training.get("members"):
        raise click.UsageError(
            f"{model_name} is an ensemble: quantize each member (its own registry folder), then "
            "join them again with python -m copytrace.recipes.audio_ensemble")
    report = quantize_audio(
        spec, _audio_packs(data, spec), method, weights, calibration,
        qat_steps or 200,
        tuple(float(v) for v in str(qat_lr).split(",")), qat_batch or 32, gate,
        False if no_sensitivity else "on-miss", out,
        state or Path("out/quant") / f"{model_name}.qstate.pt", bench_s, val_blocks, resume)
    report_path = report_path or Path("out/quant") / f"{model_name}.report.json"
    write_report(report, report_path)
    click.echo(json.dumps(report, indent=1) if as_json else f"wrote {report_path} (+ .md)")


def _audio_packs(data, spec) -> list:
    """``--data a,b`` (one training call per pack) or ``a+b`` (one call on both) as given; else
    the packs the entry says training used (their names under data/audio/train/), else the
    first training pack."""
    if data:
        groups = [g.split("+") for g in str(data).split(",") if g]
        return [Path(g[0]) if len(g) == 1 else [Path(p) for p in g] for g in groups]
    names = spec.training.get("packs") or []
    packs = [Path("data/audio/train") / Path(n).name for n in names]
    if packs and all(p.is_dir() for p in packs):
        return packs
    return [Path("data/audio/train/pack")]


def _calibrate_missing_observers(qmodel, report: dict, data: Path, size: int) -> None:
    """States from before the residual-branch observers existed: calibrate just those (CPU,
    train images), with the method already chosen; no shipped scale changes."""
    from copytrace.quant.calibration import calibrate_observers
    from copytrace.quant.quantizer import TensorQuantizer
    from copytrace.recipes.image_task import load_image_task

    obs = [q for q in qmodel.modules() if isinstance(q, TensorQuantizer) and q.observe_only]
    if not obs or all(q.calibrated for q in obs):
        return
    task = load_image_task(Path(data), size, "cpu", calib_images=256)
    n = calibrate_observers(qmodel, task.forward_loop, report.get("calibration", "max"))
    report["observers_calibrated_on_cpu"] = n
    log.info("calibrated %d residual-branch observers on the CPU", n)


def _torch_stage(fp32_model, weights, net, data, size, device, method, calibration, qat_steps,
                 qat_lr, qat_batch, gate, sensitivity):
    from copytrace.recipes.torch_stage import run

    lrs = tuple(float(v) for v in str(qat_lr).split(","))
    _, model, report = run(weights, net, data, size, device, method, calibration, qat_steps,
                           lrs, qat_batch, gate, sensitivity)
    return model, report


if __name__ == "__main__":
    quantize_command()

"""``copytrace quantize --model ct-audio-nafp``: the audio descriptor's whole INT8 path on CPU.

FP32 model (from the registry's ONNX, or a training checkpoint) -> PTQ with each calibration
method -> optional short QAT -> mixed precision when the gate is missed -> QDQ ONNX + U8
variant -> TensorRT-rules check -> validation hit rate of the deployed files in OpenVINO and
ONNX Runtime -> parity with the fake-quant torch model -> paired throughput. The registry
entry gets ``int8_file``/``int8_u8_file`` (and the FP32 file's hash) only when both deployed
INT8 files are within the gate; otherwise those keys are cleared and the engine runs FP32.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

log = logging.getLogger(__name__)


def quantize_audio(spec, packs: list, method: str, checkpoint: Path | None, calibration: str,
                   qat_steps: int, qat_lrs: tuple[float, ...], qat_batch: int, gate: float,
                   sensitivity: bool | str, out: Path | None, state: Path | None,
                   bench_s: float, blocks: int, resume: bool = False) -> dict:
    """``resume``: skip PTQ/QAT and deploy the model saved in ``state`` by an earlier run."""
    from copytrace.quant.config import CALIBRATION_METHODS, FinetuneConfig, QuantRecipe
    from copytrace.quant.pipeline import load_state, quantize, save_state
    from copytrace.recipes.audio_task import load_audio_fp32, load_audio_task

    t0 = time.perf_counter()
    fp32_model = load_audio_fp32(spec.path("fp32"), checkpoint)
    from copytrace.train.audio import CONFIGS

    trained = (getattr(spec, "training", None) or {}).get("config", "h100")
    task = load_audio_task(packs, blocks=blocks, qat_batch=qat_batch,
                           train_config=trained if trained in CONFIGS else "h100",
                           mel=spec.mel_config())
    log.info("audio task ready in %.0f s: %d validation windows", time.perf_counter() - t0,
             task.n_val_windows)
    if resume:
        qmodel, report = load_state(state, fp32_model)
        report["resumed_from"] = str(state)
        report["deploy"] = _deploy(spec, qmodel, task, out, bench_s, gate)
        report["wall_s"] = time.perf_counter() - t0
        return report
    methods = CALIBRATION_METHODS if calibration == "auto" else (calibration,)
    qat = tuple(FinetuneConfig(steps=qat_steps, lr=lr, log_every=25)
                for lr in qat_lrs) if method == "qat" else ()
    recipe = QuantRecipe(methods, qat, gate, sensitivity)
    qmodel, report = quantize(fp32_model, recipe, task.forward_loop, task.evaluate, task.qat_loss)
    report.update({
        "model": spec.model_id, "metric_name": "val top-1 hit rate",
        "validation": f"{task.n_val_windows} degraded windows of the held-out train tracks "
                      f"(train.audio.validate, {blocks} blocks of {len(task.val_blocks[0][0])} "
                      f"clean windows, seeds {123}..{123 + blocks - 1}), packs "
                      f"{', '.join(str(p) for p in packs)}",
        "source": str(checkpoint or spec.path("fp32")), "torch": torch.__version__,
        "packs": [str(p) for p in packs],
    })
    if state is not None:
        state.parent.mkdir(parents=True, exist_ok=True)
        save_state(qmodel, report, state)
    report["deploy"] = _deploy(spec, qmodel, task, out, bench_s, gate)
    report["wall_s"] = time.perf_counter() - t0
    return report


def _deploy(spec, qmodel, task, out: Path | None, bench_s: float, gate: float) -> dict:
    from copytrace.models.audio_spec import file_sha256
    from copytrace.quant.onnx_export import derive_u8, export
    from copytrace.quant.tensorrt_rules import check_tensorrt_rules

    registry_dir = Path(spec.directory)
    out = Path(out or registry_dir)
    s8, u8 = out / f"{spec.name}.int8.onnx", out / f"{spec.name}.int8-u8.onnx"
    export(qmodel, s8, (spec.n_mels, spec.window_frames), channels=1, input_name="logmel",
           output_name="descriptor")
    rewrite = derive_u8(s8, u8)
    violations = check_tensorrt_rules(s8)
    if violations:
        raise RuntimeError(f"{s8} breaks TensorRT rules: {violations[:5]}")
    fp32_file = spec.path("fp32").resolve()
    dspec = replace(spec, directory=str(out), file=str(fp32_file), int8_file=s8.name,
                    int8_u8_file=u8.name, int8_source_sha256=None)
    encoders, metric = deployed_metric(dspec, task)
    qmodel = qmodel.cpu().eval()
    metric["torch-fakequant"] = task.evaluate(qmodel)
    gaps = relative_gaps(metric)
    for k, v in metric.items():
        log.info("deployed %-20s %.5f (gap %.3f%%)", k, v, 100 * gaps[k])
    result: dict = {
        "files": {"int8": str(s8), "int8_u8": str(u8)}, "u8_rewrite": rewrite,
        "tensorrt_rule_violations": violations, "metric_by_runtime": metric,
        "gap_by_runtime": gaps, "parity_vs_torch_fakequant": _parity(task, qmodel, encoders),
    }
    if bench_s > 0:
        result["throughput"] = _throughput(encoders, (spec.n_mels, spec.window_frames), bench_s)
    passed = gate_passed(gaps, gate)
    result["gate_passed_deployed"] = passed
    if out.resolve() == registry_dir.resolve():
        _set_int8_keys(registry_dir / f"{spec.name}.json", s8.name, u8.name,
                       file_sha256(fp32_file), passed, metric, gaps, gate)
        result["registry_updated"] = passed
    return result


def deployed_metric(dspec, task) -> tuple[dict, dict]:
    """(encoders, validation metric) of an entry's FP32 and INT8 files in OpenVINO and ONNX
    Runtime, keyed "openvino-fp32", "openvino-int8", "onnxruntime-fp32", "onnxruntime-int8"."""
    from copytrace.runtime.audio import AudioEncoder

    encoders = {f"{b}-{p}": AudioEncoder(dspec, b, precision=p)
                for b in ("openvino", "onnxruntime") for p in ("fp32", "int8")}
    return encoders, {k: task.evaluate_fn(lambda w, e=e: e.encode(w.numpy()))
                      for k, e in encoders.items()}


def relative_gaps(metric: dict) -> dict:
    """Each metric's relative gap to OpenVINO FP32 (what the gate reads)."""
    ref = metric["openvino-fp32"]
    return {k: (ref - v) / ref for k, v in metric.items()}


def gate_passed(gaps: dict, gate: float) -> bool:
    return gaps["openvino-int8"] <= gate and gaps["onnxruntime-int8"] <= gate


def _parity(task, qmodel, encoders) -> dict:
    a, p, _, _ = task.val_blocks[0]
    windows = torch.cat([a, p])
    ref = task.embed(qmodel, windows)
    ref = (ref / ref.norm(dim=1, keepdim=True)).numpy()
    top1 = lambda d: (d[len(a):] @ d[: len(a)].T).argmax(1)
    out = {}
    for k in ("openvino-int8", "onnxruntime-int8", "openvino-fp32"):
        d = task.embed(lambda w, e=encoders[k]: e.encode(w.numpy()), windows).numpy()
        cos = (d * ref).sum(1)
        out[k + (" (for scale)" if k.endswith("fp32") else "")] = {
            "min_cosine": float(cos.min()), "p01_cosine": float(np.percentile(cos, 1)),
            "mean_cosine": float(cos.mean()), "share_cosine_ge_0999": float((cos >= 0.999).mean()),
            "top1_agreement": float((top1(d) == top1(ref)).mean())}
    return out


def _throughput(encoders, size: tuple[int, int], bench_s: float) -> dict:
    from copytrace.recipes.speed import paired_throughput

    out = {}
    for batch in (1, 32):
        for rt in ("openvino", "onnxruntime"):
            f, q = f"{rt}-fp32", f"{rt}-int8"
            r = paired_throughput({f: encoders[f].encode, q: encoders[q].encode}, batch, size,
                                  min_s=bench_s, channels=1)
            out[f"{rt}@{batch}"] = {"fp32_per_s": r[f], "int8_per_s": r[q],
                                    "int8_over_fp32": r[q] / r[f]}
            log.info("%s batch %d: fp32 %.0f/s int8 %.0f/s (%.2fx)", rt, batch, r[f], r[q],
                     r[q] / r[f])
    return out


def _set_int8_keys(spec_json: Path, int8_name: str, u8_name: str, source_sha: str,
                   passed: bool, metric: dict, gaps: dict, gate: float) -> None:
    """Edit only the INT8 keys (the rest belongs to training and calibration). A missed gate
    clears them, so the engine never runs INT8 files made from other weights."""
    raw = json.loads(spec_json.read_text())
    raw["int8_file"] = int8_name if passed else None
    raw["int8_u8_file"] = u8_name if passed else None
    raw["int8_source_sha256"] = source_sha if passed else None
    raw["quantization"] = {
        "gate": gate, "gate_passed": passed, "metric": "val top-1 hit rate (copytrace quantize)",
        "openvino_fp32": metric["openvino-fp32"], "openvino_int8": metric["openvino-int8"],
        "onnxruntime_int8_u8": metric["onnxruntime-int8"],
        "gap_openvino": gaps["openvino-int8"], "gap_onnxruntime": gaps["onnxruntime-int8"],
    }
    spec_json.write_text(json.dumps(raw, indent=1) + "\n")

"""Export stage of ``copytrace quantize``: files, rule check, parity, deployed µAP, speed."""
from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

log = logging.getLogger(__name__)


def export_stage(spec, fp32_model, qmodel, data: Path, out: Path | None, bench_s: float,
                 gate: float, fp32_metric: float) -> dict:
    from copytrace.models.registry import WEIGHTS_DIR
    from copytrace.quant.onnx_export import derive_u8, export
    from copytrace.quant.tensorrt_rules import check_tensorrt_rules
    from copytrace.runtime import load_encoder

    out = Path(out or spec.directory or WEIGHTS_DIR)
    s8 = out / f"{spec.name}.int8.onnx"
    u8 = out / f"{spec.name}.int8-u8.onnx"
    export(qmodel, s8, spec.input_size)
    rewrite = derive_u8(s8, u8)
    violations = check_tensorrt_rules(s8)
    if violations:
        raise RuntimeError(f"{s8} breaks TensorRT rules: {violations[:5]}")
    fp32_file = spec.path("fp32")
    dspec = replace(spec, directory=str(out), file=str(fp32_file.resolve()),
                    int8_file=s8.name, int8_u8_file=u8.name)
    encoders = {
        "openvino-fp32": load_encoder(dspec, "openvino", "fp32"),
        "openvino-int8": load_encoder(dspec, "openvino", "int8"),
        "onnxruntime-fp32": load_encoder(dspec, "onnxruntime", "fp32"),
        "onnxruntime-int8-u8": load_encoder(dspec, "onnxruntime", "int8"),
    }
    if _cuda_int8_available():  # the GPU 8-bit backend, gated like the CPU ones (issue 26)
        encoders["cuda-int8"] = load_encoder(dspec, "cuda-int8", "int8")
    result: dict = {"files": {"int8": str(s8), "int8_u8": str(u8)},
                    "u8_rewrite": rewrite, "tensorrt_rule_violations": violations}
    result.update(_deployed_metrics(spec, qmodel, encoders, data, fp32_metric))
    if bench_s > 0:
        result["throughput"] = _throughput(encoders, spec.input_size, bench_s)
    ov_gap = result.get("gap_by_runtime", {}).get("openvino-int8")
    result["gate_passed_deployed"] = ov_gap is not None and ov_gap <= gate
    if result["gate_passed_deployed"] and out.resolve() == Path(spec.directory).resolve():
        _set_int8_keys(out / f"{spec.name}.json", s8.name, u8.name)
        result["registry_updated"] = True
    return result


def _cuda_int8_available() -> bool:
    import importlib.util

    return torch.cuda.is_available() and importlib.util.find_spec("triton") is not None


def _deployed_metrics(spec, qmodel, encoders, data: Path, fp32_metric: float) -> dict:
    from copytrace.recipes.image_task import load_val_set, uap_from_descriptors

    val = load_val_set(data)
    size = spec.input_size[0]
    images = {"refs": val.refs, "queries": val.queries}
    desc: dict[str, dict[str, np.ndarray]] = {}
    for name, enc in encoders.items():
        desc[name] = {k: _encode(enc.encode, v, size) for k, v in images.items()}
    qmodel = qmodel.cpu().eval()

    def torch_fq(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return qmodel(torch.from_numpy(x)).numpy()

    desc["torch-fakequant"] = {k: _encode(torch_fq, v, size) for k, v in images.items()}
    truth = val.truth.numpy()
    uap = {k: uap_from_descriptors(d["queries"], d["refs"], truth) for k, d in desc.items()}
    ref = desc["torch-fakequant"]
    parity = {}
    for k in [k for k in ("openvino-int8", "onnxruntime-int8-u8", "cuda-int8") if k in desc]:
        cos = np.concatenate([(desc[k][s] * ref[s]).sum(1) for s in ("refs", "queries")])
        top1 = lambda d: (d["queries"] @ d["refs"].T).argmax(1)
        parity[k] = {"min_cosine": float(cos.min()), "mean_cosine": float(cos.mean()),
                     "share_cosine_ge_0999": float((cos >= 0.999).mean()),
                     "p01_cosine": float(np.percentile(cos, 1)),
                     "top1_agreement": float((top1(desc[k]) == top1(ref)).mean())}
    # The FP32 model vs its own fake-quant twin, for scale: how far INT8 moves descriptors.
    f = desc["openvino-fp32"]
    cos = np.concatenate([(f[s] * ref[s]).sum(1) for s in ("refs", "queries")])
    parity["openvino-fp32 (for scale)"] = {
        "min_cosine": float(cos.min()), "mean_cosine": float(cos.mean()),
        "share_cosine_ge_0999": float((cos >= 0.999).mean()),
        "p01_cosine": float(np.percentile(cos, 1)),
        "top1_agreement": float((top1(f) == top1(ref)).mean())}
    fp32_ov = uap["openvino-fp32"]
    return {
        "uap_by_runtime": uap, "fp32_torch": fp32_metric,
        "gap_by_runtime": {k: (fp32_ov - v) / fp32_ov for k, v in uap.items()},
        "parity_vs_torch_fakequant": parity, "n_val_refs": len(val.refs),
        "n_val_queries": len(val.queries),
    }


def _encode(fn, images: torch.Tensor, size: int, batch: int = 64) -> np.ndarray:
    from copytrace.recipes.image_task import preprocess
    from copytrace.runtime.base import l2_normalise

    parts = [l2_normalise(fn(preprocess(images[i : i + batch], size)))
             for i in range(0, len(images), batch)]
    return np.concatenate(parts)


def _throughput(encoders, size, bench_s: float) -> dict:
    from copytrace.recipes.speed import paired_throughput

    out = {}
    for batch in (1, 32):
        for rt, (f, q) in {"openvino": ("openvino-fp32", "openvino-int8"),
                           "onnxruntime": ("onnxruntime-fp32", "onnxruntime-int8-u8")}.items():
            r = paired_throughput({f: encoders[f].encode, q: encoders[q].encode}, batch,
                                  tuple(size), min_s=bench_s)
            out[f"{rt}@{batch}"] = {"fp32_per_s": r[f], "int8_per_s": r[q],
                                    "int8_over_fp32": r[q] / r[f]}
            log.info("%s batch %d: fp32 %.1f/s int8 %.1f/s (%.2fx)", rt, batch, r[f], r[q],
                     r[q] / r[f])
    return out


def _set_int8_keys(spec_json: Path, int8_name: str, u8_name: str) -> None:
    """Edit only ``int8_file`` and ``int8_u8_file`` (the rest belongs to training)."""
    raw = json.loads(spec_json.read_text())
    raw["int8_file"], raw["int8_u8_file"] = int8_name, u8_name
    spec_json.write_text(json.dumps(raw, indent=1) + "\n")

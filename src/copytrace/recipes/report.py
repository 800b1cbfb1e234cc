"""Write the quantization report as JSON and as a readable Markdown table."""
from __future__ import annotations

import json
from pathlib import Path


def _pct(x) -> str:
    return "n/a" if x is None else f"{100 * x:.3f}%"


def write_report(report: dict, path: Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1))
    path.with_suffix(".md").write_text(render_markdown(report))


def render_markdown(r: dict) -> str:
    name = r.get("metric_name", "val µAP")
    lines = ["# Quantization report", "", f"| model | {name} | relative gap |", "|---|---|---|",
             f"| FP32 (torch) | {r['fp32']:.4f} | - |"]
    for m, v in r.get("ptq_by_method", {}).items():
        lines.append(f"| PTQ {m} | {v:.4f} | {_pct((r['fp32'] - v) / r['fp32'])} |")
    for q in r.get("qat_runs", []):
        lines.append(f"| QAT ({q['steps']} steps, lr {q['lr']:g}, {q['wall_s']:.0f} s) "
                     f"| {q['metric']:.4f} | {_pct(q['gap'])} |")
    lines.append(f"| **shipped** ({r['chosen']}, float layers: {r['float_layers'] or 'none'}) "
                 f"| {r['final']:.4f} | {_pct(r['final_gap'])} |")
    lines += ["", f"Gate {_pct(r['gate'])}: {'passed' if r['gate_passed'] else 'MISSED'}."]
    d = r.get("deploy")
    if d:
        lines += ["", f"## Deployed files ({name} on the same validation set)", "",
                  f"| runtime | {name} | gap vs OpenVINO FP32 |", "|---|---|---|"]
        for k, v in (d.get("uap_by_runtime") or d["metric_by_runtime"]).items():
            lines.append(f"| {k} | {v:.4f} | {_pct(d['gap_by_runtime'][k])} |")
        header = ("| vs torch fake-quant | min cosine | 1st pct | mean | share >= 0.999 "
                  "| top-1 agreement |")
        lines += ["", header, "|---|---|---|---|---|---|"]
        for k, v in d["parity_vs_torch_fakequant"].items():
            lines.append(f"| {k} | {v['min_cosine']:.5f} | {v.get('p01_cosine', float('nan')):.5f} "
                         f"| {v['mean_cosine']:.6f} | {v.get('share_cosine_ge_0999', float('nan')):.4f} "
                         f"| {v['top1_agreement']:.4f} |")
        if d.get("throughput"):
            lines += ["", "## Throughput (descriptors/s, paired medians, one run)", "",
                      "| runtime@batch | FP32 | INT8 | INT8/FP32 |", "|---|---|---|---|"]
            for k, v in d["throughput"].items():
                lines.append(f"| {k} | {v['fp32_per_s']:.1f} | {v['int8_per_s']:.1f} "
                             f"| {v['int8_over_fp32']:.2f}x |")
        lines += ["", f"TensorRT rule violations: {len(d['tensorrt_rule_violations'])}."]
    if r.get("sensitivity"):
        lines += ["", "## Per-layer sensitivity (only this layer quantized)", "",
                  f"| layer | {name} | relative loss |", "|---|---|---|"]
        for s in r["sensitivity"]:
            lines.append(f"| {s['layer']} | {s['metric']:.4f} | {_pct(s['relative_loss'])} |")
    return "\n".join(lines) + "\n"

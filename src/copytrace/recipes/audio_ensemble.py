"""Join trained audio descriptor models into one ensemble descriptor.

    python -m copytrace.recipes.audio_ensemble --members DIR_A DIR_B --out-dir OUT --version 6 \\
        [--gate-data data/audio/train/all_0 data/audio/train/all_1 data/audio/train/all_2]

The members (registry folders holding ``ct-audio-nafp.json`` and its ONNX files) read the same
log-mel window and each returns an L2-normalised vector; the ensemble returns their
concatenation divided by sqrt(members), a unit vector whose cosine is the mean of the members'
cosines. Networks trained apart err apart, so the mean separates copies from chance better than
either (docs/audio.md). One ONNX graph holds every member: the encoder, the index and the
aligner see one model of ``sum(dims)`` dimensions.

When every member has gated INT8 files made from its own FP32 file, the INT8 (QDQ) and U8
graphs are joined the same way. With ``--gate-data`` the joined files are held to the same gate
as ``copytrace quantize`` (validation hit rate of OpenVINO INT8 and ONNX Runtime U8 within
``--gate`` of OpenVINO FP32, on the joined descriptor) and the INT8 keys are written only if
they pass. The calibration (threshold, cohort) is the joined model's own: build its cohort
(``train.audio_cohort``) and fit its threshold (``bench/audio.py --calibrate``) afterwards.
"""
from __future__ import annotations

import argparse
import json
import logging
from dataclasses import replace
from pathlib import Path

import numpy as np

log = logging.getLogger("copytrace.recipes.audio_ensemble")

INPUT, OUTPUT = "logmel", "descriptor"


def join_onnx(paths: list[Path], out: Path, dims: int) -> None:
    """One graph computing every member on the shared input; output concat / sqrt(members)."""
    import onnx
    from onnx import compose, helper, numpy_helper

    models = [onnx.load(str(p)) for p in paths]
    nodes, inits, infos, outs = [], [], [], []
    for i, m in enumerate(models):
        if [x.name for x in m.graph.input] != [INPUT] or [x.name for x in m.graph.output] != [OUTPUT]:
            raise ValueError(f"{paths[i]}: expected one input {INPUT!r} and one output {OUTPUT!r}")
        g = compose.add_prefix(m, f"m{i}/").graph
        for n in g.node:
            n.input[:] = [INPUT if x == f"m{i}/{INPUT}" else x for x in n.input]
            nodes.append(n)
        inits += g.initializer
        infos += g.value_info
        outs.append(f"m{i}/{OUTPUT}")
    scale = numpy_helper.from_array(np.array(1 / np.sqrt(len(models)), np.float32), "ensemble/scale")
    nodes += [helper.make_node("Concat", outs, ["ensemble/concat"], axis=1),
              helper.make_node("Mul", ["ensemble/concat", scale.name], [OUTPUT])]
    shape = [d.dim_param or d.dim_value for d in models[0].graph.input[0].type.tensor_type.shape.dim]
    graph = helper.make_graph(
        nodes, "audio_ensemble", [helper.make_tensor_value_info(INPUT, onnx.TensorProto.FLOAT, ["n", *shape[1:]])],
        [helper.make_tensor_value_info(OUTPUT, onnx.TensorProto.FLOAT, ["n", dims])],
        [*inits, scale], value_info=infos)
    model = helper.make_model(graph, opset_imports=models[0].opset_import)
    model.ir_version = models[0].ir_version
    onnx.checker.check_model(model)
    onnx.save(model, str(out))


def join(member_dirs: list[Path], out_dir: Path, version: str, name: str = "ct-audio-nafp"):
    """Write the joined FP32 (and, when every member has it, INT8) files and the entry."""
    from copytrace.models.audio_spec import file_sha256, get_audio_spec

    specs = [get_audio_spec(name, Path(d)) for d in member_dirs]
    frontend = ("sample_rate", "n_fft", "hop_frames", "n_mels", "f_min", "f_max", "eps",
                "window_frames", "hop_s", "query_hop_s", "silence_dbfs")
    for s in specs[1:]:
        differ = [k for k in frontend if getattr(s, k) != getattr(specs[0], k)]
        if differ:
            raise ValueError(f"{s.directory}: members disagree on {differ}")
    dims = sum(s.dims for s in specs)
    out_dir.mkdir(parents=True, exist_ok=True)
    join_onnx([s.path("fp32") for s in specs], out_dir / f"{name}.onnx", dims)
    int8 = all(s.int8_file and s.int8_u8_file and s.has_int8() for s in specs)
    if int8:
        join_onnx([s.path("int8") for s in specs], out_dir / f"{name}.int8.onnx", dims)
        join_onnx([s.path("int8-u8") for s in specs], out_dir / f"{name}.int8-u8.onnx", dims)
    spec = replace(
        specs[0], version=version, file=f"{name}.onnx", dims=dims, directory=str(out_dir),
        int8_file=None, int8_u8_file=None, int8_source_sha256=None, quantization={},
        cohort_file=None, cohort_level=0.0, length_penalty=0.0, threshold_similarity=0.5,
        threshold_precision=None, calibration="uncalibrated: run bench/audio.py --calibrate",
        training={"recipe": "ensemble (train/audio_ensemble.py): concatenated unit descriptors "
                            "/ sqrt(members), cosine = the members' mean",
                  "members": [{"version": s.version, "dims": s.dims, "fp32_sha256":
                               file_sha256(s.path("fp32")), "training": s.training,
                               "quantization": s.quantization} for s in specs]})
    entry = out_dir / f"{name}.json"
    entry.write_text(json.dumps(spec.to_json(), indent=1) + "\n")
    return entry, int8


def gate(entry: Path, packs: list[Path], gate_rel: float, blocks: int) -> dict:
    """Hold the joined INT8 files to the quantization gate; write the INT8 keys if they pass."""
    from copytrace.models.audio_spec import file_sha256, get_audio_spec
    from copytrace.recipes.audio_stage import (
        _set_int8_keys,
        deployed_metric,
        gate_passed,
        relative_gaps,
    )
    from copytrace.recipes.audio_task import load_audio_task
    from copytrace.train.audio import CONFIGS

    spec = get_audio_spec(entry.stem, entry.parent)
    s8, u8 = f"{spec.name}.int8.onnx", f"{spec.name}.int8-u8.onnx"
    dspec = replace(spec, int8_file=s8, int8_u8_file=u8, int8_source_sha256=None)
    trained = spec.training["members"][0]["training"].get("config")  # the validation views
    task = load_audio_task(packs, blocks=blocks, mel=spec.mel_config(),
                           train_config=trained if trained in CONFIGS else "h100")
    _, metric = deployed_metric(dspec, task)
    gaps = relative_gaps(metric)
    passed = gate_passed(gaps, gate_rel)
    _set_int8_keys(entry, s8, u8, file_sha256(spec.path("fp32")), passed, metric, gaps, gate_rel)
    return {"metric": metric, "gaps": gaps, "passed": passed}


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--members", type=Path, nargs="+", required=True, help="registry folders")
    ap.add_argument("--out-dir", type=Path, required=True)
    ap.add_argument("--version", required=True)
    ap.add_argument("--gate-data", type=Path, nargs="*", default=None,
                    help="the train pack folders the members were trained on (together)")
    ap.add_argument("--gate", type=float, default=0.002)
    ap.add_argument("--val-blocks", type=int, default=4)
    a = ap.parse_args(argv)
    if len(a.members) < 2:
        ap.error("an ensemble needs two members or more")
    entry, int8 = join(a.members, a.out_dir, a.version)
    log.info("%s written (INT8 joined: %s)", entry, int8)
    if int8 and a.gate_data:
        log.info("gate: %s", json.dumps(gate(entry, [a.gate_data], a.gate, a.val_blocks)))


if __name__ == "__main__":
    main()

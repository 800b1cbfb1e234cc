"""The audio descriptor's INT8 path: the FP32 net rebuilt from its ONNX, the QDQ export of a
small audio net (TensorRT rules, torch vs ONNX Runtime vs OpenVINO parity, the U8 variant), the
validation hit rate on a hand-made case, and INT8 chosen by default only for matching files."""
from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

from copytrace.models.audio_spec import AudioDescriptorSpec, file_sha256, get_audio_spec
from copytrace.quant import QuantConfig, calibrate, check_tensorrt_rules, derive_u8, export, prepare
from tests._quant_fixtures import ort_options, random_bn_stats

DATA = Path(__file__).parent / "data"


def _windows(n_per_file: int = 24) -> np.ndarray:
    """Real log-mel windows of the two test songs (numpy frontend, as the engine feeds them)."""
    from copytrace.media.audio import load_audio
    from copytrace.models.audio_frontend import MelConfig, MelFrontend

    fe = MelFrontend(MelConfig())
    out = []
    for name in ("music_beast.ogg", "music_brainsukker.ogg"):
        x = load_audio(str(DATA / name), 8000)
        _, wins = fe.windows(fe.log_mel(x[: 8000 * 20]), 0.5)
        out.append(wins[:n_per_file])
    return np.concatenate(out).astype(np.float32)


def _small_audio_net():
    from copytrace.models.audio_net import AudioFingerprintNet, AudioNetConfig

    torch.manual_seed(0)
    return random_bn_stats(AudioFingerprintNet(AudioNetConfig(widths=(8, 16, 16, 24, 32), dims=32)).eval())


@pytest.fixture(scope="module")
def audio_export(tmp_path_factory):
    wins = _windows()
    q = calibrate(prepare(_small_audio_net(), QuantConfig()),
                  lambda m: m(torch.from_numpy(wins)), "max")
    d = tmp_path_factory.mktemp("audio_q")
    s8 = export(q, d / "a.int8.onnx", (64, 76), channels=1, input_name="logmel",
                output_name="descriptor")
    u8 = d / "a.int8-u8.onnx"
    derive_u8(s8, u8)
    return q, s8, u8, wins


def _cos(a, b):
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return (a * b).sum(1)


def test_fp32_net_rebuilt_from_onnx_matches_the_onnx(tmp_path):
    import onnxruntime as ort

    from copytrace.models.audio_net import export_audio_onnx
    from copytrace.recipes.audio_task import load_audio_fp32

    # a member's ONNX as the trainer exports it (the shipped entry is an ensemble of such)
    path = tmp_path / "member.onnx"
    export_audio_onnx(_small_audio_net(), str(path))
    net = load_audio_fp32(path)
    wins = _windows(8)
    s = ort.InferenceSession(str(path), ort_options(), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        got = net(torch.from_numpy(wins)).numpy()
    assert np.abs(s.run(None, {"logmel": wins})[0] - got).max() < 1e-4


def test_audio_qdq_follows_tensorrt_rules(audio_export):
    _, s8, _, _ = audio_export
    assert check_tensorrt_rules(s8) == []
    ops = [n.op_type for n in onnx.load(str(s8)).graph.node]
    assert ops.count("Conv") == 10 and "Gemm" in ops


def test_audio_qdq_parity_torch_ort_openvino(audio_export):
    import onnxruntime as ort
    import openvino as ov

    q, s8, u8, wins = audio_export
    with torch.no_grad():
        ref = q(torch.from_numpy(wins)).numpy()
    sess = ort.InferenceSession(str(s8), ort_options(), providers=["CPUExecutionProvider"])
    got_ort = sess.run(None, {"logmel": wins})[0]
    got_ov = ov.Core().compile_model(str(s8), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})(
        {0: wins})[0]
    for got in (got_ort, got_ov):
        assert _cos(ref, got).min() >= 0.999
    u8_sess = ort.InferenceSession(str(u8), ort_options(), providers=["CPUExecutionProvider"])
    assert _cos(ref, u8_sess.run(None, {"logmel": wins})[0]).min() >= 0.995


def test_audio_u8_variant_runs_convolutions_as_qlinearconv(audio_export, tmp_path):
    import onnxruntime as ort

    _, _, u8, _ = audio_export
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.optimized_model_filepath = str(tmp_path / "opt.onnx")
    ort.InferenceSession(str(u8), opts, providers=["CPUExecutionProvider"])
    ops = [n.op_type for n in onnx.load(str(tmp_path / "opt.onnx")).graph.node]
    # Flatten is walked through, so every convolution, the last included, runs as INT8.
    assert ops.count("QLinearConv") == 10 and "Conv" not in ops


def test_hit_rate_counts_own_and_overlapping_windows():
    from copytrace.recipes.audio_task import hit_rate

    za = torch.eye(4)
    # query 0 -> itself; 1 -> window 2 (same piece, 0.1 s away: a hit); 2 -> window 0
    # (other piece: a miss); 3 -> window 1 (same piece but 1 s away: a miss).
    zp = torch.stack([za[0], za[2], za[0], za[1]])
    piece = torch.tensor([0, 1, 1, 1])
    pos = torch.tensor([0, 8000, 8800, 16800])
    assert hit_rate(za, zp, piece, pos, 8000) == pytest.approx(0.5)


def _registry_copy(tmp_path: Path, **keys) -> AudioDescriptorSpec:
    spec = get_audio_spec()
    for name in (spec.file,):
        shutil.copy(spec.path("fp32"), tmp_path / name)
    raw = spec.to_json()
    raw.update(keys)
    (tmp_path / f"{spec.name}.json").write_text(json.dumps(raw))
    return get_audio_spec(spec.name, tmp_path)


def test_engine_default_is_int8_only_for_int8_made_from_this_fp32(tmp_path, audio_export):
    from copytrace.runtime.audio import AudioEncoder

    spec = get_audio_spec()
    sha = file_sha256(spec.path("fp32"))
    # The small net's files stand in for INT8 files: only the choice is under test here.
    _, s8, u8, _ = audio_export
    shutil.copy(s8, tmp_path / "x.int8.onnx")
    shutil.copy(u8, tmp_path / "x.int8-u8.onnx")
    keys = {"int8_file": "x.int8.onnx", "int8_u8_file": "x.int8-u8.onnx"}
    good = _registry_copy(tmp_path, **keys, int8_source_sha256=sha)
    assert good.has_int8()
    assert AudioEncoder(good, "onnxruntime").precision == "int8"
    assert AudioEncoder(good, "onnxruntime", precision="fp32").precision == "fp32"
    stale = replace(good, int8_source_sha256="0" * 64)
    assert not stale.has_int8()
    assert AudioEncoder(stale, "openvino").precision == "fp32"
    none = replace(good, int8_file=None, int8_u8_file=None)
    assert AudioEncoder(none, "onnxruntime").precision == "fp32"


def test_engine_audio_precision_follows_the_config(tmp_path):
    from copytrace.engine import EngineConfig, Library

    spec = get_audio_spec()
    for precision, want in (("fp32", "fp32"), ("auto", "int8" if spec.has_int8() else "fp32")):
        with Library.open(tmp_path / f"{precision}.db", EngineConfig(precision=precision)) as lib:
            assert lib.audio_encoder.precision == want


def test_audio_packs_option_names_training_calls():
    from copytrace.recipes.command import _audio_packs

    spec = get_audio_spec()
    assert _audio_packs("p/all_0,p/all_1", spec) == [Path("p/all_0"), Path("p/all_1")]
    assert _audio_packs("p/a+p/b", spec) == [[Path("p/a"), Path("p/b")]]

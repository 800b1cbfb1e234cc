"""GPU runtimes: the torch-cuda weight loader (runs on CPU) and skips where CUDA/TensorRT lack."""
from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tests._quant_fixtures import small_net


@pytest.fixture
def fp32_spec(tmp_path):
    from copytrace.models.registry import DescriptorSpec
    from copytrace.models.resnet import export_onnx

    net = small_net()
    export_onnx(net, str(tmp_path / "m.onnx"), (48, 48))
    cfg = net.cfg
    spec = DescriptorSpec(
        name="t", version="0", media="image", file="m.onnx", input_size=(48, 48), resize="squash",
        mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25), dims=cfg.dims, directory=str(tmp_path),
        training={"net": json.loads(json.dumps(cfg.__dict__, default=list))},
    )
    return net, spec


def test_torch_cuda_loader_rebuilds_the_net_from_the_fp32_onnx(fp32_spec):
    from copytrace.runtime.torch_cuda import load_descriptor_net

    net, spec = fp32_spec
    rebuilt = load_descriptor_net(spec)
    x = torch.randn(3, 3, 48, 48)
    with torch.no_grad():
        assert torch.allclose(rebuilt(x), net(x), atol=1e-5)


def test_backends_are_registered():
    from copytrace.errors import ModelError
    from copytrace.runtime import base

    with pytest.raises((ModelError, ModuleNotFoundError)):
        base.load_encoder(None, "no-such-backend")
    assert {"tensorrt", "torch-cuda"} <= set(base._BACKENDS)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_torch_cuda_encoder_matches_fp32(fp32_spec):
    from copytrace.runtime import load_encoder

    net, spec = fp32_spec
    enc = load_encoder(spec, "torch-cuda", "fp32")
    x = np.random.default_rng(0).standard_normal((4, 3, 48, 48)).astype(np.float32)
    with torch.no_grad():
        want = net(torch.from_numpy(x)).numpy()
    assert ((enc.encode(x) * want).sum(1)).min() > 0.99  # bf16


@pytest.mark.gpu
@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is None or not torch.cuda.is_available(),
                    reason="needs tensorrt and CUDA")
def test_tensorrt_int8_engine_matches_fake_quant(fp32_spec, tmp_path):
    from dataclasses import replace

    from copytrace.quant import QuantConfig, calibrate, export, prepare
    from copytrace.runtime import load_encoder

    net, spec = fp32_spec
    x = np.random.default_rng(0).standard_normal((8, 3, 48, 48)).astype(np.float32)
    q = calibrate(prepare(net, QuantConfig()), lambda m: m(torch.from_numpy(x)), "max")
    export(q, tmp_path / "m.int8.onnx", (48, 48))
    enc = load_encoder(replace(spec, int8_file="m.int8.onnx"), "tensorrt", "int8")
    with torch.no_grad():
        want = q(torch.from_numpy(x)).numpy()
    assert ((enc.encode(x) * want).sum(1)).min() > 0.99

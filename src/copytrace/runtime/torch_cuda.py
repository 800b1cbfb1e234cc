"""PyTorch CUDA backend for GPU machines without TensorRT: bf16, channels_last, torch.compile.

PyTorch has no INT8 convolution, so this backend runs the FP32 weights in bf16 (the fastest
measured torch path on an H100). The network is rebuilt from the FP32 ONNX file itself
(BN already folded by the exporter), so the ONNX stays the single source of the weights.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from copytrace.errors import ModelError
from copytrace.runtime.base import Encoder, l2_normalise, register_backend


def load_descriptor_net(spec, path: Path | None = None):
    """DescriptorNet (BN folded into conv biases) with weights read from an FP32 ONNX file."""
    import onnx
    import torch
    from onnx import numpy_helper

    from copytrace.models.fold import fold_batchnorm
    from copytrace.models.resnet import DescriptorNet, NetConfig

    path = Path(path or spec.path("fp32"))
    net_cfg = dict(spec.training.get("net", {})) if isinstance(spec.training, dict) else {}
    for key in ("widths", "blocks"):
        if key in net_cfg:
            net_cfg[key] = tuple(net_cfg[key])
    net_cfg.setdefault("dims", spec.dims)
    try:
        model = fold_batchnorm(DescriptorNet(NetConfig(**net_cfg)).eval())
    except TypeError as e:
        raise ModelError(f"{spec.name}: training.net in the registry entry is invalid: {e}") from e
    # The exporter emits nodes in execution order; record the torch layers' call order to match.
    order: list[torch.nn.Module] = []
    hooks = [
        m.register_forward_hook(lambda mod, i, o: order.append(mod))
        for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))
    ]
    with torch.no_grad():
        model(torch.zeros(1, 3, *spec.input_size))
    for h in hooks:
        h.remove()
    g = onnx.load(str(path)).graph
    inits = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    layers = [n for n in g.node if n.op_type in ("Conv", "Gemm")]
    if len(layers) != len(order):
        raise ModelError(f"{path}: {len(layers)} Conv/Gemm nodes, network has {len(order)} layers")
    with torch.no_grad():
        for node, mod in zip(layers, order):
            if node.input[1] not in inits:
                raise ModelError(f"{path}: {node.op_type} weight is not a plain FP32 initializer")
            w = torch.from_numpy(inits[node.input[1]].copy())
            if w.shape != mod.weight.shape:
                raise ModelError(f"{path}: weight shape {tuple(w.shape)} != {tuple(mod.weight.shape)}")
            mod.weight.copy_(w)
            b = inits.get(node.input[2]) if len(node.input) > 2 else None
            mod.bias = torch.nn.Parameter(
                torch.from_numpy(b.copy()) if b is not None else torch.zeros(w.shape[0])
            )
    return model


class TorchCudaEncoder(Encoder):
    def __init__(self, spec, precision: str = "fp32", threads: int = 0, compile: bool = True) -> None:
        import torch

        if precision != "fp32":
            raise ModelError("torch-cuda runs the FP32 weights in bf16; for INT8 use 'tensorrt'")
        if not torch.cuda.is_available():
            raise ModelError("the torch-cuda backend needs a CUDA GPU")
        self.spec = spec
        self.precision = precision
        # bf16 through autocast, not by casting the weights: GeM pools in fp32 (x.float()) and
        # the projection must accept that.
        model = load_descriptor_net(spec).to("cuda", memory_format=torch.channels_last).eval()
        self._model = torch.compile(model, dynamic=True) if compile else model

    def encode(self, batch: np.ndarray) -> np.ndarray:
        import torch

        x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).to("cuda")
        x = x.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16):
            y = self._model(x).float().cpu().numpy()
        return l2_normalise(y)


@register_backend("torch-cuda")
def _make(spec, precision: str, threads: int) -> Encoder:
    return TorchCudaEncoder(spec, precision, threads)

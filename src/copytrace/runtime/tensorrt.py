"""TensorRT backend: builds an engine from the QDQ ONNX (explicit quantization) or the FP32
ONNX (FP16 allowed), caches it on disk, and runs it with torch CUDA tensors as I/O buffers.

Used only where ``tensorrt`` imports; the engine cache key covers the ONNX bytes, precision,
TensorRT version and GPU name, since engines are not portable across any of them.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from copytrace.errors import ModelError
from copytrace.runtime.base import Encoder, l2_normalise, register_backend

MAX_BATCH = 64


def _cache_dir() -> Path:
    root = os.environ.get("COPYTRACE_CACHE") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(root) / "copytrace" / "tensorrt"


def build_engine(onnx_path: Path, precision: str, input_size: tuple[int, int]) -> bytes:
    """Serialized engine for batches 1..MAX_BATCH (optimised for 32)."""
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # explicit batch is the only mode in TensorRT 10
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(Path(onnx_path).read_bytes()):
        errs = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ModelError(f"{onnx_path}: TensorRT cannot parse it: {errs}")
    config = builder.create_builder_config()
    config.set_flag(trt.BuilderFlag.FP16)  # layers kept float (mixed precision) may use FP16
    if precision == "int8":
        config.set_flag(trt.BuilderFlag.INT8)  # Q/DQ nodes give the scales: no calibrator
    h, w = input_size
    profile = builder.create_optimization_profile()
    name = network.get_input(0).name
    profile.set_shape(name, (1, 3, h, w), (32, 3, h, w), (MAX_BATCH, 3, h, w))
    config.add_optimization_profile(profile)
    blob = builder.build_serialized_network(network, config)
    if blob is None:
        raise ModelError(f"{onnx_path}: TensorRT engine build failed (see the log above)")
    return bytes(blob)


class TensorRTEncoder(Encoder):
    def __init__(self, spec, precision: str = "fp32", threads: int = 0) -> None:
        try:
            import tensorrt as trt
        except ModuleNotFoundError as e:
            raise ModuleNotFoundError(
                "the TensorRT backend needs 'tensorrt' (pip install tensorrt) and a CUDA GPU"
            ) from e
        import torch

        if not torch.cuda.is_available():
            raise ModelError("the TensorRT backend needs a CUDA GPU")
        self.spec = spec
        self.precision = precision
        onnx_path = spec.path(precision)
        key = hashlib.sha256(
            onnx_path.read_bytes()
            + f"{precision}|{trt.__version__}|{torch.cuda.get_device_name()}".encode()
        ).hexdigest()[:24]
        cached = _cache_dir() / f"{spec.name}-{precision}-{key}.engine"
        if cached.is_file():
            blob = cached.read_bytes()
        else:
            blob = build_engine(onnx_path, precision, spec.input_size)
            cached.parent.mkdir(parents=True, exist_ok=True)
            tmp = cached.with_suffix(".tmp")
            tmp.write_bytes(blob)
            tmp.replace(cached)  # atomic: a concurrent reader never sees half an engine
        self._runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self._engine = self._runtime.deserialize_cuda_engine(blob)
        self._context = self._engine.create_execution_context()
        names = [self._engine.get_tensor_name(i) for i in range(self._engine.num_io_tensors)]
        is_input = [self._engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT for n in names]
        self._input = names[is_input.index(True)]
        self._output = names[is_input.index(False)]
        self._stream = torch.cuda.Stream()

    def encode(self, batch: np.ndarray) -> np.ndarray:
        import torch

        parts = []
        for i in range(0, len(batch), MAX_BATCH):
            x = torch.from_numpy(np.ascontiguousarray(batch[i : i + MAX_BATCH], dtype=np.float32))
            x = x.to("cuda")
            y = torch.empty((x.shape[0], self.spec.dims), dtype=torch.float32, device="cuda")
            self._context.set_input_shape(self._input, tuple(x.shape))
            self._context.set_tensor_address(self._input, x.data_ptr())
            self._context.set_tensor_address(self._output, y.data_ptr())
            self._stream.wait_stream(torch.cuda.current_stream())  # x, y were made there
            with torch.cuda.stream(self._stream):
                if not self._context.execute_async_v3(self._stream.cuda_stream):
                    raise ModelError("TensorRT execution failed")
            self._stream.synchronize()
            parts.append(y.cpu().numpy())
        return l2_normalise(np.concatenate(parts, axis=0))


@register_backend("tensorrt")
def _make(spec, precision: str, threads: int) -> Encoder:
    return TensorRTEncoder(spec, precision, threads)

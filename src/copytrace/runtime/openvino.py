"""OpenVINO backend: the default on x86 CPUs; runs FP32 and QDQ INT8 ONNX files as they are."""
from __future__ import annotations

import numpy as np

from copytrace.runtime.base import Encoder, l2_normalise, register_backend


def compile_cpu(path, threads: int = 0, performance_hint: str | None = None):
    """The ONNX file at ``path`` compiled for OpenVINO's CPU plugin, in f32 arithmetic (every
    descriptor alike). ``threads=0`` lets the runtime choose."""
    try:
        import openvino as ov
    except ModuleNotFoundError as e:
        raise ModuleNotFoundError(
            "the OpenVINO backend needs the 'openvino' package: pip install openvino"
        ) from e
    core = ov.Core()
    # f32 inference hint: OpenVINO would otherwise pick bf16 on AMX CPUs and change numerics.
    config = {"INFERENCE_PRECISION_HINT": "f32"}
    if performance_hint:
        config["PERFORMANCE_HINT"] = performance_hint
    if threads:
        config["INFERENCE_NUM_THREADS"] = int(threads)
    return core.compile_model(core.read_model(str(path)), "CPU", config)


class OpenVinoEncoder(Encoder):
    def __init__(self, spec, precision: str = "fp32", threads: int = 0) -> None:
        self.spec = spec
        self.precision = precision
        self._compiled = compile_cpu(spec.path(precision), threads, performance_hint="LATENCY")
        self._request = self._compiled.create_infer_request()

    def encode(self, batch: np.ndarray) -> np.ndarray:
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        out = self._request.infer({0: batch})
        return l2_normalise(next(iter(out.values())))


@register_backend("openvino")
def _make(spec, precision: str, threads: int) -> Encoder:
    return OpenVinoEncoder(spec, precision, threads)

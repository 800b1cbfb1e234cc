"""OpenVINO backend: the default on x86 CPUs; runs FP32 and QDQ INT8 ONNX files as they are."""
from __future__ import annotations

import numpy as np

from copytrace.runtime.base import Encoder, l2_normalise, register_backend


class OpenVinoEncoder(Encoder):
    def __init__(self, spec, precision: str = "fp32", threads: int = 0) -> None:
        try:
            import openvino as ov
        except ModuleNotFoundError as e:
            raise ModuleNotFoundError(
                "the OpenVINO backend needs the 'openvino' package: pip install openvino"
            ) from e
        self.spec = spec
        self.precision = precision
        core = ov.Core()
        model = core.read_model(str(spec.path(precision)))
        # f32 inference hint: OpenVINO would otherwise pick bf16 on AMX CPUs and change numerics.
        config = {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY"}
        if threads:
            config["INFERENCE_NUM_THREADS"] = int(threads)
        self._compiled = core.compile_model(model, "CPU", config)
        self._request = self._compiled.create_infer_request()

    def encode(self, batch: np.ndarray) -> np.ndarray:
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        out = self._request.infer({0: batch})
        return l2_normalise(next(iter(out.values())))


@register_backend("openvino")
def _make(spec, precision: str, threads: int) -> Encoder:
    return OpenVinoEncoder(spec, precision, threads)

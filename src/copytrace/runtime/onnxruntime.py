"""ONNX Runtime backend. INT8 uses the U8-activation variant: ORT's signed path is slow on x86."""
from __future__ import annotations

import numpy as np

from copytrace.runtime.base import Encoder, l2_normalise, register_backend


class OnnxRuntimeEncoder(Encoder):
    def __init__(self, spec, precision: str = "fp32", threads: int = 0) -> None:
        try:
            import onnxruntime as ort
        except ModuleNotFoundError as e:
            raise ModuleNotFoundError(
                "the ONNX Runtime backend needs 'onnxruntime': pip install onnxruntime"
            ) from e
        self.spec = spec
        self.precision = precision
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            opts.intra_op_num_threads = int(threads)
        path = spec.path("int8-u8" if precision == "int8" else "fp32")
        self._session = ort.InferenceSession(
            str(path), sess_options=opts, providers=["CPUExecutionProvider"]
        )
        self._input = self._session.get_inputs()[0].name

    def encode(self, batch: np.ndarray) -> np.ndarray:
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        return l2_normalise(self._session.run(None, {self._input: batch})[0])


@register_backend("onnxruntime")
def _make(spec, precision: str, threads: int) -> Encoder:
    return OnnxRuntimeEncoder(spec, precision, threads)

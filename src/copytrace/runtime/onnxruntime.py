"""ONNX Runtime backend. INT8 uses the U8-activation variant: ORT's signed path is slow on x86."""
from __future__ import annotations

import numpy as np

from copytrace.runtime.base import Encoder, l2_normalise, register_backend

# On x86 CPUs without VNNI (AVX2 only: Zen 2/3, Haswell to Skylake), ONNX Runtime >= 1.21's
# default U8S8 GEMM sums pairs of u8*s8 products in int16 with saturation (VPMADDUBSW): with
# our full-range 8-bit weights and zero-point-128 activations it overflows, and INT8 outputs
# drift far from the QDQ graph's values (min cosine 0.86 on the test net, seen under qemu's
# AVX2 CPU model; ORT 1.18-1.20 did not). This entry selects the exact (non-saturating) kernel;
# CPUs with VNNI or AMX never saturate and are unaffected. Issue 17.
EXACT_U8S8 = ("session.x64quantprecision", "1")


def cpu_session(path, threads: int = 0):
    """An ONNX Runtime CPU session of the ONNX file at ``path`` with the options every
    descriptor runs with (image and audio alike). ``threads=0`` lets the runtime choose."""
    try:
        import onnxruntime as ort
    except ModuleNotFoundError as e:
        raise ModuleNotFoundError(
            "the ONNX Runtime backend needs 'onnxruntime': pip install onnxruntime"
        ) from e
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Worker threads sleep instead of spin-waiting between operators: on a shared CPU the
    # spinners steal the cores the kernels need, and the INT8 graph (many short
    # operators) suffered most (bench/experiments/quant_ort_options.py: INT8/FP32 at batch 32 went
    # from 1.5-2.2x to 2.7-3.2x under load 6-8).
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.add_session_config_entry(*EXACT_U8S8)
    if threads:
        opts.intra_op_num_threads = int(threads)
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


class OnnxRuntimeEncoder(Encoder):
    def __init__(self, spec, precision: str = "fp32", threads: int = 0) -> None:
        self.spec = spec
        self.precision = precision
        self._session = cpu_session(spec.path("int8-u8" if precision == "int8" else "fp32"),
                                    threads)
        self._input = self._session.get_inputs()[0].name

    def encode(self, batch: np.ndarray) -> np.ndarray:
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        return l2_normalise(self._session.run(None, {self._input: batch})[0])


@register_backend("onnxruntime")
def _make(spec, precision: str, threads: int) -> Encoder:
    return OnnxRuntimeEncoder(spec, precision, threads)

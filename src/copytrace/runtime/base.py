"""The Encoder interface, the shared preprocessing, and the backend registry."""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from copytrace.errors import ModelError

if TYPE_CHECKING:
    from PIL import Image

    from copytrace.models.registry import DescriptorSpec

PRECISIONS = ("fp32", "int8")


def prepare_images(images: list[Image.Image], spec: DescriptorSpec) -> np.ndarray:
    """RGB PIL images -> float32 NCHW batch, resized and normalised as the spec says."""
    return normalise_pixels(resize_pixels(images, spec.input_size), spec)


def resize_pixels(images: list[Image.Image], size: tuple[int, int]) -> np.ndarray:
    """PIL images -> uint8 NHWC RGB at ``size`` (h, w), resized as every encoder input is."""
    from PIL import Image

    h, w = size
    pixels = np.empty((len(images), h, w, 3), dtype=np.uint8)
    for i, im in enumerate(images):
        if im.mode != "RGB":
            im = im.convert("RGB")
        if im.size != (w, h):
            im = im.resize((w, h), Image.BILINEAR, reducing_gap=3.0)
        pixels[i] = np.asarray(im)
    return pixels


def normalise_pixels(pixels: np.ndarray, spec: DescriptorSpec) -> np.ndarray:
    """uint8 NHWC pixels at the spec's input size -> the float32 NCHW batch encoders take."""
    # One pass over the batch, in the same float32 operations as image by image.
    n, h, w, _ = pixels.shape
    mean = np.asarray(spec.mean, dtype=np.float32)[:, None, None]
    std = np.asarray(spec.std, dtype=np.float32)[:, None, None]
    out = np.empty((n, 3, h, w), dtype=np.float32)
    np.divide(pixels.transpose(0, 3, 1, 2), np.float32(255.0), out=out, dtype=np.float32)
    out -= mean
    out /= std
    return out


def l2_normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(n, 1e-12)


class Encoder(ABC):
    """Turns a preprocessed batch into L2-normalised descriptors."""

    spec: DescriptorSpec
    precision: str

    @abstractmethod
    def encode(self, batch: np.ndarray) -> np.ndarray:
        """float32 [N, 3, H, W] -> float32 [N, dims], unit L2 norm."""

    def encode_images(self, images: list[Image.Image], batch_size: int = 32) -> np.ndarray:
        if not images:
            return np.zeros((0, self.spec.dims), dtype=np.float32)
        parts = [
            self.encode(prepare_images(images[i : i + batch_size], self.spec))
            for i in range(0, len(images), batch_size)
        ]
        return np.concatenate(parts, axis=0)


GPU_BACKENDS = ("cuda", "cuda-int8", "torch-cuda", "tensorrt")


def resolve_precision(spec, precision: str, backend: str | None = None) -> str:
    """The precision a descriptor runs at, the same rule for every signal: 'auto' is 'int8'
    when the registry entry ships INT8 files made from the FP32 file now present
    (``spec.has_int8()``) and this CPU's int8 kernels are exact (``models/cpu.py``, issue 17),
    else 'fp32'; on a GPU ``backend`` the CPU test is left out (torch-cuda runs FP32 only);
    'fp32' and 'int8' are taken as asked."""
    if precision not in ("auto", *PRECISIONS):
        raise ModelError(f"precision must be 'auto' or one of {PRECISIONS}, not {precision!r}")
    if precision != "auto":
        return precision
    if backend == "torch-cuda":
        return "fp32"
    if backend in GPU_BACKENDS:  # the CPU's int8 kernels do not matter on a GPU
        return "int8" if spec.has_int8() else "fp32"
    from copytrace.models.cpu import int8_exact

    return "int8" if spec.has_int8() and int8_exact() else "fp32"


_BACKENDS: dict[str, Callable[..., Encoder]] = {}


def register_backend(name: str) -> Callable:
    def deco(factory: Callable[..., Encoder]) -> Callable[..., Encoder]:
        _BACKENDS[name] = factory
        return factory

    return deco


def load_encoder(
    spec: DescriptorSpec, backend: str = "openvino", precision: str = "fp32", threads: int = 0
) -> Encoder:
    """Build an encoder. ``threads=0`` lets the runtime choose."""
    if precision not in PRECISIONS:
        raise ModelError(f"precision must be one of {PRECISIONS}, not {precision!r}")
    # Importing the backend modules registers them; they import their runtime lazily.
    from copytrace.runtime import onnxruntime as _ort  # noqa: F401
    from copytrace.runtime import openvino as _ov  # noqa: F401
    from copytrace.runtime import tensorrt as _trt  # noqa: F401
    from copytrace.runtime import torch_cuda as _tc  # noqa: F401
    from copytrace.runtime import triton_int8 as _ti8  # noqa: F401

    if backend == "cuda":  # a GPU machine: the 8-bit kernels for INT8, bf16 torch for FP32
        backend = "cuda-int8" if precision == "int8" else "torch-cuda"
    if backend not in _BACKENDS:
        raise ModelError(f"unknown backend {backend!r} (known: {', '.join(sorted(_BACKENDS))})")
    return _BACKENDS[backend](spec, precision, threads)

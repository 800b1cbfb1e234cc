"""Run the audio fingerprint on CPU without torch: numpy log-mel -> ONNX (ONNX Runtime or
OpenVINO, sessions built as for every descriptor) -> L2-normalised window descriptors with their
start and end in seconds."""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from copytrace.errors import ModelError
from copytrace.models.audio_frontend import MelFrontend
from copytrace.models.audio_spec import AudioDescriptorSpec
from copytrace.runtime.base import resolve_precision

BACKENDS = ("onnxruntime", "openvino")
PRECISIONS = ("auto", "fp32", "int8")


class AudioEncoder:
    """``embed_windows(samples, sr) -> (starts_s, ends_s, vectors [N, dims])``.

    ``precision="auto"`` runs INT8 when the registry entry records INT8 files made from the
    current FP32 file (``copytrace quantize`` writes them only when the accuracy gate holds);
    OpenVINO reads the QDQ file, ONNX Runtime its U8-activation variant."""

    def __init__(self, spec: AudioDescriptorSpec, backend: str = "onnxruntime", threads: int = 0,
                 batch: int = 64, precision: str = "auto") -> None:
        if backend not in BACKENDS:
            raise ModelError(f"audio backend must be one of {BACKENDS}, not {backend!r}")
        if precision not in PRECISIONS:
            raise ModelError(f"audio precision must be one of {PRECISIONS}, not {precision!r}")
        precision = resolve_precision(spec, precision)
        self.precision = precision
        self.spec = spec
        self.mel = spec.mel_config()
        self.frontend = MelFrontend(self.mel)
        self.batch = batch
        if precision == "fp32":
            path = spec.path("fp32")
        else:
            path = spec.path("int8-u8" if backend == "onnxruntime" else "int8")
        # Sessions built as for every descriptor (runtime/onnxruntime.py, runtime/openvino.py).
        if backend == "onnxruntime":
            from copytrace.runtime.onnxruntime import cpu_session

            sess = cpu_session(path, threads)
            name = sess.get_inputs()[0].name
            self._run = lambda x: sess.run(None, {name: x})[0]
        else:
            from copytrace.runtime.openvino import compile_cpu

            compiled = compile_cpu(path, threads)
            self._run = lambda x: compiled(x)[0]

    def encode(self, windows: np.ndarray) -> np.ndarray:
        """log-mel windows [N, 1, n_mels, T] -> [N, dims] float32, unit norm."""
        if len(windows) == 0:
            return np.zeros((0, self.spec.dims), dtype=np.float32)
        out = [np.asarray(self._run(np.ascontiguousarray(windows[i : i + self.batch])), np.float32)
               for i in range(0, len(windows), self.batch)]
        v = np.concatenate(out)
        return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)

    def embed_windows(self, samples: np.ndarray, sr: int, hop_s: float | None = None,
                      pad_short: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Mono float32 samples at the model's rate -> (starts_s, ends_s, vectors).

        ``hop_s`` defaults to the index hop. A clip shorter than one window is zero-padded to
        one window when ``pad_short`` (queries of 1 s), else gives no windows."""
        if sr != self.mel.sample_rate:
            raise ValueError(f"samples must be at {self.mel.sample_rate} Hz (decode with "
                             f"iter_audio(path, sample_rate={self.mel.sample_rate})), got {sr}")
        x = np.asarray(samples, dtype=np.float32).reshape(-1)
        if pad_short and 0 < x.size < self.mel.window_samples:
            x = np.pad(x, (0, self.mel.window_samples - x.size))
        first, wins = self.frontend.windows(self.frontend.log_mel(x), hop_s or self.spec.hop_s)
        # Near-silent windows look alike in every recording (after the per-window level
        # normalisation): they are dropped, never indexed or searched.
        keep = self.audible(x, first)
        first, wins = first[keep], wins[keep]
        starts = first * self.mel.frame_s
        return starts, starts + self.mel.window_s, self.encode(wins)

    def audible(self, x: np.ndarray, first_frames: np.ndarray) -> np.ndarray:
        """Mask of windows whose RMS is above ``spec.silence_dbfs``."""
        if len(first_frames) == 0:
            return np.zeros(0, dtype=bool)
        c = np.concatenate([[0.0], np.cumsum(x.astype(np.float64) ** 2)])
        a = first_frames * self.mel.hop_frames
        e = np.minimum(a + self.mel.window_samples, x.size)
        rms = np.sqrt((c[e] - c[a]) / np.maximum(e - a, 1))
        return 20 * np.log10(rms + 1e-12) > self.spec.silence_dbfs

    def embed_stream(self, chunks: Iterable[tuple[float, np.ndarray]],
                     hop_s: float | None = None) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Chunks from ``iter_audio`` -> descriptor batches, windows spanning chunk borders
        included: the unfinished tail of each chunk is carried into the next."""
        hop_n = round((hop_s or self.spec.hop_s) * self.mel.sample_rate)
        tail = np.zeros(0, dtype=np.float32)
        tail_start_s = None
        for start_s, x in chunks:
            if tail_start_s is None:
                tail_start_s = start_s
            buf = np.concatenate([tail, x])
            starts, ends, vec = self.embed_windows(buf, self.mel.sample_rate, hop_s, pad_short=False)
            if len(vec):
                yield starts + tail_start_s, ends + tail_start_s, vec
            # Windows computed (silent ones included) decide how far the stream has advanced.
            n_frames = self.frontend.n_frames(buf.size)
            step = hop_n // self.mel.hop_frames
            n_win = 0 if n_frames < self.mel.window_frames else 1 + (n_frames - self.mel.window_frames) // step
            consumed = n_win * hop_n
            tail = buf[consumed:]
            tail_start_s += consumed / self.mel.sample_rate

    def embed_file(self, path: str | Path, hop_s: float | None = None, chunk_s: float = 30.0):
        from copytrace.media.audio import iter_audio

        parts = list(self.embed_stream(iter_audio(path, self.mel.sample_rate, chunk_s), hop_s))
        if not parts:
            return (np.zeros(0), np.zeros(0), np.zeros((0, self.spec.dims), np.float32))
        return tuple(np.concatenate(p) for p in zip(*parts))


def load_audio_encoder(spec: AudioDescriptorSpec, backend: str = "onnxruntime",
                       threads: int = 0, precision: str = "auto") -> AudioEncoder:
    return AudioEncoder(spec, backend, threads, precision=precision)

"""The audio fingerprint frontend without torch: log-mel frames and 1 s windows in numpy.

Training computes the same thing in torch (``audio_net.TorchMelFrontend``) from the same
constants built here (Hann window, mel filterbank); tests/test_audio_frontend.py holds them equal.

Frames: ``n_fft`` samples every ``hop_frames`` samples (no centring, no padding), power
spectrum, triangular mel filters on the HTK mel scale between ``f_min`` and ``f_max``,
natural log of (power + ``eps``). A window is ``window_frames`` consecutive frames; its start
is the first sample of its first frame.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class MelConfig:
    sample_rate: int = 8000
    n_fft: int = 512
    hop_frames: int = 100  # 12.5 ms: window hops of 0.1/0.5 s are whole frames
    n_mels: int = 64
    f_min: float = 300.0
    f_max: float = 4000.0
    eps: float = 1e-8
    window_frames: int = 76  # (76 - 1) * 100 + 512 = 8012 samples: 1.0 s at 8 kHz

    def __post_init__(self) -> None:
        if not 0 <= self.f_min < self.f_max <= self.sample_rate / 2:
            raise ValueError("need 0 <= f_min < f_max <= sample_rate / 2")
        if self.n_fft < 16 or self.hop_frames < 1 or self.window_frames < 2 or self.n_mels < 4:
            raise ValueError("n_fft >= 16, hop_frames >= 1, window_frames >= 2, n_mels >= 4")

    @property
    def frame_s(self) -> float:
        return self.hop_frames / self.sample_rate

    @property
    def window_samples(self) -> int:
        return (self.window_frames - 1) * self.hop_frames + self.n_fft

    @property
    def window_s(self) -> float:
        return self.window_samples / self.sample_rate


def hann_window(n: int) -> np.ndarray:
    """Periodic Hann, as used for STFT analysis."""
    return (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)).astype(np.float32)


def _hz_to_mel(f):
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def _mel_to_hz(m):
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


def mel_filterbank(cfg: MelConfig) -> np.ndarray:
    """[n_mels, n_fft // 2 + 1] float32 triangular filters, unit peak."""
    freqs = np.arange(cfg.n_fft // 2 + 1) * cfg.sample_rate / cfg.n_fft
    edges = _mel_to_hz(np.linspace(_hz_to_mel(cfg.f_min), _hz_to_mel(cfg.f_max), cfg.n_mels + 2))
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    up = (freqs[None] - lo) / (mid - lo)
    down = (hi - freqs[None]) / (hi - mid)
    return np.maximum(0.0, np.minimum(up, down)).astype(np.float32)


class MelFrontend:
    """Samples -> log-mel frames [n_mels, F] and overlapping windows [N, 1, n_mels, T]."""

    def __init__(self, cfg: MelConfig = MelConfig()) -> None:
        self.cfg = cfg
        self.window = hann_window(cfg.n_fft)
        self.fb = mel_filterbank(cfg)

    def n_frames(self, n_samples: int) -> int:
        c = self.cfg
        return 0 if n_samples < c.n_fft else 1 + (n_samples - c.n_fft) // c.hop_frames

    def log_mel(self, x: np.ndarray) -> np.ndarray:
        c = self.cfg
        x = np.ascontiguousarray(x, dtype=np.float32)
        f = self.n_frames(x.size)
        if f == 0:
            return np.zeros((c.n_mels, 0), dtype=np.float32)
        frames = np.lib.stride_tricks.as_strided(
            x, shape=(f, c.n_fft), strides=(x.strides[0] * c.hop_frames, x.strides[0])
        )
        spec = np.fft.rfft(frames * self.window, axis=1)
        power = (spec.real**2 + spec.imag**2).astype(np.float32)
        return np.log(self.fb @ power.T + np.float32(c.eps)).astype(np.float32)

    def windows(self, mel: np.ndarray, hop_s: float) -> tuple[np.ndarray, np.ndarray]:
        """Slice windows every ``hop_s`` (rounded to whole frames) -> (first frame, [N,1,M,T])."""
        c = self.cfg
        step = max(1, round(hop_s / c.frame_s))
        f = mel.shape[1]
        if f < c.window_frames:
            return np.zeros(0, dtype=np.int64), np.zeros((0, 1, c.n_mels, c.window_frames), np.float32)
        first = np.arange(0, f - c.window_frames + 1, step, dtype=np.int64)
        idx = first[:, None] + np.arange(c.window_frames)[None]
        return first, np.ascontiguousarray(mel[:, idx].transpose(1, 0, 2)[:, None])

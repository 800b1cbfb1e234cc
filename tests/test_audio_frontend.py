"""The numpy log-mel frontend (inference, no torch) must equal the torch one (training), and
windows must carry their real start times."""
from __future__ import annotations

import numpy as np
import pytest

from copytrace.models.audio_frontend import MelConfig, MelFrontend, mel_filterbank


def music_like(sr: int, dur_s: float, seed: int = 0) -> np.ndarray:
    """Notes with harmonics, attacks and decays, plus a little noise: a stand-in for music."""
    rng = np.random.default_rng(seed)
    n = int(sr * dur_s)
    x = np.zeros(n, dtype=np.float64)
    t0 = 0
    while t0 < n:
        d = int(rng.uniform(0.1, 0.5) * sr)
        f = 110 * 2 ** (rng.integers(0, 36) / 12)
        t = np.arange(min(d, n - t0)) / sr
        env = np.exp(-t * rng.uniform(2, 8))
        x[t0 : t0 + t.size] += env * sum(np.sin(2 * np.pi * f * h * t) / h for h in (1, 2, 3, 4))
        t0 += d
    x += 0.01 * rng.standard_normal(n)
    return (0.3 * x / np.abs(x).max()).astype(np.float32)


def test_numpy_and_torch_frontends_agree():
    torch = pytest.importorskip("torch")
    from copytrace.models.audio_net import TorchMelFrontend

    cfg = MelConfig()
    x = music_like(cfg.sample_rate, 6.0)
    ref = MelFrontend(cfg).log_mel(x)
    got = TorchMelFrontend(cfg)(torch.from_numpy(x)[None])[0].numpy()
    assert ref.shape == got.shape == (cfg.n_mels, 1 + (x.size - cfg.n_fft) // cfg.hop_frames)
    # Same constants, float32 FFTs on both sides: equal to float32 rounding in log units.
    assert np.abs(ref - got).max() < 2e-3
    assert np.abs(ref - got).mean() < 1e-5


def test_filterbank_covers_the_band_once():
    cfg = MelConfig()
    fb = mel_filterbank(cfg)
    f = np.arange(fb.shape[1]) * cfg.sample_rate / cfg.n_fft
    lo_peak, hi_peak = f[fb[0].argmax()], f[fb[-1].argmax()]
    inside = (f >= lo_peak) & (f <= hi_peak)
    # Between the first and last band centres the triangles tile the axis: no holes, no piles.
    assert np.allclose(fb[:, inside].sum(0), 1.0, atol=0.02)
    assert np.all(fb[:, f < cfg.f_min - 1] == 0)


def test_windows_start_on_the_hop_grid():
    cfg = MelConfig()
    fe = MelFrontend(cfg)
    x = music_like(cfg.sample_rate, 3.0)
    first, wins = fe.windows(fe.log_mel(x), hop_s=0.5)
    starts = first * cfg.frame_s
    assert np.allclose(starts, np.arange(len(starts)) * 0.5)
    assert wins.shape[1:] == (1, cfg.n_mels, cfg.window_frames)
    assert starts[-1] + cfg.window_s <= 3.0 + 1e-9
    # Window k is exactly the frames it claims to be.
    mel = fe.log_mel(x)
    k = 3
    assert np.array_equal(wins[k, 0], mel[:, first[k] : first[k] + cfg.window_frames])


def test_too_short_signal_gives_no_windows():
    fe = MelFrontend()
    first, wins = fe.windows(fe.log_mel(np.zeros(4000, np.float32)), 0.5)
    assert len(first) == 0 and wins.shape[0] == 0

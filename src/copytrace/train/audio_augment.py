"""Degradations that make a training positive out of a clean 8 kHz music chunk, all batched
on the accelerator (torch). Each is one function over [B, L] float waveforms.

The families follow the issue: speed/pitch (+-2 %), synthetic room reverb, band-pass/EQ,
time shift (done by the caller's crop), background noise at 0-10 dB SNR (other music, white,
pink), and a lossy-codec-like spectral quantisation.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class AugmentConfig:
    sample_rate: int = 8000
    max_speed: float = 0.02
    p_reverb: float = 0.7
    rt60_s: tuple[float, float] = (0.1, 0.9)
    ir_s: float = 0.5
    p_eq: float = 0.8
    p_noise: float = 0.95
    snr_db: tuple[float, float] = (-2.0, 10.0)
    p_music_noise: float = 0.5
    p_wobble: float = 0.5  # slow loudness changes of the background (people talk, cars pass)
    p_codec: float = 0.5
    # Source-side variety (training only): before anchor and positive are cut, a chunk is
    # resampled by a rate up to (1 + source_speed)x either way (tempo and pitch together), so
    # the network sees "new songs" made of the same 9.8 h; background music gets it too.
    source_speed: float = 0.0
    p_source_speed: float = 0.8

    def __post_init__(self) -> None:
        if not 0 <= self.max_speed < 0.2 or self.snr_db[0] > self.snr_db[1]:
            raise ValueError("max_speed in [0, 0.2) and snr_db as (low, high)")
        if not 0 <= self.source_speed < 0.5 or not 0 <= self.p_source_speed <= 1:
            raise ValueError("source_speed in [0, 0.5) and p_source_speed in [0, 1]")


def _u(b: int, lo: float, hi: float, device) -> torch.Tensor:
    return torch.rand(b, device=device) * (hi - lo) + lo


def _resample(x: torch.Tensor, rate: torch.Tensor, out_n: int) -> torch.Tensor:
    """[B, L] -> [B, out_n] around the chunk centres: output sample i reads input
    c_in + (i - c_out) * rate (tempo and pitch together, like a sped-up record), linear."""
    n = x.shape[1]
    pos = (n - 1) / 2 + (torch.arange(out_n, device=x.device, dtype=torch.float32)[None]
                         - (out_n - 1) / 2) * rate[:, None]
    pos = pos.clamp(0, n - 1.001)
    i0 = pos.floor().long()
    w = pos - i0
    return torch.gather(x, 1, i0) * (1 - w) + torch.gather(x, 1, i0 + 1) * w


def change_speed(x: torch.Tensor, rate: torch.Tensor) -> torch.Tensor:
    """Resample each chunk by ``rate`` around its centre, keeping its length."""
    return _resample(x, rate, x.shape[1])


def vary_source(x: torch.Tensor, out_n: int, cfg: AugmentConfig) -> torch.Tensor:
    """[B, L] -> [B, out_n], the centre of each chunk resampled by a log-uniform rate in
    [1 / (1 + source_speed), 1 + source_speed] (probability ``p_source_speed``, else rate 1).
    L must be at least out_n * (1 + source_speed) + 2."""
    b = x.shape[0]
    r = torch.exp(_u(b, -1.0, 1.0, x.device) * torch.log1p(torch.tensor(cfg.source_speed)))
    r = torch.where(torch.rand(b, device=x.device) < cfg.p_source_speed, r, torch.ones_like(r))
    return _resample(x, r, out_n)


def _fft_conv(x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    n = x.shape[1] + h.shape[1]
    y = torch.fft.irfft(torch.fft.rfft(x, n) * torch.fft.rfft(h, n), n)
    return y[:, : x.shape[1]]


def reverb(x: torch.Tensor, cfg: AugmentConfig) -> torch.Tensor:
    """Room impulse responses: a direct path, a few sparse early reflections (first 50 ms), and
    an exponentially decaying noise tail (RT60 drawn per item) whose high frequencies die
    faster than its lows, as walls and air absorb them."""
    b, dev = x.shape[0], x.device
    m = int(cfg.ir_s * cfg.sample_rate)
    t = torch.arange(m, device=dev, dtype=torch.float32)[None] / cfg.sample_rate
    rt60 = _u(b, *cfg.rt60_s, dev)[:, None]
    low = torch.randn(b, m, device=dev) * torch.exp(-6.9 * t / rt60)
    high = torch.randn(b, m, device=dev) * torch.exp(-6.9 * t / (rt60 * _u(b, 0.3, 1.0, dev)[:, None]))
    spec_l, spec_h = torch.fft.rfft(low), torch.fft.rfft(high)
    f = torch.linspace(0, cfg.sample_rate / 2, spec_l.shape[1], device=dev)[None]
    split = 1 / (1 + (f / _u(b, 800.0, 3000.0, dev)[:, None]) ** 2)
    tail = torch.fft.irfft(spec_l * split + spec_h * (1 - split), m)
    early = int(0.05 * cfg.sample_rate)
    taps = torch.randint(8, early, (b, 6), device=dev)
    gains = _u(b * 6, 0.1, 0.7, dev).view(b, 6) * (torch.rand(b, 6, device=dev) < 0.7)
    tail[:, :8] = 0
    tail = tail * (t >= 0.01)  # the diffuse tail starts after the first reflections
    drr = 10 ** (_u(b, -6.0, 6.0, dev) / 10)  # direct-to-reverberant energy ratio
    tail = tail / tail.square().sum(1, keepdim=True).clamp(min=1e-12).sqrt() / drr.sqrt()[:, None]
    tail = tail.scatter_add(1, taps, gains)
    tail[:, 0] = 1.0
    return _fft_conv(x, tail)


def equalise(x: torch.Tensor, cfg: AugmentConfig) -> torch.Tensor:
    """Random high-pass, low-pass and a smooth +-6 dB curve, applied in the frequency domain."""
    b, n = x.shape
    dev = x.device
    spec = torch.fft.rfft(x)
    f = torch.linspace(0, cfg.sample_rate / 2, spec.shape[1], device=dev)[None]
    hp = _u(b, 40.0, 500.0, dev)[:, None]
    lp = _u(b, 2000.0, 4000.0, dev)[:, None]
    order = _u(b, 1.0, 4.0, dev)[:, None]
    gain = 1 / (1 + (hp / f.clamp(min=1.0)) ** (2 * order)) / (1 + (f / lp) ** (2 * order))
    curve = torch.zeros_like(gain)
    for _ in range(3):
        a = _u(b, -2.0, 2.0, dev)[:, None]
        k = _u(b, 0.5, 4.0, dev)[:, None]
        ph = _u(b, 0.0, 6.283, dev)[:, None]
        curve = curve + a * torch.cos(k * f / cfg.sample_rate * 6.283 + ph)
    gain = gain.sqrt() * 10 ** (curve / 20)
    return torch.fft.irfft(spec * gain, n)


def coloured_noise(b: int, n: int, device, exponent: torch.Tensor) -> torch.Tensor:
    """Noise with power ~ 1/f^exponent (0 white, 1 pink, 2 brown)."""
    spec = torch.fft.rfft(torch.randn(b, n, device=device))
    f = torch.arange(spec.shape[1], device=device, dtype=torch.float32).clamp(min=1.0)[None]
    return torch.fft.irfft(spec / f ** (exponent[:, None] / 2), n)


def add_noise(x: torch.Tensor, music: torch.Tensor, cfg: AugmentConfig) -> torch.Tensor:
    b, n = x.shape
    dev = x.device
    synth = coloured_noise(b, n, dev, torch.randint(0, 3, (b,), device=dev).float())
    use_music = (torch.rand(b, device=dev) < cfg.p_music_noise)[:, None]
    noise = torch.where(use_music, music[:, :n], synth)
    t = torch.arange(n, device=dev, dtype=torch.float32)[None] / cfg.sample_rate
    rate = _u(b, 0.2, 2.0, dev)[:, None]
    depth = _u(b, 0.0, 6.0, dev)[:, None] * (torch.rand(b, 1, device=dev) < cfg.p_wobble)
    noise = noise * 10 ** (depth * torch.sin(6.283 * rate * t + _u(b, 0.0, 6.283, dev)[:, None]) / 20)
    snr = 10 ** (_u(b, *cfg.snr_db, dev) / 10)
    px = audible_power(x, cfg.sample_rate).clamp(min=1e-8)
    pn = audible_power(noise, cfg.sample_rate).clamp(min=1e-8)
    return x + noise * (px / (pn * snr)).sqrt()[:, None]


def audible_power(x: torch.Tensor, sample_rate: int, f_low: float = 20.0) -> torch.Tensor:
    """Mean power of each row above ``f_low``: a DC offset or infrasound (some masters carry
    a large one) is not sound, and counting it would set the noise far louder than the SNR
    says."""
    n = x.shape[1]
    spec = torch.fft.rfft(x)
    keep = torch.fft.rfftfreq(n, 1 / sample_rate).to(x.device) >= f_low
    return torch.fft.irfft(spec * keep, n).square().mean(1)


def codec_like(x: torch.Tensor, cfg: AugmentConfig) -> torch.Tensor:
    """What perceptual codecs do at low bitrates: drop the quiet time-frequency cells, blur the
    kept magnitudes, cut the top band; plus coarse sample requantisation."""
    b, n = x.shape
    dev = x.device
    win = torch.hann_window(256, device=dev)
    s = torch.stft(x, 256, 64, window=win, return_complex=True)
    mag = s.abs()
    floor_db = _u(b, 20.0, 45.0, dev)[:, None, None]
    peak = mag.amax(dim=1, keepdim=True)
    keep = (20 * torch.log10(mag / peak.clamp(min=1e-8) + 1e-8) > -floor_db).float()
    jitter = 1 + 0.3 * torch.randn_like(mag) * _u(b, 0.0, 1.0, dev)[:, None, None]
    cutoff = (_u(b, 0.6, 1.0, dev) * s.shape[1]).long()[:, None, None]
    band = (torch.arange(s.shape[1], device=dev)[None, :, None] < cutoff).float()
    y = torch.istft(s * keep * jitter.clamp(min=0) * band, 256, 64, window=win, length=n)
    step = 2.0 ** -_u(b, 6.0, 10.0, dev)[:, None]
    return torch.round(y / step) * step


def degrade(chunk: torch.Tensor, music: torch.Tensor, crop: torch.Tensor, out_n: int,
            cfg: AugmentConfig) -> torch.Tensor:
    """chunk [B, L] clean -> [B, out_n] degraded copy starting at sample ``crop`` (per item)."""
    b, dev = chunk.shape[0], chunk.device
    x = change_speed(chunk, 1 + _u(b, -cfg.max_speed, cfg.max_speed, dev))
    m = (torch.rand(b, device=dev) < cfg.p_reverb)[:, None]
    x = torch.where(m, reverb(x, cfg), x)
    m = (torch.rand(b, device=dev) < cfg.p_eq)[:, None]
    x = torch.where(m, equalise(x, cfg), x)
    idx = crop[:, None] + torch.arange(out_n, device=dev)[None]
    x = torch.gather(x, 1, idx)
    m = (torch.rand(b, device=dev) < cfg.p_noise)[:, None]
    x = torch.where(m, add_noise(x, music, cfg), x)
    m = (torch.rand(b, device=dev) < cfg.p_codec)[:, None]
    x = torch.where(m, codec_like(x, cfg), x)
    return x

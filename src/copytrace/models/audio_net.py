"""The audio fingerprint network (torch; imported only by training and export).

log-mel window [N, 1, n_mels, T] -> per-window level normalisation -> 5 stages of two 3x3
convolutions (the first strided) -> flatten (keeps the time/frequency layout inside the
window, as fingerprints need) -> linear -> 128-d, L2-normalised. The level normalisation sits
inside the network so the exported ONNX holds it and the numpy frontend stays a plain log-mel.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from copytrace.models.audio_frontend import MelConfig, hann_window, mel_filterbank

DYNAMIC_RANGE = 18.42  # natural-log units: 80 dB below the window's loudest cell is the floor


@dataclass(frozen=True)
class AudioNetConfig:
    widths: tuple[int, ...] = (32, 64, 128, 192, 256)
    dims: int = 128
    n_mels: int = 64
    window_frames: int = 76

    def __post_init__(self) -> None:
        if len(self.widths) < 2 or self.dims <= 0:
            raise ValueError("need at least two stages and positive dims")


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, stride=1, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
    )


class AudioFingerprintNet(nn.Module):
    def __init__(self, cfg: AudioNetConfig | None = None) -> None:
        super().__init__()
        cfg = cfg or AudioNetConfig()
        self.cfg = cfg
        stages, cin = [], 1
        for w in cfg.widths:
            stages.append(_block(cin, w))
            cin = w
        self.features = nn.Sequential(*stages)
        with torch.no_grad():
            n = self.features(torch.zeros(1, 1, cfg.n_mels, cfg.window_frames)).numel()
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(0.0), nn.Linear(n, cfg.dims))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Gain invariance: measure each window against its own loudest cell, floor at -80 dB.
        peak = x.amax(dim=(2, 3), keepdim=True)
        x = torch.clamp(x - peak, min=-DYNAMIC_RANGE) / DYNAMIC_RANGE + 0.5
        return F.normalize(self.head(self.features(x)), dim=1)


class TorchMelFrontend(nn.Module):
    """Batched log-mel in torch with the numpy frontend's constants: [B, S] -> [B, n_mels, F]."""

    def __init__(self, cfg: MelConfig | None = None) -> None:
        super().__init__()
        cfg = cfg or MelConfig()
        self.cfg = cfg
        self.register_buffer("window", torch.from_numpy(hann_window(cfg.n_fft)), persistent=False)
        self.register_buffer("fb", torch.from_numpy(mel_filterbank(cfg)), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.cfg
        frames = x.float().unfold(-1, c.n_fft, c.hop_frames)  # [B, F, n_fft]
        spec = torch.fft.rfft(frames * self.window, dim=-1)
        power = spec.real.square() + spec.imag.square()
        return torch.log(torch.matmul(power, self.fb.T) + c.eps).transpose(-1, -2)


def export_audio_onnx(model: AudioFingerprintNet, path: str, opset: int = 17) -> None:
    model = model.eval().float().cpu()
    cfg = model.cfg
    dummy = torch.randn(2, 1, cfg.n_mels, cfg.window_frames)
    torch.onnx.export(
        model, (dummy,), path, input_names=["logmel"], output_names=["descriptor"],
        dynamic_axes={"logmel": {0: "n"}, "descriptor": {0: "n"}}, opset_version=opset, dynamo=False,
    )


def check_onnx_parity(model: AudioFingerprintNet, path: str, windows: np.ndarray) -> float:
    """Largest absolute difference between torch and ONNX Runtime outputs on ``windows``."""
    import onnxruntime as ort

    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    with torch.no_grad():
        ref = model.eval().float().cpu()(torch.from_numpy(windows)).numpy()
    got = sess.run(None, {"logmel": windows.astype(np.float32)})[0]
    return float(np.abs(ref - got).max())

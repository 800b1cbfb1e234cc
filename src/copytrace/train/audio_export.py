"""Export a trained audio fingerprint checkpoint to ONNX with its registry entry.

    python -m copytrace.train.audio_export --ckpt ckpt/audio/audio-h100.pt --name ct-audio-nafp

Writes ``<name>.onnx`` and ``<name>.json`` (AudioDescriptorSpec) into models/weights/, after
checking ONNX Runtime against torch on real log-mel windows from the numpy frontend.
Calibration (threshold_similarity) is filled in afterwards by ``bench/audio.py --calibrate``.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from copytrace.models.registry import WEIGHTS_DIR


def export(ckpt: Path, name: str, version: str, out_dir: Path, hop_s: float, query_hop_s: float) -> Path:
    import torch

    from copytrace.models.audio_frontend import MelConfig, MelFrontend
    from copytrace.models.audio_net import (
        AudioFingerprintNet,
        AudioNetConfig,
        check_onnx_parity,
        export_audio_onnx,
    )
    from copytrace.models.audio_spec import AudioDescriptorSpec

    blob = torch.load(ckpt, map_location="cpu", weights_only=False)
    meta = blob["meta"]
    net_cfg = AudioNetConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in meta["net"].items()})
    mel = MelConfig(**meta["mel"])
    model = AudioFingerprintNet(net_cfg)
    model.load_state_dict(blob["state_dict"])
    model.eval()
    out_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = out_dir / f"{name}.onnx"
    export_audio_onnx(model, str(onnx_path))
    # Parity on frontend output of a music-like signal (harmonics with an envelope).
    t = np.arange(mel.sample_rate * 4) / mel.sample_rate
    x = sum(np.sin(2 * np.pi * f * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 1.5 * t + f)) for f in (220, 330, 880, 1250))
    fe = MelFrontend(mel)
    _, wins = fe.windows(fe.log_mel(x.astype(np.float32) / 4), 0.5)
    err = check_onnx_parity(model, str(onnx_path), wins)
    if err > 1e-4:
        raise RuntimeError(f"ONNX output differs from torch by {err}")
    cfg = meta["config"]
    spec = AudioDescriptorSpec(
        name=name, version=version, file=onnx_path.name, sample_rate=mel.sample_rate,
        n_fft=mel.n_fft, hop_frames=mel.hop_frames, n_mels=mel.n_mels, f_min=mel.f_min,
        f_max=mel.f_max, eps=mel.eps, window_frames=mel.window_frames,
        window_s=round(mel.window_s, 6), hop_s=hop_s, query_hop_s=query_hop_s, dims=net_cfg.dims,
        calibration="uncalibrated: run bench/audio.py --calibrate",
        training={
            "recipe": "NAFP-style NT-Xent (train/audio.py), positives degraded on the GPU",
            "config": cfg.get("name"), "batch": cfg.get("batch"), "steps": meta.get("steps"),
            "train_s": meta.get("train_s"), "tau": cfg.get("tau"), "lr": cfg.get("lr"),
            "data": f"train packages of DATA.md (wesnoth-1.16-music, warzone2100-music, "
                    f"ufoai-music), {meta.get('pack_hours')} h packed at 8 kHz "
                    f"({', '.join(Path(p).name for p in meta.get('packs', [])) or 'pack'})",
            "device": meta.get("device"),
            "final_val_top1": (meta.get("history") or [{}])[-1].get("val_top1"),
            "onnx_max_abs_diff": err,
        },
        directory=str(out_dir),
    )
    path = out_dir / f"{name}.json"
    path.write_text(json.dumps(spec.to_json(), indent=1) + "\n")
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ckpt", type=Path, required=True)
    ap.add_argument("--name", default="ct-audio-nafp")
    ap.add_argument("--version", default="1")
    ap.add_argument("--out-dir", type=Path, default=WEIGHTS_DIR)
    ap.add_argument("--hop-s", type=float, default=0.5)
    ap.add_argument("--query-hop-s", type=float, default=0.1)
    a = ap.parse_args()
    print(export(a.ckpt, a.name, a.version, a.out_dir, a.hop_s, a.query_hop_s))


if __name__ == "__main__":
    main()

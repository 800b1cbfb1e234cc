"""Build an audio model's typicality cohort (models/audio_cohort.py) from the *train* packs.

    python -m copytrace.train.audio_cohort --data data/audio/train/all_0 data/audio/train/all_1 \\
        data/audio/train/all_2 [--weights-dir DIR] [--n 16384] [--k 16]

Each cohort window is a random 1 s window of train music degraded as a training positive is
(train/audio_augment.py: speed, reverb, EQ, shift, background noise or other train music,
codec-like damage; CPU torch), embedded with the entry's FP32 ONNX model. The file goes beside
the weights as ``<name>.cohort.npy`` (float16) and the entry gets ``cohort_file``, ``cohort_k``
and ``cohort_level``: the mean typicality of another draw of such windows, so that normalised
similarities keep the scale the aligner's thresholds were set on. Eval media never enters.
"""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np

log = logging.getLogger("copytrace.train.audio_cohort")


def degraded_windows(pack_dirs, n: int, seed: int, mel_cfg, batch: int = 512) -> np.ndarray:
    """[n, window samples] float32: training-style positives cut from random train windows."""
    import torch

    from copytrace.train.audio import PackSampler, _chunk_n
    from copytrace.train.audio_augment import AugmentConfig, degrade

    torch.manual_seed(seed)
    chunk_n, win_n = _chunk_n(mel_cfg), mel_cfg.window_samples
    margin = (chunk_n - win_n) // 2
    sampler = PackSampler(pack_dirs, chunk_n, torch.device("cpu"), 0, seed)
    if sampler.sample_rate != mel_cfg.sample_rate:
        raise ValueError(f"packs are at {sampler.sample_rate} Hz, the model at {mel_cfg.sample_rate}")
    cfg = AugmentConfig(sample_rate=sampler.sample_rate)
    out = []
    with torch.no_grad():
        for a in range(0, n, batch):
            b = min(batch, n - a)
            chunk, _, _ = sampler.draw(b)
            music, _, _ = sampler.draw(b)
            shift = ((torch.rand(b) * 2 - 1) * 0.06 * mel_cfg.sample_rate).long()
            out.append(degrade(chunk, music, margin + shift, win_n, cfg).numpy())
    return np.concatenate(out).astype(np.float32)


def embed_windows(enc, windows: np.ndarray, batch: int = 256) -> np.ndarray:
    """One descriptor per audible window (the encoder's silence gate drops the others)."""
    mels = []
    for w in windows:
        first, wins = enc.frontend.windows(enc.frontend.log_mel(w), enc.spec.hop_s)
        mels.extend(wins[:1][enc.audible(w, first[:1])])
    mels = np.stack(mels)
    return np.concatenate([enc.encode(mels[a : a + batch]) for a in range(0, len(mels), batch)])


def build(spec, pack_dirs, n: int, k: int, seed: int = 0) -> tuple[np.ndarray, float]:
    """(cohort vectors float16 [~n, dims], level): the level is the mean typicality of 2,048
    other windows drawn the same way."""
    from copytrace.models.audio_cohort import AudioCohort
    from copytrace.runtime.audio import load_audio_encoder

    enc = load_audio_encoder(spec, precision="fp32")
    wins = degraded_windows(pack_dirs, n + 2048, seed, enc.mel)
    vectors = embed_windows(enc, wins)
    cohort, probe = vectors[:-2048], vectors[-2048:]
    level = float(AudioCohort(cohort, k).typicality(probe).mean())
    return cohort.astype(np.float16), level


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, nargs="+", required=True, help="train pack folders")
    ap.add_argument("--model", default="ct-audio-nafp")
    ap.add_argument("--weights-dir", type=Path, default=None)
    ap.add_argument("--n", type=int, default=16384)
    ap.add_argument("--k", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    from copytrace.models.audio_spec import get_audio_spec

    spec = get_audio_spec(a.model, a.weights_dir)
    cohort, level = build(spec, a.data, a.n, a.k, a.seed)
    entry = spec.path().with_suffix(".json")
    name = f"{spec.name}.cohort.npy"
    np.save(entry.parent / name, cohort)
    raw = json.loads(entry.read_text())
    raw.update(cohort_file=name, cohort_k=a.k, cohort_level=round(level, 5))
    entry.write_text(json.dumps(raw, indent=1) + "\n")
    log.info("%d cohort windows, k %d, level %.4f -> %s", len(cohort), a.k, level, entry.parent / name)


if __name__ == "__main__":
    main()

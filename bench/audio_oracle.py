"""How far the clean recording itself places the benchmark's noisy queries: a check on
the audio benchmark's offset misses (issue 5).

    python bench/audio_oracle.py out/s8/v4s8_16.json --query-seed 16 --lengths 2 5

Replays the positive queries of a ``bench/audio.py --json`` run (same split seed and query
seed: the draw is deterministic) and, for each query of the chosen cells, searches the *right*
registered recording, at every offset, with two matchers that hold the clean reference signal
in hand (no fingerprint, no index, no other recording to confuse it with):

- ``logmel``: normalised correlation of the query's log-mel frames (the model's frontend) with
  the recording's, every 12.5 ms frame;
- ``wave``: normalised cross-correlation of the waveforms (8 kHz), every sample.

Per cell it prints the engine's strict hit rate (the run's answer under the registry entry's
threshold and penalty), each oracle's hit rate (argmax within 0.25 s of the truth), how many of
the engine's misses each oracle places right, and ``engine+wave``: the engine's answer moved to
the waveform's best offset in the answered recording whenever that offset correlates better
than the engine's own (within 0.25 s) - what a verification stage holding every registered
recording's signal could do (runs before session 7 kept no found offsets: there it is the
engine's answer).
"""
from __future__ import annotations

import argparse
import collections
import json
from pathlib import Path

import audio as B  # the benchmark's folds, query draw and answer ranking (bench/ is on the path)
import numpy as np


def floored_log_mel(fe, x: np.ndarray) -> np.ndarray:
    """Log-mel frames [M, F] floored 8 nepers under the loudest bin."""
    m = fe.log_mel(x)
    return np.maximum(m, m.max() - 8)


def logmel_corr(mq: np.ndarray, mt: np.ndarray) -> np.ndarray:
    """Normalised correlation (per-band means removed) of a query's log-mel frames ``mq`` with
    a track's ``mt`` (both ``floored_log_mel``) at every frame offset."""
    f = mq.shape[1]
    n = mt.shape[1] - f + 1
    mq = mq - mq.mean(1, keepdims=True)
    nf = 1 << int(np.ceil(np.log2(mt.shape[1] + f)))
    num = np.fft.irfft(np.fft.rfft(mt, nf, axis=1) * np.conj(np.fft.rfft(mq, nf, axis=1)),
                       nf, axis=1).sum(0)[:n]
    c1 = np.pad(np.cumsum(mt, 1, dtype=np.float64), ((0, 0), (1, 0)))
    c2 = np.pad(np.cumsum(mt.astype(np.float64) ** 2, 1), ((0, 0), (1, 0)))
    s1, s2 = c1[:, f:f + n] - c1[:, :n], c2[:, f:f + n] - c2[:, :n]
    den = np.sqrt(np.maximum((s2 - s1**2 / f).sum(0), 0.0)) * np.linalg.norm(mq) + 1e-9
    return num / den


def wave_corr(q: np.ndarray, track: np.ndarray) -> np.ndarray:
    """|normalised cross-correlation| of the query with the track at every sample offset."""
    n = 1 << int(np.ceil(np.log2(track.size + q.size)))
    cc = np.fft.irfft(np.fft.rfft(track, n) * np.conj(np.fft.rfft(q, n)), n)[: track.size - q.size + 1]
    c2 = np.pad(np.cumsum(track.astype(np.float64) ** 2), (1, 0))
    energy = c2[q.size:] - c2[: -q.size]
    return np.abs(cc) / (np.sqrt(np.maximum(energy, 0.0)) * np.linalg.norm(q) + 1e-9)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path, help="a bench/audio.py --json file")
    ap.add_argument("--query-seed", type=int, required=True, help="the run's --query-seed")
    ap.add_argument("--seed", type=int, default=0, help="the run's eval split seed")
    ap.add_argument("--weights-dir", type=Path, default=None, help="the entry whose threshold "
                    "and penalty rank the run's answers (default: the registry's)")
    ap.add_argument("--conditions", nargs="+", default=["snr5+reverb"])
    ap.add_argument("--lengths", type=float, nargs="+", default=[2.0, 5.0])
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()

    from copytrace.media.audio import load_audio
    from copytrace.models.audio_frontend import MelFrontend
    from copytrace.models.audio_spec import get_audio_spec

    spec = get_audio_spec("ct-audio-nafp", a.weights_dir)
    thr, pen = spec.threshold_similarity, spec.length_penalty
    fe = MelFrontend(spec.mel_config())
    run = json.loads(a.run.read_text())
    folds = B.split_eval(json.loads((B.DATA / "eval" / "tracks.json").read_text()), a.seed)
    audio = {r["id"]: load_audio(B.ROOT / r["path"], B.SR) for r in folds["registered"]}
    music_pool = [load_audio(B.ROOT / r["path"], B.SR) for r in folds["calibration"]]
    ids = sorted(audio)
    track_mel: dict[str, np.ndarray] = {}  # each track's log-mel, once
    rng = np.random.default_rng(a.query_seed)
    cells: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for r in run["records"]:
        if r["kind"] != "positive":
            continue
        tid = B.pick(ids, audio, r["length_s"], rng)  # replay every draw, kept or not
        x, truth = B.make_query(audio[tid], r["length_s"], r["condition"], music_pool, rng)
        if tid != r["track"] or abs(truth - r["truth_s"]) > 1e-6:
            raise SystemExit(f"{a.run}: the replayed draw departs from the run's at {tid}; "
                             "check --seed and --query-seed")
        if r["condition"] not in a.conditions or r["length_s"] not in a.lengths:
            continue
        c = cells[f"{r['length_s']:g}s {r['condition']}"]
        g = B.answer(r, thr, pen)
        engine = bool(g is not None and g[3])
        track = audio[tid]
        if tid not in track_mel:
            track_mel[tid] = floored_log_mel(fe, track)
        lm = logmel_corr(floored_log_mel(fe, x), track_mel[tid])
        wv = wave_corr(x, track)
        logmel = abs(np.argmax(lm) * fe.cfg.frame_s - truth) <= 0.25
        wave_best = int(np.argmax(wv)) / B.SR
        wave = abs(wave_best - truth) <= 0.25
        combined = engine
        if g is not None and g[2] and len(g) > 5:  # right recording (runs since session 7 keep
            # the found offset): where does the waveform put it?
            found = truth + g[5]
            lo = max(0, round((found - 0.25) * B.SR))
            at_found = float(wv[lo: round((found + 0.25) * B.SR) + 1].max(initial=0.0))
            if wv.max() > at_found and abs(wave_best - found) > 0.25:
                combined = wave
        c.update({k: int(v) for k, v in (
            ("n", 1), ("engine", engine), ("logmel", logmel), ("wave", wave),
            ("engine_plus_wave", combined), ("logmel_fixes", logmel and not engine),
            ("wave_fixes", wave and not engine))})
    report = {}
    for cell, c in sorted(cells.items()):
        n = c["n"]
        report[cell] = {"n": n, **{k: round(c[k] / n, 3) for k in
                                   ("engine", "logmel", "wave", "engine_plus_wave")},
                        "engine_misses": n - c["engine"], "logmel_fixes": c["logmel_fixes"],
                        "wave_fixes": c["wave_fixes"]}
        print(cell, report[cell])
    if a.json:
        a.json.write_text(json.dumps({"run": str(a.run), "query_seed": a.query_seed,
                                      "cells": report}, indent=1))


if __name__ == "__main__":
    main()

"""What the audio benchmark's misses are: for each positive query of a ``bench/audio.py --json``
run that the matcher answered wrongly (ranked under the threshold and penalty of the entry in
``--weights-dir``, the registry's by default, as the engine would), which kind of miss it is and, for "right recording, other offset", how alike the clean
reference is at the true and at the found offset.

    python bench/audio_misses.py out/s8/v4s8_16.json --conditions snr5+reverb --lengths 2 5

Per miss: the found offset minus the truth (s); the clean log-mel correlation of the two places
(the benchmark's exact-repeat test, >= 0.9); the mean cosine of the model's descriptors of the
clean reference at the two places (how alike the descriptor finds them, whatever the noise);
and, from the track at 16 kHz, each band's share of the power and its log-spectrum correlation
between the two places (floored 60 dB under the clip's loudest bin). A summary counts the
kinds per cell.
"""
from __future__ import annotations

import argparse
import collections
import json
from pathlib import Path

import audio as B  # the benchmark's folds, judging and answer ranking (bench/ is on the path)
import numpy as np

BANDS_HZ = ((60, 500), (500, 2000), (2000, 4000), (4000, 8000))
WIDE_SR = 16000


def band_agreement(a: np.ndarray, b: np.ndarray) -> list[tuple[float, float]]:
    """(power share in ``a``, log-spectrum correlation of a and b) per band of ``BANDS_HZ``."""
    n, hop = 1024, 160
    fq = np.fft.rfftfreq(n, 1 / WIDE_SR)

    def power(x):
        fr = np.lib.stride_tricks.sliding_window_view(x, n)[::hop] * np.hanning(n)
        return np.abs(np.fft.rfft(fr, axis=1)) ** 2

    pa, pb = power(a), power(b)
    floor = np.log(pa.max() + 1e-20) - 13.8  # 60 dB
    out = []
    for lo, hi in BANDS_HZ:
        m = (fq >= lo) & (fq < hi)
        la = np.maximum(np.log(pa[:, m] + 1e-20), floor).ravel()
        lb = np.maximum(np.log(pb[:, m] + 1e-20), floor).ravel()
        la, lb = la - la.mean(), lb - lb.mean()
        c = float(la @ lb / (np.linalg.norm(la) * np.linalg.norm(lb) + 1e-12))
        out.append((float(pa[:, m].sum() / (pa.sum() + 1e-20)), c))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path, help="a bench/audio.py --json file")
    ap.add_argument("--weights-dir", type=Path, default=None, help="the model whose descriptors "
                    "compare the clean places (default: the registry's)")
    ap.add_argument("--conditions", nargs="+", default=["snr5+reverb"])
    ap.add_argument("--lengths", type=float, nargs="+", default=[2.0, 5.0])
    ap.add_argument("--seed", type=int, default=0, help="the run's eval split seed")
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()

    from copytrace.media.audio import load_audio
    from copytrace.models.audio_spec import get_audio_spec
    from copytrace.runtime.audio import load_audio_encoder

    spec = get_audio_spec("ct-audio-nafp", a.weights_dir)
    enc = load_audio_encoder(spec, threads=1)
    run = json.loads(a.run.read_text())
    thr, pen = spec.threshold_similarity, spec.length_penalty
    folds = B.split_eval(json.loads((B.DATA / "eval" / "tracks.json").read_text()), a.seed)
    paths = {r["id"]: B.ROOT / r["path"] for r in folds["registered"]}
    tracks: dict[tuple[str, int], np.ndarray] = {}

    def track(tid: str, sr: int) -> np.ndarray:
        if (tid, sr) not in tracks:
            tracks[tid, sr] = load_audio(paths[tid], sr)
        return tracks[tid, sr]

    counts: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    misses = []
    for r in run["records"]:
        if (r["kind"] != "positive" or r["condition"] not in a.conditions
                or r["length_s"] not in a.lengths):
            continue
        cell = f"{r['length_s']:g}s {r['condition']}"
        g = B.answer(r, thr, pen)
        if g is not None and g[3]:
            counts[cell]["hit"] += 1
            continue
        kind = ("nothing" if g is None else "other recording" if not g[2]
                else "exact repeat" if g[4] else "other offset")
        counts[cell][kind] += 1
        row = {"cell": cell, "track": r["track"], "truth_s": r["truth_s"], "kind": kind}
        if kind in ("other offset", "exact repeat"):
            t, d, n = r["truth_s"], g[5], r["length_s"]
            x = track(r["track"], B.SR)
            row["delta_s"] = d
            row["logmel_corr"] = round(B.repeat_corr(x, t, t + d, n), 3)
            va = enc.embed_windows(x[int(t * B.SR): int((t + n) * B.SR)], B.SR)[2]
            vb = enc.embed_windows(x[round((t + d) * B.SR): round((t + d + n) * B.SR)], B.SR)[2]
            k = min(len(va), len(vb))
            row["clean_descriptor_cos"] = round(float((va[:k] * vb[:k]).sum(1).mean()), 3) if k else None
            w = track(r["track"], WIDE_SR)
            wa = w[int(t * WIDE_SR): int((t + n) * WIDE_SR)]
            wb = w[round((t + d) * WIDE_SR): round((t + d) * WIDE_SR) + wa.size]
            if wb.size == wa.size:
                row["bands"] = {f"{lo}-{hi} Hz": [round(s, 3), round(c, 2)]
                                for (lo, hi), (s, c) in zip(BANDS_HZ, band_agreement(wa, wb))}
        misses.append(row)
        print(json.dumps(row))
    for cell, c in sorted(counts.items()):
        print(cell, dict(c))
    if a.json:
        a.json.write_text(json.dumps({"run": str(a.run), "threshold": thr, "penalty": pen,
                                      "counts": counts, "misses": misses}, indent=1))


if __name__ == "__main__":
    main()

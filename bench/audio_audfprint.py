"""Landmark baseline for bench/audio.py: audfprint2 (Ellis's audfprint) on the same eval split,
the same query generator and the same 8 kHz input as our model.

    python bench/audio_audfprint.py prepare --per-cell 20          # main venv: wavs + truth
    .stage/venvs/audfprint/bin/python bench/audio_audfprint.py match # audfprint venv
    python bench/audio_audfprint.py score                            # main venv: hit rates

audfprint2 lives in its own venv (`python -m venv .stage/venvs/audfprint &&
.stage/venvs/audfprint/bin/pip install audfprint2==0.1.2`). Without the ffmpeg CLI it reads
WAV files at its working rate, so everything is written as 8 kHz 16-bit WAV. Index: the
registered eval tracks only (no train distractors: a smaller, easier index than ours).
A negative is a false match when audfprint returns any match (its default 5 aligned hashes).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / ".stage" / "audfprint"
SR = 8000


def write_wav(path: Path, x: np.ndarray) -> None:
    import wave

    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SR)
        w.writeframes((np.clip(x, -1, 1) * 32767).astype("<i2").tobytes())


def prepare(per_cell: int, negatives: int, seed: int) -> None:
    import audio as B  # bench/audio.py: this script's folder is on the path

    from copytrace.media.audio import load_audio

    folds = B.split_eval(json.loads((B.DATA / "eval" / "tracks.json").read_text()), seed)
    (WORK / "refs").mkdir(parents=True, exist_ok=True)
    (WORK / "queries").mkdir(parents=True, exist_ok=True)
    audio = {}
    for r in folds["registered"]:
        audio[r["id"]] = load_audio(ROOT / r["path"], SR)
        write_wav(WORK / "refs" / (r["id"].replace("/", "__") + ".wav"), audio[r["id"]])
    neg = {r["id"]: load_audio(ROOT / r["path"], SR) for r in folds["negative"]}
    pool = [load_audio(ROOT / r["path"], SR) for r in folds["calibration"]]
    rng = np.random.default_rng(seed + 1)
    truth = []
    k = 0
    for length in B.LENGTHS_S:
        for cond in B.CONDITIONS:
            for _ in range(per_cell):
                tid = B.pick(sorted(audio), audio, length, rng)
                x, t = B.make_query(audio[tid], length, cond, pool, rng)
                name = f"q{k:05d}.wav"
                write_wav(WORK / "queries" / name, x)
                truth.append({"file": name, "kind": "positive", "length_s": length, "condition": cond,
                              "track": tid, "truth_s": t})
                k += 1
        for i in range(negatives):
            cond = ("clean", "snr5+reverb", "mp3_64k", "eq")[i % 4]
            tid = B.pick(sorted(neg), neg, length, rng)
            x, _ = B.make_query(neg[tid], length, cond, pool, rng)
            name = f"q{k:05d}.wav"
            write_wav(WORK / "queries" / name, x)
            truth.append({"file": name, "kind": "negative", "length_s": length, "condition": cond,
                          "track": tid})
            k += 1
    (WORK / "truth.json").write_text(json.dumps(truth))
    print(f"{len(audio)} refs, {k} queries in {WORK}")


def match() -> None:
    from audfprint2.cli import setup_analyzer, setup_matcher
    from audfprint2.core import hash_table
    from audfprint2.utils import audio as au

    au.HAVE_FFMPEG = False  # read WAVs directly
    ana = setup_analyzer(20.0, False, 5, 3, 30.0, 0, SR, False, None)
    ht = hash_table.HashTable(hashbits=20, depth=100, maxtime=1 << 14)
    ht.params["samplerate"] = SR
    refs = sorted((WORK / "refs").glob("*.wav"))
    t = time.perf_counter()
    dur = 0.0
    for p in refs:
        d, _ = ana.ingest(ht, str(p))
        dur += d
    ingest_x = dur / (time.perf_counter() - t)
    qana = setup_analyzer(20.0, True, 5, 3, 30.0, 0, SR, False, None)
    m = setup_matcher(2, 100, 5, 1, False, False, 0.05, False, False, False)
    t_hop = qana.n_hop / SR
    out, lat = [], []
    for q in json.loads((WORK / "truth.json").read_text()):
        t = time.perf_counter()
        rslts, _, _ = m.match_file(qana, ht, str(WORK / "queries" / q["file"]))
        lat.append((q["length_s"], time.perf_counter() - t))
        if len(rslts):
            tid, nal, align, *_ = rslts[0]
            out.append({"file": q["file"], "found": Path(ht.names[tid]).stem.replace("__", "/"),
                        "offset_s": float(align * t_hop), "aligned_hashes": int(nal)})
        else:
            out.append({"file": q["file"], "found": None})
    l5 = [s for L, s in lat if L == 5.0]
    (WORK / "results.json").write_text(json.dumps({
        "results": out, "ingest_x_realtime": ingest_x, "index_hours": dur / 3600,
        "query_5s_latency_median_s": float(np.median(l5)) if l5 else None}))
    print("ingest x realtime", round(ingest_x, 1))


def score(out: Path | None) -> None:
    import audio as B  # bench/audio.py: this script's folder is on the path

    truth = {q["file"]: q for q in json.loads((WORK / "truth.json").read_text())}
    res = json.loads((WORK / "results.json").read_text())
    by = {r["file"]: r for r in res["results"]}
    table = {}
    for L in B.LENGTHS_S:
        row = {}
        for c in B.CONDITIONS:
            cell = [q for q in truth.values() if q["kind"] == "positive" and q["length_s"] == L
                    and q["condition"] == c]
            hits = [by[q["file"]]["found"] == q["track"]
                    and abs(by[q["file"]]["offset_s"] - q["truth_s"]) <= 0.25 for q in cell]
            right = [by[q["file"]]["found"] == q["track"] for q in cell]
            row[c] = {"top1": round(float(np.mean(hits)), 4), "track_right": round(float(np.mean(right)), 4)}
        table[f"{L:g}s"] = row
    negs = [q for q in truth.values() if q["kind"] == "negative"]
    fm = {f"{L:g}s": round(float(np.mean([by[q["file"]]["found"] is not None for q in negs
                                          if q["length_s"] == L])), 4) for L in B.LENGTHS_S}
    rep = {"hit_rate": table, "false_match_rate": fm, "ingest_x_realtime": res["ingest_x_realtime"],
           "query_5s_latency_median_s": res["query_5s_latency_median_s"],
           "index_hours": res["index_hours"], "n_queries": len(truth)}
    print("audfprint2 top-1 (strict offset)")
    print("len  " + " ".join(f"{c:>11}" for c in B.CONDITIONS))
    for L, row in table.items():
        print(f"{L:4} " + " ".join(f"{row[c]['top1']:11.2f}" for c in B.CONDITIONS))
    print("false-match rate", fm)
    print({k: rep[k] for k in ("ingest_x_realtime", "query_5s_latency_median_s", "index_hours")})
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(rep, indent=1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("step", choices=("prepare", "match", "score"))
    ap.add_argument("--per-cell", type=int, default=20)
    ap.add_argument("--negatives-per-length", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    if a.step == "prepare":
        prepare(a.per_cell, a.negatives_per_length, a.seed)
    elif a.step == "match":
        match()
    else:
        score(a.json)


if __name__ == "__main__":
    main()

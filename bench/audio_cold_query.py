"""A library's first audio query after opening it: references' typicality stored at
registration (what the engine does) against computed on first use (the same library with the
stored numbers deleted, as a library registered before they were stored).

    python bench/audio_cold_query.py [--tracks 10] [--repeats 5] [--json out/s7/cold.json]

Registers the longest registered-fold eval tracks (bench/audio.py's split) in a fresh library,
then times, in a new Library each time (models and index loaded first, untimed), one query: a
5 s excerpt of one of them. Medians of ``--repeats``; name the machine when quoting.
"""
from __future__ import annotations

import argparse
import json
import platform
import shutil
import sqlite3
import tempfile
import time
import wave
from pathlib import Path

import numpy as np
from audio import DATA, ROOT, split_eval

import copytrace
from copytrace.media.audio import load_audio
from copytrace.store.store import CATALOG_FILE


def first_query_s(db: Path, query: Path, repeats: int) -> tuple[float, str | None]:
    times, found = [], None
    for _ in range(repeats):
        with copytrace.open(str(db)) as lib:
            lib.audio_encoder, lib.signal("audio").cohort, lib.store.index("audio")  # loaded, untimed
            t = time.perf_counter()
            res = lib.query(str(query))
            times.append(time.perf_counter() - t)
            found = res.matches[0].title if res.matches else None
    return float(np.median(times)), found


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tracks", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    rows = sorted(split_eval(json.loads((DATA / "eval" / "tracks.json").read_text()), 0)["registered"],
                  key=lambda r: -r["duration_s"])[: a.tracks]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        with copytrace.open(str(root / "stored")) as lib:
            for r in rows:
                lib.add(str(ROOT / r["path"]))
        shutil.copytree(root / "stored", root / "computed")
        with sqlite3.connect(root / "computed" / CATALOG_FILE) as con:
            con.execute("DELETE FROM window_stats")
        x = load_audio(ROOT / rows[len(rows) // 2]["path"], 16000)[16000 * 30: 16000 * 35]
        query = root / "excerpt.wav"
        with wave.open(str(query), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(16000)
            w.writeframes((np.clip(x, -1, 1) * 32767).astype("<i2").tobytes())
        report = {"tracks": len(rows), "minutes": round(sum(r["duration_s"] for r in rows) / 60, 1),
                  "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}"}
        for kind in ("stored", "computed"):
            s, found = first_query_s(root / kind, query, a.repeats)
            report[f"first_query_s_{kind}"] = round(s, 4)
            report[f"found_{kind}"] = found
    print(json.dumps(report, indent=1))
    if a.json:
        a.json.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()

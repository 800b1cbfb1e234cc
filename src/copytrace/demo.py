"""The demo: register real sample photos and a piece of music, query edited copies and innocent
files, report. The music copy is a 6 s excerpt played in a reverberant room over background
noise; the innocent sound is an excerpt of music that was never registered.

Run with ``copytrace demo`` (or ``make demo``). Uses the library at ``OUT/library`` so it never
touches your default library; each run starts it afresh (a library left by an older copytrace
holds another model's descriptors).
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from copytrace.types import QueryResult


def run_demo(samples: Path, out: Path, n_innocent: int = 2) -> list[QueryResult]:
    from PIL import Image

    import copytrace
    from copytrace.eval.edits import apply_edit

    photos = sorted(p for p in samples.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if len(photos) < n_innocent + 3:
        raise SystemExit(f"demo needs at least {n_innocent + 3} photos in {samples}")
    refs, innocent = photos[:-n_innocent], photos[-n_innocent:]
    out.mkdir(parents=True, exist_ok=True)
    queries_dir = out / "queries"
    queries_dir.mkdir(exist_ok=True)
    rng = np.random.default_rng(2026)
    # Planted copies: each a different real-world edit of a registered photo.
    plans = [("text", refs[0]), ("hflip", refs[1]), ("pip", refs[2 % len(refs)]),
             ("screenshot", refs[3 % len(refs)]), ("jpeg", refs[4 % len(refs)])]
    queries = []
    for family, src in plans:
        other = Image.open(innocent[0]).convert("RGB")
        q = queries_dir / f"copy-{family}-of-{src.stem}.jpg"
        apply_edit(family, Image.open(src).convert("RGB"), rng, other).save(q, quality=80)
        queries.append(q)
    for p in innocent:  # innocent files: never registered, lightly edited so edits are no cue
        q = queries_dir / f"innocent-{p.stem}.jpg"
        apply_edit("jpeg", Image.open(p).convert("RGB"), rng).save(q)
        queries.append(q)

    music = sorted(p for p in samples.iterdir() if p.suffix.lower() in (".ogg", ".mp3", ".flac", ".wav"))
    if len(music) >= 2:  # the first is registered, the second stays innocent
        refs.append(music[0])
        queries.append(_room_recording(music[0], 7.0, queries_dir / f"copy-room-of-{music[0].stem}.wav", rng))
        queries.append(_room_recording(music[1], 7.0, queries_dir / f"innocent-{music[1].stem}.wav", rng))

    shutil.rmtree(out / "library", ignore_errors=True)
    with copytrace.open(str(out / "library")) as lib:
        for p in refs:
            res = lib.add(str(p))
            print(f"registered {res.work.work_id}  {p.name}{'' if res.created else ' (already)'}")
        return [lib.query(str(q), top_k=3) for q in queries]


def _room_recording(src: Path, start_s: float, dest: Path, rng, length_s: float = 6.0,
                    snr_db: float = 10.0, rt60_s: float = 0.4, sr: int = 16000) -> Path:
    """``length_s`` of ``src`` from ``start_s``, through a decaying-noise room response, under
    pink noise at ``snr_db``, written as 16-bit WAV."""
    import wave

    from copytrace.media.audio import load_audio

    x = load_audio(src, sr)[int(start_s * sr): int((start_s + length_s) * sr)].astype(np.float64)
    t = np.arange(int(rt60_s * sr)) / sr
    room = rng.standard_normal(t.size) * np.exp(-6.9 * t / rt60_s) * 0.05
    room[0] = 1.0
    y = np.convolve(x, room)[: x.size]
    spec = np.fft.rfft(rng.standard_normal(y.size))
    pink = np.fft.irfft(spec / np.sqrt(np.maximum(np.arange(spec.size), 1)), y.size)
    y += pink * np.sqrt(np.mean(y**2) / (np.mean(pink**2) * 10 ** (snr_db / 10)))
    pcm = (y / (np.abs(y).max() + 1e-9) * 0.9 * 32767).astype("<i2")
    with wave.open(str(dest), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes(pcm.tobytes())
    return dest

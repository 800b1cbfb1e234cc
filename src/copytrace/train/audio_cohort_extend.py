"""Widen the audio typicality cohort beyond music (issue 19).

    python -m copytrace.train.audio_cohort_extend --innocent data/negatives [--per-kind 400] \\
        [--weights-dir DIR] [--write-entry]

The shipped cohort (``train/audio_cohort.py``) holds degraded *train music* only, so a speech
prompt, a dog or rain is "atypical" by its measure and its chance similarities are not taken
down. This adds windows of the *calibration* split of the innocent corpus
(scripts/stage_negatives.py: speech, sfx, ui sounds, city loops, noise and hum, other music),
``--per-kind`` of each kind drawn at random from every clip's index-hop windows, described by
the entry's FP32 model as the music cohort was, and saves the union as
``<name>.cohort-wide.npy`` (float16). The held-out split never enters.

``cohort_level`` is kept: it is the mean typicality of degraded train music, which the aligner's
scale rests on. Music windows' nearest cohort neighbours are music, so their typicality barely
moves; the run prints the shift on windows of the staged *train* tracks (data/audio/train) as a
check. With ``--write-entry`` the entry names the new file.
"""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np

log = logging.getLogger("copytrace.train.audio_cohort_extend")
ROOT = Path(__file__).resolve().parents[3]


def innocent_windows(enc, root: Path, per_kind: int, seed: int) -> dict[str, np.ndarray]:
    items = [it for it in json.loads((root / "manifest.json").read_text())["items"]
             if it["signal"] == "audio" and it["split"] == "calibration"]
    rng = np.random.default_rng(seed)
    out: dict[str, list] = {}
    for it in items:
        _, _, v = enc.embed_file(root / it["path"], hop_s=enc.spec.hop_s)
        if len(v):
            out.setdefault(it["kind"], []).append(np.asarray(v, np.float32))
    picked = {}
    for kind, parts in sorted(out.items()):
        v = np.concatenate(parts)
        picked[kind] = v[rng.permutation(len(v))[:per_kind]]
    return picked


def music_probe(enc, n: int, seed: int) -> np.ndarray | None:
    """Descriptors of ``n`` random windows of the staged train tracks (a check, not a fit)."""
    from copytrace.media.audio import load_audio

    listing = ROOT / "data" / "audio" / "train" / "tracks.json"
    if not listing.is_file():
        return None
    rows = json.loads(listing.read_text())
    rng = np.random.default_rng(seed)
    vecs = []
    for i in rng.permutation(len(rows))[:16]:
        x = load_audio(ROOT / rows[i]["path"], enc.spec.sample_rate, max_s=120.0)
        _, _, v = enc.embed_windows(x, enc.spec.sample_rate, enc.spec.hop_s)
        vecs.append(np.asarray(v, np.float32))
    v = np.concatenate(vecs)
    return v[rng.permutation(len(v))[:n]]


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--innocent", type=Path, required=True)
    ap.add_argument("--model", default="ct-audio-nafp")
    ap.add_argument("--weights-dir", type=Path, default=None)
    ap.add_argument("--per-kind", type=int, default=400)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--write-entry", action="store_true")
    a = ap.parse_args(argv)
    from copytrace.models.audio_cohort import AudioCohort, load_cohort
    from copytrace.models.audio_spec import get_audio_spec
    from copytrace.runtime.audio import load_audio_encoder

    spec = get_audio_spec(a.model, a.weights_dir)
    base = load_cohort(spec)
    if base is None:
        raise SystemExit(f"{spec.name} names no cohort to widen: build one with "
                         "python -m copytrace.train.audio_cohort")
    music = np.load(spec._weights_file(spec.cohort_file)).astype(np.float32)
    enc = load_audio_encoder(spec, precision="fp32")
    extra = innocent_windows(enc, a.innocent, a.per_kind, a.seed)
    wide = np.concatenate([music, *extra.values()])
    name = f"{spec.name}.cohort-wide.npy"
    entry = spec.path().with_suffix(".json")
    np.save(entry.parent / name, wide.astype(np.float16))
    log.info("%d music + %s -> %d windows in %s", len(music),
             {k: len(v) for k, v in extra.items()}, len(wide), entry.parent / name)
    probe = music_probe(enc, 2048, a.seed)
    if probe is not None:
        old = float(base.typicality(probe).mean())
        new = float(AudioCohort(wide, spec.cohort_k).typicality(probe).mean())
        log.info("train-music typicality: %.4f with the music cohort, %.4f widened (level %.4f "
                 "kept)", old, new, spec.cohort_level)
    for kind, v in extra.items():
        log.info("%s typicality: %.4f music cohort -> %.4f widened", kind,
                 float(base.typicality(v).mean()),
                 float(AudioCohort(wide, spec.cohort_k).typicality(v).mean()))
    if a.write_entry:
        raw = json.loads(entry.read_text())
        raw["cohort_file"] = name
        entry.write_text(json.dumps(raw, indent=1) + "\n")
        log.info("entry %s names %s", entry, name)


if __name__ == "__main__":
    main()

"""Stage the audio sets of DATA.md: download the Debian music packages, unpack them, list
the tracks per split, and pack the *train* music for the GPU as 8 kHz mu-law u8 .npy shards.

    python scripts/stage_audio.py download          # apt-get download + dpkg-deb -x into .stage/
    python scripts/stage_audio.py list              # data/audio/{train,eval}/tracks.json (+ licences)
    python scripts/stage_audio.py pack --budget-mb 44  # data/audio/train/pack/ (carried to the GPU)
    python scripts/stage_audio.py dedup             # near-duplicate pass with the fingerprint
    python scripts/stage_audio.py midi              # eval: openttd-openmsx MIDI rendered with
                                                    # fluidsynth (apt-get install fluidsynth
                                                    # fluid-soundfont-gm openttd-openmsx)
    python scripts/stage_audio.py pack-all --parts 3   # every train track, 4-bit ADPCM,
                                                       # data/audio/train/all_{0,1,2}/ (one per call)

Media never goes into git: raw packages live in .stage/, packed data in data/ (both ignored).
"""
from __future__ import annotations

import argparse
import json
import logging
import subprocess
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
STAGE = ROOT / ".stage"
DATA = ROOT / "data" / "audio"
AUDIO_EXT = (".ogg", ".opus", ".mp3", ".flac", ".wav", ".m4a")

# Splits from /work/shared/DATA.md: never mix.
TRAIN_PKGS = ("wesnoth-1.16-music", "warzone2100-music", "ufoai-music")
EVAL_PKGS = ("nexuiz-music", "singularity-music", "drascula-music")
# Pieces that exist twice in a package (DATA.md): one copy is kept, the other is a known copy.
KNOWN_COPIES = {"track3_enhanced": "track3", "menu_enhanced": "menu"}

log = logging.getLogger("stage_audio")


def download(pkgs: tuple[str, ...]) -> None:
    debs = STAGE / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    missing = [p for p in pkgs if not list(debs.glob(f"{p}_*.deb"))]
    if missing:
        subprocess.run(
            ["apt-get", "-o", "APT::Sandbox::User=root", "download", *missing], cwd=debs, check=True
        )
    for p in pkgs:
        out = STAGE / "pkgs" / p
        if out.is_dir():
            continue
        (deb,) = debs.glob(f"{p}_*.deb")
        out.mkdir(parents=True)
        subprocess.run(["dpkg-deb", "-x", str(deb), str(out)], check=True)


def _extract_zip_members(pk3: Path, dest: Path) -> list[Path]:
    """Game data archives (.pk3) are zips: pull out the audio members."""
    out = []
    with zipfile.ZipFile(pk3) as z:
        for name in z.namelist():
            if name.lower().endswith(AUDIO_EXT):
                target = dest / pk3.stem / name
                if not target.is_file():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(z.read(name))
                out.append(target)
    return out


def package_tracks(pkg: str) -> list[Path]:
    root = STAGE / "pkgs" / pkg
    tracks = [p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXT]
    for pk3 in root.rglob("*.pk3"):
        tracks += _extract_zip_members(pk3, STAGE / "pk3" / pkg)
    return sorted(tracks)


def licence(pkg: str) -> str:
    p = STAGE / "pkgs" / pkg / "usr" / "share" / "doc" / pkg / "copyright"
    return p.read_text(errors="replace") if p.is_file() else ""


def build_lists() -> None:
    from copytrace.media.audio import probe_audio

    for split, pkgs in (("train", TRAIN_PKGS), ("eval", EVAL_PKGS)):
        rows = []
        for pkg in pkgs:
            seen: set[str] = set()
            for t in package_tracks(pkg):
                # drascula-music ships the same tracks once per language folder: keep one.
                if t.stem in seen:
                    continue
                seen.add(t.stem)
                info = probe_audio(t)
                copy_of = KNOWN_COPIES.get(t.stem)
                rows.append(
                    {
                        "id": f"{pkg}/{t.stem}",
                        "package": pkg,
                        "path": str(t.relative_to(ROOT)),
                        "duration_s": round(info.duration_s or 0.0, 3),
                        "codec": info.codec,
                        "copy_of": f"{pkg}/{copy_of}" if copy_of else None,
                    }
                )
        (DATA / split).mkdir(parents=True, exist_ok=True)
        (DATA / split / "tracks.json").write_text(json.dumps(rows, indent=1))
        lic = {pkg: licence(pkg) for pkg in pkgs}
        (DATA / split / "licences.json").write_text(json.dumps(lic, indent=1))
        hours = sum(r["duration_s"] for r in rows) / 3600
        log.info("%s: %d tracks, %.2f h", split, len(rows), hours)


def mulaw_encode(x: np.ndarray, mu: int = 255) -> np.ndarray:
    x = np.clip(x, -1.0, 1.0)
    y = np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu)
    return np.round((y + 1.0) * 127.5).astype(np.uint8)


def pack_train(budget_mb: float, sample_rate: int, piece_s: float, seed: int, name: str = "pack",
               phase: float = 0.0) -> None:
    """Spread the byte budget evenly over distinct train tracks: several pieces per track
    from different places, so the GPU sees every track's range of sounds, not just its intro."""
    from copytrace.media.audio import load_audio

    rows = [r for r in json.loads((DATA / "train" / "tracks.json").read_text()) if not r["copy_of"]]
    budget_s = budget_mb * 1e6 / sample_rate
    # Water-filling: short tracks give their unused share to the long ones.
    durs = np.sort([r["duration_s"] - 6.0 for r in rows])
    per_track_s = budget_s / len(rows)
    for i, d in enumerate(durs):
        if d >= per_track_s:
            break
        per_track_s = (budget_s - durs[: i + 1].sum()) / (len(rows) - i - 1)
    rng = np.random.default_rng(seed)
    pieces, index = [], []
    pos = 0
    for r in rows:
        x = load_audio(ROOT / r["path"], sample_rate)
        dur = len(x) / sample_rate
        n = max(1, round(min(per_track_s, dur) / piece_s))
        # Skip the first and last 3 s (fades, silence) where the track is long enough.
        lo, hi = (3.0, dur - 3.0 - piece_s) if dur > piece_s + 8 else (0.0, max(0.0, dur - piece_s))
        # ``phase`` shifts the strata so a second pack draws other passages of each track.
        u = (np.arange(n) + phase + rng.uniform(0.1, 0.9, n)) % n
        starts = np.sort(lo + (hi - lo) * u / n)
        for s in starts:
            a = int(s * sample_rate)
            seg = x[a : a + int(piece_s * sample_rate)]
            if len(seg) < sample_rate * 2 or np.sqrt(np.mean(seg**2)) < 1e-3:
                continue
            pieces.append(mulaw_encode(seg / max(1e-3, float(np.abs(seg).max()))))
            index.append({"track": r["id"], "start_s": round(float(s), 3), "offset": pos,
                          "length": len(seg)})
            pos += len(seg)
    out = DATA / "train" / name
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / "audio_mulaw_u8.npy", np.concatenate(pieces))
    (out / "pieces.json").write_text(json.dumps({"sample_rate": sample_rate, "pieces": index}))
    log.info("packed %d pieces, %.2f h, %.1f MB", len(index), pos / sample_rate / 3600, pos / 1e6)


def _trim_silence(x: np.ndarray, sample_rate: int, floor_db: float = -50.0) -> np.ndarray:
    """Cut leading and trailing 0.1 s frames quieter than ``floor_db`` below the peak."""
    hop = sample_rate // 10
    n = len(x) // hop
    if n == 0:
        return x
    rms = np.sqrt(np.mean(x[: n * hop].reshape(n, hop) ** 2, axis=1))
    loud = np.flatnonzero(20 * np.log10(rms / max(1e-9, float(np.abs(x).max())) + 1e-12) > floor_db)
    return x[loud[0] * hop : (loud[-1] + 1) * hop] if loud.size else x[:0]


def pack_all(parts: int, sample_rate: int, row_s: float = 60.0) -> None:
    """Every distinct train track, whole (silent ends trimmed, peak-normalised), as 4-bit IMA
    ADPCM rows of ``row_s`` seconds, split over ``parts`` folders of similar size so each fits
    one device call. The training sampler reads any number of these folders together."""
    from copytrace.media.audio import load_audio
    from copytrace.train import adpcm

    rows = [r for r in json.loads((DATA / "train" / "tracks.json").read_text()) if not r["copy_of"]]
    row_n = int(row_s * sample_rate)
    tracks = []
    for r in rows:
        x = _trim_silence(load_audio(ROOT / r["path"], sample_rate), sample_rate)
        if len(x) >= 2 * sample_rate:
            tracks.append((r["id"], np.round(x / float(np.abs(x).max()) * 30000).astype(np.int16)))
    # Greedy balance: longest first into the lightest part.
    order = sorted(range(len(tracks)), key=lambda i: -len(tracks[i][1]))
    load = [0] * parts
    assign: list[list[int]] = [[] for _ in range(parts)]
    for i in order:
        k = int(np.argmin(load))
        assign[k].append(i)
        load[k] += len(tracks[i][1])
    for k in range(parts):
        block, pieces = [], []
        for i in sorted(assign[k]):
            tid, x = tracks[i]
            for a in range(0, len(x), row_n):
                seg = x[a : a + row_n]
                pieces.append({"track": tid, "start_s": round(a / sample_rate, 3),
                               "row": len(block), "length": len(seg)})
                block.append(np.pad(seg, (0, row_n - len(seg))))
        out = DATA / "train" / f"all_{k}"
        out.mkdir(parents=True, exist_ok=True)
        np.save(out / "audio_adpcm4.npy", adpcm.encode(np.stack(block)))
        (out / "pieces.json").write_text(json.dumps(
            {"sample_rate": sample_rate, "codec": "adpcm4", "row_samples": row_n, "pieces": pieces}))
        log.info("%s: %d tracks, %d rows, %.2f h, %.1f MB", out.name, len(assign[k]), len(block),
                 sum(p["length"] for p in pieces) / sample_rate / 3600, len(block) * row_n / 2e6)


def render_midi(sample_rate: int = 22050) -> None:
    """The eval MIDI of DATA.md (openttd-openmsx) through fluidsynth and the FluidR3 GM font,
    into data/audio/eval/openttd/*.wav, listed in data/audio/eval/openttd.json."""
    from copytrace.media.audio import probe_audio

    font = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
    mids = sorted(Path("/usr/share/games/openttd/baseset/openmsx").glob("*.mid"))
    if not font.is_file() or not mids:
        raise SystemExit("apt-get install fluidsynth fluid-soundfont-gm openttd-openmsx first")
    out = DATA / "eval" / "openttd"
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for m in mids:
        wav = out / f"{m.stem}.wav"
        if not wav.is_file():
            subprocess.run(["fluidsynth", "-ni", "-r", str(sample_rate), "-F", str(wav), str(font),
                            str(m)], check=True, capture_output=True)
        rows.append({"id": f"openttd-openmsx/{m.stem}", "package": "openttd-openmsx",
                     "path": str(wav.relative_to(ROOT)),
                     "duration_s": round(probe_audio(wav).duration_s or 0.0, 3), "codec": "pcm",
                     "copy_of": None})
    (DATA / "eval" / "openttd.json").write_text(json.dumps(rows, indent=1))
    log.info("openttd: %d renders, %.2f h", len(rows), sum(r["duration_s"] for r in rows) / 3600)


def dedup(threshold: float, min_share: float) -> None:
    """Near-duplicate pass over every staged track (train and eval) with the audio fingerprint:
    a pair is reported when >= ``min_share`` of one track's windows have a window of the other
    track with cosine >= ``threshold``. Descriptors are cached as bench/audio.py caches them."""
    import faiss

    from copytrace.models.audio_spec import get_audio_spec
    from copytrace.runtime.audio import load_audio_encoder

    spec = get_audio_spec()
    enc = load_audio_encoder(spec, threads=2)
    cache = DATA / "cache" / f"{spec.name}-{spec.version}-hop{spec.hop_s}-sil{spec.silence_dbfs}"
    cache.mkdir(parents=True, exist_ok=True)
    ids, vecs = [], []
    for split in ("train", "eval"):
        for r in json.loads((DATA / split / "tracks.json").read_text()):
            f = cache / (r["id"].replace("/", "__") + ".npz")
            if not f.is_file():
                st, _, v = enc.embed_file(ROOT / r["path"])
                np.savez(f, starts=st, vectors=v)
            v = np.load(f)["vectors"]
            ids += [r["id"]] * len(v)
            vecs.append(v)
    ids = np.array(ids)
    allv = np.ascontiguousarray(np.concatenate(vecs), dtype=np.float32)
    index = faiss.IndexFlatIP(allv.shape[1])
    index.add(allv)
    sims, rows = index.search(allv, 8)
    counts: dict[tuple[str, str], int] = {}
    for i in range(len(allv)):
        others = {ids[j] for j, s in zip(rows[i], sims[i]) if s >= threshold and ids[j] != ids[i]}
        for o in others:
            counts[(ids[i], o)] = counts.get((ids[i], o), 0) + 1
    n_of = {t: int((ids == t).sum()) for t in set(ids.tolist())}
    found = sorted(((c / n_of[a], a, b) for (a, b), c in counts.items() if c / n_of[a] >= min_share),
                   reverse=True)
    for share, a, b in found:
        print(f"{share:.2f} of {a} ~ {b}")
    (DATA / "near_duplicates.json").write_text(json.dumps(found, indent=1))


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("step", choices=("download", "list", "pack", "pack-all", "midi", "dedup", "all"))
    ap.add_argument("--budget-mb", type=float, default=44.0)
    ap.add_argument("--sample-rate", type=int, default=8000)
    ap.add_argument("--piece-s", type=float, default=12.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--pack-name", default="pack", help="folder under data/audio/train/")
    ap.add_argument("--phase", type=float, default=0.0,
                    help="0..1: shift of the sampling strata (0.5 for a second, disjoint-ish pack)")
    ap.add_argument("--parts", type=int, default=3, help="pack-all: folders (one per device call)")
    ap.add_argument("--dup-threshold", type=float, default=0.9)
    ap.add_argument("--dup-share", type=float, default=0.2)
    a = ap.parse_args()
    if a.step in ("download", "all"):
        download(TRAIN_PKGS + EVAL_PKGS)
    if a.step in ("list", "all"):
        build_lists()
    if a.step in ("pack", "all"):
        pack_train(a.budget_mb, a.sample_rate, a.piece_s, a.seed, a.pack_name, a.phase)
    if a.step == "pack-all":
        pack_all(a.parts, a.sample_rate)
    if a.step == "midi":
        render_midi()
    if a.step in ("dedup",):
        dedup(a.dup_threshold, a.dup_share)


if __name__ == "__main__":
    main()

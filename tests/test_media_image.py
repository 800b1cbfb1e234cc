"""Image decoding: formats by content, orientation, alpha, and clear errors for bad files."""
from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from copytrace.errors import MediaError
from copytrace.media.image import ImageLimits, load_image
from copytrace.media.probe import sniff


@pytest.mark.parametrize("fmt,ext", [("JPEG", "png"), ("PNG", "jpg"), ("WEBP", "bin"),
                                     ("GIF", "jpg"), ("BMP", "gif"), ("TIFF", "png")])
def test_formats_detected_by_content_not_extension(tmp_path, photo_paths, fmt, ext):
    src = Image.open(photo_paths[0]).convert("RGB")
    p = tmp_path / f"image.{ext}"
    src.save(p, format=fmt)
    assert sniff(str(p)).media_type == "image"
    im = load_image(str(p))
    assert im.mode == "RGB" and im.size == src.size


def test_exif_orientation_applied(tmp_path, photo_paths):
    src = Image.open(photo_paths[0]).convert("RGB")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise when displayed
    p = tmp_path / "rot.jpg"
    src.save(p, exif=exif.tobytes())
    assert load_image(str(p)).size == (src.height, src.width)


def test_alpha_composited_on_white(tmp_path):
    p = tmp_path / "alpha.png"
    Image.new("RGBA", (64, 64), (255, 0, 0, 0)).save(p)
    assert np.asarray(load_image(str(p))).min() == 255


def test_gif_first_frame(tmp_path):
    frames = [Image.new("RGB", (40, 40), c) for c in ((255, 0, 0), (0, 0, 255))]
    p = tmp_path / "anim.gif"
    frames[0].save(p, save_all=True, append_images=frames[1:])
    r, _g, b = load_image(str(p)).getpixel((20, 20))
    assert r > 200 and b < 50


def test_truncated_jpeg(tmp_path, photo_paths):
    data = photo_paths[0].read_bytes()
    p = tmp_path / "trunc.jpg"
    p.write_bytes(data[: len(data) // 3])
    with pytest.raises(MediaError, match="trunc.jpg.*(truncated|corrupt)"):
        load_image(str(p))


def test_empty_file(tmp_path):
    p = tmp_path / "empty.jpg"
    p.write_bytes(b"")
    with pytest.raises(MediaError, match="empty.jpg: empty file"):
        sniff(str(p))


def test_text_named_jpg_is_text(tmp_path):
    p = tmp_path / "notes.jpg"
    p.write_text("this is not a picture\n")
    assert sniff(str(p)).media_type == "text"
    with pytest.raises(MediaError, match="notes.jpg"):
        load_image(str(p))


def test_png_header_claiming_huge_dimensions(tmp_path):
    """A 50,000 x 50,000 PNG header must be refused before any pixel is allocated."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", 50_000, 50_000, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 4096)  # a few real rows; the rest is "missing"
    p = tmp_path / "bomb.png"
    p.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat)
                  + chunk(b"IEND", b""))
    ours = r"bomb.png: image is 2,500,000,000 pixels, over the limit of 100,000,000 pixels"
    with pytest.raises(MediaError, match=ours + r".*decompression bomb"):
        load_image(str(p))


def test_custom_pixel_limit(tmp_path, photo_paths):
    with pytest.raises(MediaError, match="over the limit"):
        load_image(str(photo_paths[0]), ImageLimits(max_pixels=1000))

"""Decode still images: content-detected formats, EXIF orientation, alpha on white, bomb limit."""
from __future__ import annotations

import logging
import re
import warnings
from dataclasses import dataclass

from copytrace.errors import MediaError

log = logging.getLogger(__name__)
IMAGE_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF", "MPO")


@dataclass(frozen=True)
class ImageLimits:
    """``max_pixels`` bounds width*height read from the header, before any pixel is decoded."""

    max_pixels: int = 100_000_000
    max_side: int = 30_000

    def __post_init__(self) -> None:
        if self.max_pixels <= 0 or self.max_side <= 0:
            raise ValueError("ImageLimits.max_pixels and max_side must be positive")

    def describe(self) -> str:
        return (f"over the limit of {self.max_pixels:,} pixels / {self.max_side:,} px per side "
                "(refused as a possible decompression bomb)")


_PIL_PIXELS = re.compile(r"\((\d+) pixels\)")


def _bomb_cause(pil_message: str, limits: ImageLimits) -> str:
    """PIL refuses images over twice its own limit before we see the header's size; say it
    with our limits (PIL's message carries the pixel count only)."""
    m = _PIL_PIXELS.search(pil_message)
    size = f"image is {int(m.group(1)):,} pixels" if m else "image is too large"
    return f"{size}, {limits.describe()}"


def _pil_cause(e: BaseException, path: str) -> str:
    """PIL's message without the file name it sometimes repeats."""
    text = str(e).replace(f" {path!r}", "").replace(f" '{path}'", "").strip()
    return text or type(e).__name__


def _log_warnings(path: str, noted: list) -> None:
    for w in noted:
        log.debug("%s: %s: %s", path, w.category.__name__, w.message)


def load_image(path: str, limits: ImageLimits = ImageLimits(), draft_size: int | None = None):
    """Return an RGB PIL image. ``draft_size`` lets JPEG decode at a reduced scale (faster)."""
    from PIL import Image, ImageOps

    try:
        with warnings.catch_warnings(record=True) as noted:
            # Our own limits (below) decide on size; PIL's other warnings (corrupt EXIF, a
            # short read) go to the log, not to a terminal line naming no file.
            warnings.simplefilter("always")
            im = Image.open(path)
        _log_warnings(path, noted)
    except FileNotFoundError:
        raise MediaError(path, "no such file") from None
    except Image.DecompressionBombError as e:
        raise MediaError(path, _bomb_cause(str(e), limits)) from None
    except (Image.UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as e:
        raise MediaError(path, f"not a readable image: {_pil_cause(e, path)}") from None
    try:
        if im.format not in IMAGE_FORMATS:
            raise MediaError(path, f"unsupported image format {im.format}")
        w, h = im.size
        if w <= 0 or h <= 0:
            raise MediaError(path, f"invalid image dimensions {w}x{h}")
        if w * h > limits.max_pixels or max(w, h) > limits.max_side:
            raise MediaError(path, f"image is {w}x{h} = {w * h:,} pixels, {limits.describe()}")
        if getattr(im, "n_frames", 1) > 1:
            im.seek(0)  # animated GIF/WebP/TIFF: the first frame stands for the image
        if draft_size and im.format == "JPEG":
            im.draft("RGB", (draft_size, draft_size))
        with warnings.catch_warnings(record=True) as noted:
            warnings.simplefilter("always")
            im.load()
            im = ImageOps.exif_transpose(im)
            rgb = _to_rgb(im)
        _log_warnings(path, noted)
        return rgb
    except MediaError:
        raise
    except Image.DecompressionBombError as e:  # a later frame's size, checked by PIL on seek
        raise MediaError(path, _bomb_cause(str(e), limits)) from None
    except (OSError, ValueError, SyntaxError, EOFError, MemoryError) as e:
        raise MediaError(path, f"corrupt or truncated image: {_pil_cause(e, path)}") from None
    finally:
        im.close()


def _to_rgb(im):
    from PIL import Image

    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    if im.mode == "I;16" or im.mode == "I":
        import numpy as np

        a = np.asarray(im, dtype=np.float64)
        a = (a - a.min()) / max(a.max() - a.min(), 1.0) * 255.0
        return Image.fromarray(a.astype("uint8")).convert("RGB")
    return im.convert("RGB")

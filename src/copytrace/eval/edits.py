"""Copy edits for building benchmarks and planted-copy tests (Pillow + numpy, no torch).

The families cover those DISC21 used to make its queries: crops, scaling, pads, flips,
rotations, text / emoji / image overlays, picture-in-picture, screenshot framing, colour,
grayscale, blur, noise, JPEG, and combinations. Every edit is a function
``edit(image, rng, other=None) -> Image`` that draws all its randomness from ``rng``, so a seed
fixes the output; ``other`` is a second image for the families that mix two pictures (image
overlay, picture-in-picture, and combos that include them); without it a synthetic picture drawn
from ``rng`` stands in. Parameters with defaults set each family's strength; callers that need
milder edits (the library acceptance test keeps ≥ 60% of the area, JPEG ≥ 30) pass them.

Edited images are always RGB.
"""
from __future__ import annotations

import io
import string
from collections.abc import Callable
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont, ImageOps

EditFn = Callable[..., Image.Image]

_MIN_SIDE = 32
_TEXT_CHARS = string.ascii_letters + string.digits + "  !?@#&%$"


def _rgb(image: Image.Image) -> Image.Image:
    return image if image.mode == "RGB" else image.convert("RGB")


def _colour(rng: np.random.Generator) -> tuple[int, int, int]:
    return tuple(int(v) for v in rng.integers(0, 256, size=3))


@lru_cache(maxsize=64)
def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def _synthetic_picture(rng: np.random.Generator, size: tuple[int, int]) -> Image.Image:
    """A gradient with random blocks: the stand-in for ``other`` when none is given."""
    w, h = size
    x = np.linspace(0, 1, w, dtype=np.float32)[None, :, None]
    y = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    c0, c1, c2 = (rng.uniform(0, 255, size=3).astype(np.float32) for _ in range(3))
    arr = c0 + (c1 - c0) * x + (c2 - c0) * y
    im = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(im)
    for _ in range(int(rng.integers(3, 8))):
        x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
        x1, y1 = x0 + int(rng.integers(w // 8 + 1, w // 2 + 2)), y0 + int(rng.integers(h // 8 + 1, h // 2 + 2))
        shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
        shape((x0, y0, x1, y1), fill=_colour(rng))
    return im


def _other_or_synthetic(
    other: Image.Image | None, rng: np.random.Generator, size: tuple[int, int]
) -> Image.Image:
    return _rgb(other) if other is not None else _synthetic_picture(rng, size)


# --- geometry -------------------------------------------------------------------------------


def crop(
    image: Image.Image,
    rng: np.random.Generator,
    other: Image.Image | None = None,
    min_area: float = 0.2,
    max_area: float = 0.6,
) -> Image.Image:
    """Keep a random window of ``min_area``..``max_area`` of the area, aspect within 3:4..4:3."""
    if not 0 < min_area <= max_area <= 1:
        raise ValueError("need 0 < min_area <= max_area <= 1")
    image = _rgb(image)
    w, h = image.size
    area = rng.uniform(min_area, max_area)
    aspect = float(np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3))))
    cw = min(w, max(_MIN_SIDE, round(w * np.sqrt(area * aspect))))
    ch = min(h, max(_MIN_SIDE, round(w * h * area / cw)))
    x0 = int(rng.integers(0, w - cw + 1))
    y0 = int(rng.integers(0, h - ch + 1))
    return image.crop((x0, y0, x0 + cw, y0 + ch))


def resize(
    image: Image.Image,
    rng: np.random.Generator,
    other: Image.Image | None = None,
    min_scale: float = 0.25,
    max_scale: float = 0.8,
) -> Image.Image:
    """Downscale by ``min_scale``..``max_scale``, the two axes differing by up to 15%."""
    image = _rgb(image)
    w, h = image.size
    s = rng.uniform(min_scale, max_scale)
    sx = s * rng.uniform(0.92, 1.08)
    sy = s * rng.uniform(0.92, 1.08)
    size = (max(_MIN_SIDE, round(w * sx)), max(_MIN_SIDE, round(h * sy)))
    method = [Image.NEAREST, Image.BILINEAR, Image.BICUBIC, Image.LANCZOS][int(rng.integers(0, 4))]
    return image.resize(size, method)


def pad(
    image: Image.Image,
    rng: np.random.Generator,
    other: Image.Image | None = None,
    max_fraction: float = 0.35,
) -> Image.Image:
    """Add borders of up to ``max_fraction`` of the side on each edge: flat colour or noise."""
    image = _rgb(image)
    w, h = image.size
    left, right = (int(w * f) for f in rng.uniform(0.02, max_fraction, size=2))
    top, bottom = (int(h * f) for f in rng.uniform(0.02, max_fraction, size=2))
    size = (w + left + right, h + top + bottom)
    if rng.random() < 0.7:
        canvas = Image.new("RGB", size, _colour(rng))
    else:
        noise = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
        canvas = Image.fromarray(noise, "RGB")
    canvas.paste(image, (left, top))
    return canvas


def hflip(image: Image.Image, rng: np.random.Generator, other: Image.Image | None = None) -> Image.Image:
    return ImageOps.mirror(_rgb(image))


def vflip(image: Image.Image, rng: np.random.Generator, other: Image.Image | None = None) -> Image.Image:
    return ImageOps.flip(_rgb(image))


def rot90(image: Image.Image, rng: np.random.Generator, other: Image.Image | None = None) -> Image.Image:
    """Rotate by 90, 180 or 270 degrees."""
    op = [Image.Transpose.ROTATE_90, Image.Transpose.ROTATE_180, Image.Transpose.ROTATE_270]
    return _rgb(image).transpose(op[int(rng.integers(0, 3))])


def rotate(
    image: Image.Image,
    rng: np.random.Generator,
    other: Image.Image | None = None,
    max_degrees: float = 30.0,
) -> Image.Image:
    """Rotate by 3..``max_degrees`` either way, canvas expanded, corners filled with a colour."""
    angle = rng.uniform(3.0, max_degrees) * (1 if rng.random() < 0.5 else -1)
    return _rgb(image).rotate(
        angle, resample=Image.BILINEAR, expand=True, fillcolor=_colour(rng)
    )


# --- overlays -------------------------------------------------------------------------------


def text(
    image: Image.Image,
    rng: np.random.Generator,
    other: Image.Image | None = None,
    max_lines: int = 3,
    max_height: float = 0.15,
) -> Image.Image:
    """Draw 1..``max_lines`` random strings, each up to ``max_height`` of the image height."""
    image = _rgb(image).copy()
    w, h = image.size
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(1, max_lines + 1))):
        size = max(8, int(h * rng.uniform(0.04, max_height)))
        n = int(rng.integers(4, 18))
        words = "".join(_TEXT_CHARS[i] for i in rng.integers(0, len(_TEXT_CHARS), size=n))
        xy = (int(rng.integers(-w // 10, max(1, w * 3 // 4))), int(rng.integers(0, max(1, h - size))))
        stroke = int(rng.integers(0, 3)) * max(1, size // 16)
        draw.text(
            xy, words, font=_font(size), fill=_colour(rng),
            stroke_width=stroke, stroke_fill=_colour(rng),
        )
    return image


def _draw_emoji(draw: ImageDraw.ImageDraw, box: tuple[int, int, int, int], kind: int,
                fill: tuple[int, int, int, int], rng: np.random.Generator) -> None:
    x0, y0, x1, y1 = box
    cx, cy, r = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2
    ink = (0, 0, 0, fill[3])
    if kind == 0:  # smiley face
        draw.ellipse(box, fill=fill, outline=ink, width=max(1, int(r / 12)))
        e = r * 0.14
        for ex in (cx - r * 0.35, cx + r * 0.35):
            draw.ellipse((ex - e, cy - r * 0.3 - e, ex + e, cy - r * 0.3 + e), fill=ink)
        draw.arc((cx - r * 0.5, cy - r * 0.3, cx + r * 0.5, cy + r * 0.55), 20, 160, fill=ink,
                 width=max(1, int(r / 10)))
    elif kind == 1:  # five-pointed star
        pts = []
        for i in range(10):
            a = -np.pi / 2 + i * np.pi / 5
            rr = r if i % 2 == 0 else r * 0.42
            pts.append((cx + rr * np.cos(a), cy + rr * np.sin(a)))
        draw.polygon(pts, fill=fill)
    elif kind == 2:  # heart
        draw.ellipse((x0, y0, cx, cy + r * 0.1), fill=fill)
        draw.ellipse((cx, y0, x1, cy + r * 0.1), fill=fill)
        draw.polygon([(x0 + r * 0.05, cy - r * 0.2), (x1 - r * 0.05, cy - r * 0.2), (cx, y1)], fill=fill)
    else:  # plain disc, square or triangle
        shape = int(rng.integers(0, 3))
        if shape == 0:
            draw.ellipse(box, fill=fill)
        elif shape == 1:
            draw.rectangle(box, fill=fill)
        else:
            draw.polygon([(cx, y0), (x1, y1), (x0, y1)], fill=fill)


def emoji(
    image: Image.Image,
    rng: np.random.Generator,
    other: Image.Image | None = None,
    max_count: int = 4,
    max_size: float = 0.35,
) -> Image.Image:
    """Stamp 1..``max_count`` emoji-like shapes (smiley, star, heart, plain shapes)."""
    image = _rgb(image)
    w, h = image.size
    layer = Image.new("RGBA", image.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    for _ in range(int(rng.integers(1, max_count + 1))):
        side = max(8, int(min(w, h) * rng.uniform(0.1, max_size)))
        x0 = int(rng.integers(-side // 4, max(1, w - side * 3 // 4)))
        y0 = int(rng.integers(-side // 4, max(1, h - side * 3 // 4)))
        alpha = int(rng.integers(160, 256))
        fill = (*_colour(rng), alpha)
        _draw_emoji(draw, (x0, y0, x0 + side, y0 + side), int(rng.integers(0, 4)), fill, rng)
    return Image.alpha_composite(image.convert("RGBA"), layer).convert("RGB")


def overlay(
    image: Image.Image,
    rng: np.random.Generator,
    other: Image.Image | None = None,
    max_size: float = 0.5,
) -> Image.Image:
    """Paste ``other`` over part of the image (up to ``max_size`` of each side), opacity 0.4..1."""
    image = _rgb(image).copy()
    w, h = image.size
    s = rng.uniform(0.2, max_size)
    ow, oh = max(8, int(w * s * rng.uniform(0.8, 1.2))), max(8, int(h * s * rng.uniform(0.8, 1.2)))
    patch = _other_or_synthetic(other, rng, (ow, oh)).resize((ow, oh), Image.BILINEAR)
    x0, y0 = int(rng.integers(0, max(1, w - ow + 1))), int(rng.integers(0, max(1, h - oh + 1)))
    opacity = rng.uniform(0.4, 1.0)
    mask = Image.new("L", (ow, oh), round(255 * opacity))
    image.paste(patch, (x0, y0), mask)
    return image


def picture_in_picture(
    image: Image.Image,
    rng: np.random.Generator,
    other: Image.Image | None = None,
    min_scale: float = 0.35,
    max_scale: float = 0.75,
) -> Image.Image:
    """Paste the image, shrunk to ``min_scale``..``max_scale`` of the background, into ``other``."""
    image = _rgb(image)
    w, h = image.size
    bg = _other_or_synthetic(other, rng, (w, h))
    # The background takes the longer side of the pasted image, so the copy really shrinks.
    k = max(w, h) / max(bg.size)
    bg = bg.resize((max(_MIN_SIDE, round(bg.size[0] * k)), max(_MIN_SIDE, round(bg.size[1] * k))),
                   Image.BILINEAR)
    bw, bh = bg.size
    s = rng.uniform(min_scale, max_scale) * min(bw / w, bh / h)
    pw, ph = max(8, round(w * s)), max(8, round(h * s))
    small = image.resize((pw, ph), Image.BILINEAR)
    x0, y0 = int(rng.integers(0, bw - pw + 1)), int(rng.integers(0, bh - ph + 1))
    bg.paste(small, (x0, y0))
    return bg


def screenshot(
    image: Image.Image, rng: np.random.Generator, other: Image.Image | None = None
) -> Image.Image:
    """Frame the image like a desktop window or a phone screen capture, with UI text."""
    image = _rgb(image)
    w, h = image.size
    phone = rng.random() < 0.5
    base = max(w, h)
    size = (round(base * 0.5), round(base * 1.05)) if phone else (round(base * 1.2), round(base * 0.8))
    sw, sh = max(size[0], 64), max(size[1], 64)
    dark = rng.random() < 0.5
    ui = tuple(int(v) for v in (rng.integers(10, 50, 3) if dark else rng.integers(215, 256, 3)))
    ink = (235, 235, 235) if dark else (25, 25, 25)
    canvas = Image.new("RGB", (sw, sh), ui)
    draw = ImageDraw.Draw(canvas)
    bar = max(12, sh // 14)
    accent = _colour(rng)
    draw.rectangle((0, 0, sw, bar), fill=accent)
    font = _font(max(8, bar * 2 // 3))
    label = "".join(_TEXT_CHARS[i] for i in rng.integers(0, 52, size=int(rng.integers(5, 14))))
    draw.text((bar // 3, bar // 6), f"12:{int(rng.integers(0, 60)):02d}  " + label, font=font, fill=ink)
    footer = max(12, sh // 10)
    top, bottom = bar + int(rng.integers(0, bar + 1)), sh - footer
    margin = 0 if phone else int(sw * rng.uniform(0.03, 0.25))
    area_w, area_h = sw - 2 * margin, bottom - top
    s = min(area_w / w, area_h / h) * rng.uniform(0.85, 1.0)
    pw, ph = max(8, round(w * s)), max(8, round(h * s))
    x0 = margin + (area_w - pw) // 2
    y0 = top + int(rng.integers(0, max(1, area_h - ph + 1)))
    canvas.paste(image.resize((pw, ph), Image.BILINEAR), (x0, y0))
    caption = "".join(_TEXT_CHARS[i] for i in rng.integers(0, len(_TEXT_CHARS), size=int(rng.integers(8, 30))))
    draw.text((bar // 3, bottom + footer // 5), caption, font=_font(max(8, footer // 3)), fill=ink)
    if not phone:  # side panel with a few menu lines
        for i in range(int(rng.integers(2, 6))):
            draw.rectangle((margin // 6, top + i * bar * 1.5, margin * 5 // 6, top + i * bar * 1.5 + bar // 2),
                           fill=tuple(max(0, min(255, c + (40 if dark else -40))) for c in ui))
    return canvas


# --- pixels ---------------------------------------------------------------------------------


def colour(image: Image.Image, rng: np.random.Generator, other: Image.Image | None = None) -> Image.Image:
    """Brightness, contrast and saturation jitter plus a hue rotation."""
    image = _rgb(image)
    image = ImageEnhance.Brightness(image).enhance(rng.uniform(0.55, 1.5))
    image = ImageEnhance.Contrast(image).enhance(rng.uniform(0.55, 1.5))
    image = ImageEnhance.Color(image).enhance(rng.uniform(0.2, 2.0))
    hsv = np.asarray(image.convert("HSV")).copy()
    hsv[..., 0] = (hsv[..., 0].astype(np.int16) + int(rng.integers(-30, 31))) % 256
    return Image.fromarray(hsv, "HSV").convert("RGB")


def grayscale(image: Image.Image, rng: np.random.Generator, other: Image.Image | None = None) -> Image.Image:
    return ImageOps.grayscale(_rgb(image)).convert("RGB")


def blur(
    image: Image.Image,
    rng: np.random.Generator,
    other: Image.Image | None = None,
    max_radius: float = 0.015,
) -> Image.Image:
    """Gaussian blur with a radius of 0.3%..``max_radius`` of the short side (at least 1 px)."""
    image = _rgb(image)
    r = max(1.0, min(image.size) * rng.uniform(0.003, max_radius))
    return image.filter(ImageFilter.GaussianBlur(r))


def noise(
    image: Image.Image,
    rng: np.random.Generator,
    other: Image.Image | None = None,
    max_sigma: float = 40.0,
) -> Image.Image:
    """Gaussian noise (sigma 8..``max_sigma`` grey levels) or salt-and-pepper (2..8% of pixels)."""
    a = np.asarray(_rgb(image), dtype=np.float32)
    if rng.random() < 0.7:
        a = a + rng.normal(0.0, rng.uniform(8.0, max_sigma), size=a.shape).astype(np.float32)
    else:
        a = a.copy()
        hit = rng.random(a.shape[:2]) < rng.uniform(0.02, 0.08)
        a[hit] = rng.choice([0.0, 255.0], size=int(hit.sum()))[:, None]
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8), "RGB")


def jpeg(
    image: Image.Image,
    rng: np.random.Generator,
    other: Image.Image | None = None,
    min_quality: int = 10,
    max_quality: int = 50,
) -> Image.Image:
    """Re-encode as JPEG at quality ``min_quality``..``max_quality``."""
    buf = io.BytesIO()
    _rgb(image).save(buf, format="JPEG", quality=int(rng.integers(min_quality, max_quality + 1)))
    buf.seek(0)
    with Image.open(buf) as im:
        return im.convert("RGB")


# --- registry -------------------------------------------------------------------------------

EDITS: dict[str, EditFn] = {
    "crop": crop,
    "resize": resize,
    "pad": pad,
    "hflip": hflip,
    "vflip": vflip,
    "rot90": rot90,
    "rotate": rotate,
    "text": text,
    "emoji": emoji,
    "overlay": overlay,
    "pip": picture_in_picture,
    "screenshot": screenshot,
    "colour": colour,
    "grayscale": grayscale,
    "blur": blur,
    "noise": noise,
    "jpeg": jpeg,
}


def combo(
    image: Image.Image,
    rng: np.random.Generator,
    other: Image.Image | None = None,
    max_edits: int = 3,
) -> Image.Image:
    """2..``max_edits`` different families in a row, in random order."""
    names = sorted(EDITS)
    picks = rng.choice(len(names), size=int(rng.integers(2, max_edits + 1)), replace=False)
    for i in picks:
        image = EDITS[names[int(i)]](image, rng, other)
    return image


EDITS["combo"] = combo
FAMILIES: tuple[str, ...] = tuple(EDITS)


# --- photograph-eval families (issue 20) ----------------------------------------------------
# Kept out of EDITS so FAMILIES, the eval benchmark's default set and its cache key, are
# unchanged; the photograph eval (bench/photos.py) draws from PHOTO_FAMILIES.


def resize_jpeg(
    image: Image.Image,
    rng: np.random.Generator,
    other: Image.Image | None = None,
    min_scale: float = 0.2,
    max_scale: float = 0.6,
    min_quality: int = 8,
    max_quality: int = 35,
) -> Image.Image:
    """Downscale by ``min_scale``..``max_scale`` then JPEG at ``min_quality``..``max_quality``:
    what a messaging app does to a forwarded photo."""
    return jpeg(resize(image, rng, None, min_scale, max_scale), rng, None, min_quality, max_quality)


def rotate_small(
    image: Image.Image,
    rng: np.random.Generator,
    other: Image.Image | None = None,
    max_degrees: float = 20.0,
) -> Image.Image:
    """Rotate by 2..``max_degrees`` either way; half the time the corners are cropped away
    (the largest centred window of the original aspect inside the turned picture)."""
    image = _rgb(image)
    angle = rng.uniform(2.0, max_degrees) * (1 if rng.random() < 0.5 else -1)
    out = image.rotate(angle, resample=Image.BICUBIC, expand=True, fillcolor=_colour(rng))
    if rng.random() < 0.5:
        w, h = image.size
        a = np.radians(abs(angle))
        k = 1.0 / (np.cos(a) + np.sin(a) * max(w / h, h / w))
        cw, ch = max(_MIN_SIDE, int(w * k)), max(_MIN_SIDE, int(h * k))
        ow, oh = out.size
        out = out.crop(((ow - cw) // 2, (oh - ch) // 2, (ow - cw) // 2 + cw, (oh - ch) // 2 + ch))
    return out


def picture_in_picture_width(
    image: Image.Image,
    rng: np.random.Generator,
    other: Image.Image | None = None,
    min_width: float = 0.2,
    max_width: float = 0.6,
) -> Image.Image:
    """Paste the image at ``min_width``..``max_width`` of the background's width (height
    clipped to fit) anywhere on ``other``, with a thin frame half the time."""
    image = _rgb(image)
    w, h = image.size
    bg = _other_or_synthetic(other, rng, (w, h)).copy()
    # Background at least as large as the copy's source, so the copy really shrinks.
    k = max(1.0, max(w / bg.size[0], h / bg.size[1]))
    if k > 1.0:
        bg = bg.resize((round(bg.size[0] * k), round(bg.size[1] * k)), Image.BILINEAR)
    bw, bh = bg.size
    pw = max(16, round(bw * rng.uniform(min_width, max_width)))
    ph = round(h * pw / w)
    if ph > bh * 0.9:
        ph = round(bh * 0.9)
        pw = round(w * ph / h)
    small = image.resize((max(16, pw), max(16, ph)), Image.BILINEAR)
    pw, ph = small.size
    if rng.random() < 0.5:
        t = max(1, pw // 60)
        small = ImageOps.expand(small, border=t, fill=_colour(rng))
        pw, ph = small.size
    x0, y0 = int(rng.integers(0, max(1, bw - pw + 1))), int(rng.integers(0, max(1, bh - ph + 1)))
    bg.paste(small, (x0, y0))
    return bg


def meme(
    image: Image.Image, rng: np.random.Generator, other: Image.Image | None = None
) -> Image.Image:
    """Meme captions: white outlined words at the top and bottom of the picture, or a white
    caption bar above it with dark words (the 'top text' layout)."""
    image = _rgb(image).copy()
    w, h = image.size

    def words(n: int) -> str:
        return " ".join("".join(string.ascii_uppercase[i] for i in rng.integers(0, 26, size=int(rng.integers(2, 8))))
                        for _ in range(n))

    if rng.random() < 0.5:
        draw = ImageDraw.Draw(image)
        size = max(10, int(h * rng.uniform(0.07, 0.14)))
        font = _font(size)
        for y in (int(h * 0.03), h - int(size * 1.3) - int(h * 0.03)):
            line = words(int(rng.integers(2, 5)))
            tw = draw.textlength(line, font=font)
            draw.text((max(0, (w - tw) / 2), y), line, font=font, fill=(255, 255, 255),
                      stroke_width=max(1, size // 12), stroke_fill=(0, 0, 0))
        return image
    bar = int(h * rng.uniform(0.15, 0.35))
    canvas = Image.new("RGB", (w, h + bar), (255, 255, 255))
    canvas.paste(image, (0, bar))
    draw = ImageDraw.Draw(canvas)
    size = max(10, bar // 4)
    font = _font(size)
    for i in range(int(rng.integers(1, 3))):
        draw.text((w // 20, bar // 6 + i * size * 1.3), words(int(rng.integers(2, 6))), font=font,
                  fill=(20, 20, 20))
    return canvas


def app_frame(
    image: Image.Image, rng: np.random.Generator, other: Image.Image | None = None
) -> Image.Image:
    """The picture as a social-media post captured on a phone: status bar, avatar and name
    above it, like/comment icons and caption lines below, on a light or dark theme."""
    image = _rgb(image)
    w, h = image.size
    sw = max(64, round(w * rng.uniform(1.0, 1.15)))
    s = sw / w if rng.random() < 0.6 else rng.uniform(0.8, 0.95) * sw / w
    pw, ph = max(16, round(w * s)), max(16, round(h * s))
    unit = max(10, sw // 18)
    top = unit * 4
    sh = top + ph + unit * 5
    dark = rng.random() < 0.5
    ui = (18, 18, 18) if dark else (250, 250, 250)
    ink = (235, 235, 235) if dark else (30, 30, 30)
    canvas = Image.new("RGB", (sw, sh), ui)
    draw = ImageDraw.Draw(canvas)
    draw.text((unit // 2, unit // 4), f"{int(rng.integers(0, 24))}:{int(rng.integers(0, 60)):02d}",
              font=_font(unit * 2 // 3), fill=ink)
    draw.rectangle((sw - unit * 3, unit // 3, sw - unit, unit), fill=ink)
    draw.ellipse((unit // 2, unit * 3 // 2, unit * 2, unit * 3), fill=_colour(rng))
    name = "".join(_TEXT_CHARS[i] for i in rng.integers(0, 52, size=int(rng.integers(5, 14))))
    draw.text((unit * 5 // 2, unit * 7 // 4), name, font=_font(unit * 2 // 3), fill=ink)
    canvas.paste(image.resize((pw, ph), Image.BILINEAR), ((sw - pw) // 2, top))
    y = top + ph + unit // 2
    for i in range(3):
        x = unit // 2 + i * unit * 2
        draw.ellipse((x, y, x + unit, y + unit), outline=ink, width=max(1, unit // 8))
    for i in range(2):
        n = int(rng.integers(8, 30))
        caption = "".join(_TEXT_CHARS[j] for j in rng.integers(0, len(_TEXT_CHARS), size=n))
        draw.text((unit // 2, y + unit * (3 + 2 * i) // 2), caption, font=_font(unit * 3 // 5), fill=ink)
    return canvas


PHOTO_EDITS: dict[str, EditFn] = {
    "crop": crop,
    "resize_jpeg": resize_jpeg,
    "rot90": rot90,
    "rotate_small": rotate_small,
    "hflip": hflip,
    "pad": pad,
    "text": text,
    "emoji": emoji,
    "meme": meme,
    "screenshot": screenshot,
    "app_frame": app_frame,
    "pip_small": picture_in_picture_width,
}
PHOTO_FAMILIES: tuple[str, ...] = tuple(PHOTO_EDITS)
ALL_FAMILIES: tuple[str, ...] = FAMILIES + tuple(f for f in PHOTO_FAMILIES if f not in EDITS)


def apply_edit(
    family: str, image: Image.Image, rng: np.random.Generator, other: Image.Image | None = None
) -> Image.Image:
    """Apply the named edit family with its default strength; returns a new RGB image."""
    fn = EDITS.get(family) or PHOTO_EDITS.get(family)
    if fn is None:
        raise ValueError(f"unknown edit family {family!r}; known: {', '.join(ALL_FAMILIES)}")
    return fn(image, rng, other)

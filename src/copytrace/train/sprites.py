"""A bank of RGBA overlay sprites (text, emoji-like faces, shapes), drawn once with Pillow.

Overlays are a large DISC21 edit family (captions, memes, stickers). Fonts are not shipped, so
text uses Pillow's built-in scalable default font (``ImageFont.load_default(size=...)``).
"""
from __future__ import annotations

import random
import string

import numpy as np
from PIL import Image, ImageDraw, ImageFont

TEXT_SIZE = (32, 160)  # (height, width) of a text sprite canvas
SHAPE_SIZE = (64, 64)
_WORDS = (
    "copy share like follow breaking news sale today only lol wow meme original viral photo "
    "credit www example com 2024 subscribe live hd 4k free download me when the best of"
).split()


def _random_colour(rng: random.Random, alpha: int = 255) -> tuple[int, int, int, int]:
    return (rng.randrange(256), rng.randrange(256), rng.randrange(256), alpha)


def _random_text(rng: random.Random) -> str:
    if rng.random() < 0.7:
        return " ".join(rng.choice(_WORDS) for _ in range(rng.randint(1, 4)))
    chars = string.ascii_letters + string.digits + "!?#@&%"
    return "".join(rng.choice(chars) for _ in range(rng.randint(3, 14)))


def _text_sprite(rng: random.Random) -> Image.Image:
    h, w = TEXT_SIZE
    big = Image.new("RGBA", (w * 2, h * 2), (0, 0, 0, 0))
    draw = ImageDraw.Draw(big)
    font = ImageFont.load_default(size=rng.randint(20, 44))
    text = _random_text(rng)
    if rng.random() < 0.5:
        text = text.upper()
    fill = _random_colour(rng)
    stroke = rng.choice([0, 0, 2, 3])
    if rng.random() < 0.25:  # caption box behind the text
        draw.rectangle((0, 0, w * 2, h * 2), fill=_random_colour(rng, rng.randint(120, 255)))
    draw.text((4, 4), text, font=font, fill=fill, stroke_width=stroke,
              stroke_fill=_random_colour(rng))
    box = big.getbbox() or (0, 0, 8, 8)
    return big.crop(box).resize((w, h), Image.BILINEAR)


def _shape_sprite(rng: random.Random) -> Image.Image:
    h, w = SHAPE_SIZE
    s = 4 * w  # draw large, downsample for smooth edges
    im = Image.new("RGBA", (s, s), (0, 0, 0, 0))
    d = ImageDraw.Draw(im)
    kind = rng.choice(["face", "face", "star", "heart", "circle", "polygon", "arrow"])
    c, c2 = _random_colour(rng), _random_colour(rng)
    m = s // 16
    if kind == "face":  # emoji-like smiley
        d.ellipse((m, m, s - m, s - m), fill=(255, rng.randint(180, 230), 40, 255),
                  outline=(90, 60, 0, 255), width=m // 2)
        e = s // 9
        for x in (s * 0.35, s * 0.65):
            d.ellipse((x - e / 2, s * 0.33, x + e / 2, s * 0.33 + e * 1.4), fill=(60, 40, 0, 255))
        arc = (s * 0.25, s * 0.35, s * 0.75, s * 0.78)
        if rng.random() < 0.7:
            d.chord(arc, 20, 160, fill=(120, 20, 20, 255))
        else:
            d.arc(arc, 200, 340, fill=(60, 40, 0, 255), width=m // 2)
    elif kind == "star":
        pts = []
        for i in range(10):
            r = s * (0.48 if i % 2 == 0 else 0.2)
            a = np.pi / 2 + i * np.pi / 5
            pts.append((s / 2 + r * np.cos(a), s / 2 - r * np.sin(a)))
        d.polygon(pts, fill=c, outline=c2)
    elif kind == "heart":
        d.ellipse((m, s * 0.15, s / 2 + m, s * 0.6), fill=c)
        d.ellipse((s / 2 - m, s * 0.15, s - m, s * 0.6), fill=c)
        d.polygon([(m * 1.3, s * 0.45), (s - m * 1.3, s * 0.45), (s / 2, s - m)], fill=c)
    elif kind == "circle":
        d.ellipse((m, m, s - m, s - m), fill=c, outline=c2, width=rng.randint(0, 3) * m)
    elif kind == "polygon":
        n = rng.randint(3, 7)
        pts = [(rng.uniform(m, s - m), rng.uniform(m, s - m)) for _ in range(n)]
        d.polygon(pts, fill=c)
    else:
        d.polygon([(m, s * 0.4), (s * 0.6, s * 0.4), (s * 0.6, m * 2), (s - m, s / 2),
                   (s * 0.6, s - m * 2), (s * 0.6, s * 0.6), (m, s * 0.6)], fill=c)
    return im.resize((w, h), Image.LANCZOS)


def _to_array(ims: list[Image.Image]) -> np.ndarray:
    """list of RGBA images -> uint8 [K, 4, H, W]"""
    return np.stack([np.asarray(im, dtype=np.uint8).transpose(2, 0, 1) for im in ims])


def render_sprites(n_text: int, n_shapes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Return (text sprites [n_text, 4, 32, 160], shape sprites [n_shapes, 4, 64, 64]), uint8."""
    rng = random.Random(seed)
    texts = _to_array([_text_sprite(rng) for _ in range(n_text)])
    shapes = _to_array([_shape_sprite(rng) for _ in range(n_shapes)])
    return texts, shapes

"""Small real video clips written at test time: camera pans across the real test photos."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image

DATA = Path(__file__).resolve().parent / "data"
SIZE = (96, 64)


def pan_frames(photo: str, n: int, seed: int) -> list[Image.Image]:
    """``n`` frames of a pan-and-zoom across a photo: every frame differs from its neighbours."""
    im = Image.open(DATA / photo).convert("RGB")
    w, h = im.size
    rng = np.random.default_rng(seed)
    # A smooth random walk of the crop window, so frames a second apart look different.
    xs = np.cumsum(rng.normal(0, 6, n)) + np.linspace(0, w * 0.4, n)
    ys = np.cumsum(rng.normal(0, 4, n)) + np.linspace(0, h * 0.2, n)
    frames = []
    for i in range(n):
        cw, ch = int(w * 0.45), int(h * 0.45)
        x = int(np.clip(xs[i], 0, w - cw))
        y = int(np.clip(ys[i], 0, h - ch))
        frames.append(im.crop((x, y, x + cw, y + ch)).resize(SIZE, Image.BILINEAR))
    return frames


def write_clip(path: Path, frames: list[Image.Image], rate: Fraction, faststart: bool = False,
               rotation: int = 0) -> Path:
    import av

    opts = {"movflags": "+faststart"} if faststart else {}
    with av.open(str(path), "w", options=opts) as c:
        st = c.add_stream("libx264", rate=rate)
        st.width, st.height, st.pix_fmt = frames[0].width, frames[0].height, "yuv420p"
        st.options = {"crf": "18", "preset": "ultrafast", "g": "12"}
        if rotation:
            st.set_display_rotation(rotation)
        for im in frames:
            for pkt in st.encode(av.VideoFrame.from_image(im)):
                c.mux(pkt)
        for pkt in st.encode():
            c.mux(pkt)
    return path


def tiny_embed(images: list[Image.Image]) -> np.ndarray:
    """A cheap stand-in frame descriptor: 12x8 grey thumbnail, centred, L2-normalised."""
    v = np.stack([np.asarray(im.convert("L").resize((12, 8), Image.BILINEAR), np.float32)
                  .reshape(-1) for im in images])
    v -= v.mean(axis=1, keepdims=True)
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-6)

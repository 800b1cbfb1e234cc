"""Small real video clips written at test time: camera pans across the real test photos."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image

DATA = Path(__file__).resolve().parent / "data"
SIZE = (96, 64)


def pan_frames(photo: str, n: int, seed: int, fps: float = 25.0) -> list[Image.Image]:
    """``n`` frames of a camera wandering over a photo (pan and zoom on incommensurate periods),
    so frames a fraction of a second apart differ and no view repeats within the clip."""
    im = Image.open(DATA / photo).convert("RGB")
    w, h = im.size
    rng = np.random.default_rng(seed)
    periods = rng.uniform(8.0, 16.0, 3)
    phases = rng.uniform(0, 2 * np.pi, 3)
    frames = []
    for i in range(n):
        t = i / fps
        px, py, pz = (0.5 + 0.5 * np.sin(2 * np.pi * t / periods + phases)).tolist()
        cw, ch = int(w * (0.3 + 0.3 * pz)), int(h * (0.3 + 0.3 * pz))
        x, y = int(px * (w - cw)), int(py * (h - ch))
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
    """A cheap stand-in frame descriptor: 16x12 grey thumbnail, centred, L2-normalised."""
    v = np.stack([np.asarray(im.convert("L").resize((16, 12), Image.BILINEAR), np.float32)
                  .reshape(-1) for im in images])
    v -= v.mean(axis=1, keepdims=True)
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-6)

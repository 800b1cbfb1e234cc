"""Shared fixtures: small real photos (tests/data) and planted copies made from them."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="session")
def photo_paths() -> list[Path]:
    paths = sorted(p for p in DATA.glob("*.jpg"))
    assert len(paths) >= 2, "tests/data must hold real photos"
    return paths


def variants(photo_paths: list[Path], out: Path, n: int, seed: int = 0) -> list[Path]:
    """``n`` distinct real-image files (random crops/rescales of the test photos)."""
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    files = []
    for i in range(n):
        im = Image.open(photo_paths[i % len(photo_paths)]).convert("RGB")
        w, h = im.size
        cw, ch = int(w * rng.uniform(0.5, 0.9)), int(h * rng.uniform(0.5, 0.9))
        x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        p = out / f"v{i:04d}.jpg"
        im.crop((x, y, x + cw, y + ch)).save(p, quality=90)
        files.append(p)
    return files


def mux_pcm(container, stream, x: np.ndarray, rate: int, block: int = 1024) -> None:
    """Encode float samples ``x`` [channels, n] (mono or stereo) into ``stream`` in frames of
    ``block``, in the first of fltp/flt/s16/s16p its encoder takes, then flush it."""
    import av

    layout = "mono" if x.shape[0] == 1 else "stereo"
    names = [f.name for f in stream.codec_context.codec.audio_formats]
    fmt = next(n for n in ("fltp", "flt", "s16", "s16p") if n in names)
    for i in range(0, x.shape[1], block):
        blk = x[:, i : i + block]
        if not fmt.startswith("flt"):
            blk = (np.clip(blk, -1, 1) * 32767).astype(np.int16)
        arr = blk if fmt.endswith("p") or x.shape[0] == 1 else blk.T.reshape(1, -1)
        fr = av.AudioFrame.from_ndarray(np.ascontiguousarray(arr), format=fmt, layout=layout)
        fr.sample_rate = rate
        fr.pts = i
        for pkt in stream.encode(fr):
            container.mux(pkt)
    for pkt in stream.encode(None):
        container.mux(pkt)

"""What users install is a wheel: build it, install it (not editable) into a fresh venv with the
pinned constraints, check that every data file of the package is inside, and run an image, a
video and an audio query through the installed CLI, far from the source checkout."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from .conftest import DATA
from .test_library_media import SR, write_audio
from .video_clips import pan_frames, write_clip

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "copytrace"

pytestmark = pytest.mark.slow


def _sh(*cmd, cwd=None, env=None):
    r = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True,
                       check=False)
    assert r.returncode == 0, f"{' '.join(map(str, cmd))}\n{r.stdout[-2000:]}\n{r.stderr[-4000:]}"
    return r


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wheel")
    # no PYTHONPATH: a source tree on it would make pip think copytrace is installed already
    env = {**{k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
           "PIP_CONSTRAINT": str(ROOT / "constraints.txt"), "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    _sh(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", tmp / "dist", ROOT, env=env)
    wheel = next((tmp / "dist").glob("copytrace-*.whl"))
    _sh(sys.executable, "-m", "venv", tmp / "venv")
    _sh(tmp / "venv" / "bin" / "python", "-m", "pip", "install", "-q", wheel, env=env)
    return wheel, tmp / "venv" / "bin" / "copytrace"


def test_wheel_ships_every_data_file(installed):
    wheel, _ = installed
    with zipfile.ZipFile(wheel) as z:
        shipped = {n for n in z.namelist() if n.startswith("copytrace/")}
    data = {"copytrace/" + p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*")
            if p.is_file() and p.suffix not in (".py", ".pyc")}
    assert data, "the package holds no data files: the weights are missing"
    assert data <= shipped, sorted(data - shipped)


def test_installed_cli_finds_image_video_and_audio_copies(installed, tmp_path, photo_paths):
    from PIL import Image

    from copytrace.media.audio import load_audio

    _, cli = installed
    photo = photo_paths[0]
    copy = tmp_path / "copy.jpg"
    im = Image.open(photo).convert("RGB")
    w, h = im.size
    im.crop((w // 10, h // 10, w - w // 10, h - h // 10)).save(copy, quality=60)

    ref = pan_frames("face_astronaut.jpg", 10 * 25, seed=1)
    video = write_clip(tmp_path / "ref.mp4", ref, Fraction(25))
    clip = write_clip(tmp_path / "clip.mp4", ref[75:200], Fraction(25))

    song = DATA / "music_beast.ogg"
    x = load_audio(song, SR)
    excerpt = write_audio(tmp_path / "excerpt.flac", x[int(12.0 * SR):int(18.0 * SR)])

    cwd = tmp_path / "elsewhere"  # no source tree on the path: the installed package only
    cwd.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "COPYTRACE_DB",
                                                           "COPYTRACE_MODELS_DIR")}
    db = tmp_path / "db"
    added = _sh(cli, "add", "--db", db, photo, video, song, cwd=cwd, env=env).stdout.splitlines()
    ids = [line.split("\t")[0] for line in added]
    assert len(ids) == 3
    out = _sh(cli, "query", "--db", db, "--json", copy, clip, excerpt, cwd=cwd, env=env).stdout
    results = [json.loads(line) for line in out.splitlines()]
    top = [r["matches"][0] if r["matches"] else None for r in results]
    assert top[0] and top[0]["work_id"] == ids[0]
    assert top[1] and top[1]["work_id"] == ids[1] and top[1]["signal"] == "visual"
    seg = top[1]["segments"][0]
    assert np.allclose([seg["query_start_s"], seg["ref_start_s"]], [0.0, 3.0], atol=0.5)
    assert top[2] and top[2]["work_id"] == ids[2] and top[2]["signal"] == "audio"
    seg = top[2]["segments"][0]
    assert abs((seg["ref_start_s"] - seg["query_start_s"]) - 12.0) < 0.25

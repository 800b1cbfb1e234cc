"""Issue 24: every bad input a new user tries gets one clear line and the right exit code,
and nothing hangs. Real files through the real CLI (subprocesses with a time limit)."""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import wave
from fractions import Fraction

import numpy as np
import pytest
from PIL import Image

from .conftest import DATA
from .test_library_media import write_av_clip
from .video_clips import pan_frames, write_clip

CLI = [sys.executable, "-m", "copytrace"]
README = DATA.parents[1] / "README.md"


def run(*args, timeout=120, env=None):
    return subprocess.run(CLI + [str(a) for a in args], capture_output=True, text=True,
                          timeout=timeout, env=env, check=False)


def one_error_line(r, *names):
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("copytrace: error: ") and "Traceback" not in r.stderr
    for name in names:
        assert str(name) in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    db = tmp_path_factory.mktemp("lib") / "db"
    r = run("add", "--db", db, DATA / "animal_cat.jpg")
    assert r.returncode == 0, r.stderr
    return db


def test_missing_library_is_a_usage_error_unless_created(tmp_path):
    typo = tmp_path / "mistyped"
    for args in (["query", DATA / "animal_cat.jpg"], ["list"], ["check"], ["show", "abc"],
                 ["remove", "abc"], ["serve", "--port", "0"]):
        r = run(*args, "--db", typo, timeout=30)
        assert r.returncode == 2, (args, r.stderr)
        assert "no library at" in one_error_line(r, typo) and not typo.exists()
    r = run("list", "--db", tmp_path, timeout=30)  # a folder, but not a library
    assert r.returncode == 2 and "catalog.sqlite missing" in one_error_line(r, tmp_path)
    r = run("query", "--db", typo, "--create", DATA / "animal_cat.jpg")
    assert r.returncode == 0 and "no match" in r.stdout and (typo / "catalog.sqlite").exists()


def test_folder_skips_pipes_and_readmes_without_opening_them(tmp_path, library):
    folder = tmp_path / "uploads"
    folder.mkdir()
    (folder / "README.md").write_text("# Photos\nThese are the campaign photos.\n")
    os.mkfifo(folder / "pipe.jpg")  # nobody ever writes: opening it for reading would block
    Image.open(DATA / "face_hopper.jpg").save(folder / "hopper.png")
    r = run("add", "--db", library, folder, timeout=60)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert len(r.stdout.splitlines()) == 1 and "hopper.png" in r.stdout
    r = run("query", "--db", library, "--json", folder, timeout=60)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert [json.loads(x)["query"]["path"] for x in r.stdout.splitlines()] == [
        str(folder / "hopper.png")]
    # Named explicitly, they are errors: one line each, still without a hang.
    for name, cause in (("pipe.jpg", "named pipe"), ("README.md", "plain text")):
        r = run("add", "--db", library, folder / name, timeout=60)
        assert r.returncode == 1 and cause in one_error_line(r, folder / name)


def test_silent_hour_of_wav_is_refused_as_silent(tmp_path, library):
    path = tmp_path / "silence.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        minute = np.zeros(8000 * 60, np.int16).tobytes()
        for _ in range(60):
            w.writeframes(minute)
    for cmd in ("add", "query"):
        r = run(cmd, "--db", library, path, timeout=300)
        line = one_error_line(r, path)
        assert r.returncode == 1 and "silent" in line and "shorter" not in line


def test_video_with_a_silent_soundtrack_registers_its_pictures(tmp_path, library):
    frames = pan_frames("building_temple.jpg", 50, seed=3, fps=10.0)
    clip = write_av_clip(tmp_path / "mute.mp4", frames, 10, np.zeros(16000 * 5, np.float32))
    r = run("add", "--db", library, "--json", clip)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["media_type"] == "video"


def test_corrupt_catalogue_and_busy_port_are_one_line(tmp_path, library):
    bad = tmp_path / "bad"
    bad.mkdir()
    rng = np.random.default_rng(0)
    (bad / "catalog.sqlite").write_bytes(rng.integers(0, 256, 20000, dtype=np.uint8).tobytes())
    for args in (["list"], ["check"], ["serve", "--port", "0"], ["query", DATA / "animal_cat.jpg"]):
        r = run(*args, "--db", bad, timeout=30)
        assert r.returncode == 1, (args, r.stderr)
        one_error_line(r, bad / "catalog.sqlite")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = run("serve", "--db", library, "--port", port, timeout=30)
    assert r.returncode == 1 and "already in use" in one_error_line(r, port)


def test_decompression_bombs_quote_our_limits(tmp_path, library):
    big = tmp_path / "big.png"
    Image.new("1", (12000, 12000)).save(big)  # 144 MP: PIL would only warn
    r = run("add", "--db", library, big)
    assert r.returncode == 1 and "DecompressionBomb" not in r.stderr
    assert "12000x12000" in one_error_line(r, big, "100,000,000 pixels")


def test_truncated_mp4_cause_is_readable(tmp_path, library):
    clip = write_clip(tmp_path / "clip.mp4", pan_frames("object_rocket.jpg", 30, seed=1),
                      Fraction(10))
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(clip.read_bytes()[: clip.stat().st_size // 2])
    r = run("add", "--db", library, cut)
    line = one_error_line(r, cut)
    assert r.returncode == 1 and "Errno" not in line and "Invalid data" in line


def test_readme_python_snippet_runs_as_written(tmp_path):
    text = README.read_text()
    snippet = re.search(r"## Python API\s+```python\n(.*?)```", text, re.DOTALL).group(1)
    (tmp_path / "poster.jpg").write_bytes((DATA / "nature_flower.jpg").read_bytes())
    Image.open(DATA / "nature_flower.jpg").crop((10, 10, 400, 300)).save(tmp_path / "suspect.png")
    env = dict(os.environ, HOME=str(tmp_path))
    r = subprocess.run([sys.executable, "-c", snippet], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 0, r.stderr
    printed = r.stdout.splitlines()
    result = next(json.loads(x) for x in printed if x.startswith("{"))  # to_json(): a string
    assert result["matches"] and result["matches"][0]["title"] == "Poster"
    assert (tmp_path / "my-library" / "catalog.sqlite").exists()


def test_errors_survive_pickling_for_worker_processes():
    import pickle

    from copytrace.errors import MediaError, NotMediaError, UnknownWorkError

    for e in (MediaError("a.mp4", "truncated"), NotMediaError("b.txt", "not media"),
              UnknownWorkError("w1")):
        back = pickle.loads(pickle.dumps(e))
        assert type(back) is type(e) and str(back) == str(e)

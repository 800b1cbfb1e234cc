"""The hostile-input corpus in its bounded CI size (bench/hostile.py --ci, about 30 s on two
cores): every file one line naming it and the cause (or none, for non-media in a folder), no
hang, no traceback, peak memory under 1 GB, and `copytrace check` passes afterwards."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.mark.slow
def test_hostile_corpus_ci(tmp_path):
    r = subprocess.run([sys.executable, str(BENCH / "hostile.py"), "--ci", "--json",
                        "--out", str(tmp_path / "hostile")],
                       capture_output=True, text=True, timeout=600, check=False)
    summary = json.loads(r.stdout.splitlines()[-1])
    assert r.returncode == 0, summary["failures"]
    assert summary["files"] >= 300 and summary["kinds"] >= 40
    for key in ("hangs", "tracebacks", "wrong_exit_codes", "wrong_lines", "stray_lines",
                "over_memory"):
        assert summary[key] == 0, (key, summary["failures"])
    assert summary["max_rss_mb"] < 1024 and summary["check_ok"]
    kinds = set(summary["by_kind"])
    for kind in ("fifo", "socket", "symlink-loop", "png-header-bomb", "tiff-header-bomb",
                 "webp-header-bomb", "gif-header-bomb", "mp4-sample-table", "wav-header",
                 "zero-length", "past-path-max", "text"):
        assert kind in kinds

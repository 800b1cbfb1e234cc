"""The store survives kill -9 during add and concurrent writers (real subprocesses)."""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

import copytrace
from copytrace.store import Store
from tests.conftest import variants

CLI = [sys.executable, "-m", "copytrace"]


def _assert_consistent_and_findable(db, paths_by_id):
    conn = sqlite3.connect(os.path.join(db, "catalog.sqlite"))
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    n_works = conn.execute("SELECT COUNT(*) FROM works").fetchone()[0]
    n_rows = conn.execute("SELECT COUNT(DISTINCT work_id) FROM descriptors").fetchone()[0]
    conn.close()
    assert n_works == n_rows, "a work without descriptors (half-registered)"
    check = subprocess.run(CLI + ["check", "--db", db], capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stderr
    assert Store(db).check() == []
    with copytrace.open(db) as lib:
        ids = {w.work_id for w in lib.works()}
        assert set(paths_by_id) <= ids
        for work_id, path in paths_by_id.items():
            top = lib.query(path, top_k=1, min_score=0).matches[0]
            assert top.work_id == work_id and top.similarity > 0.99
    return ids


def test_kill_during_add_loses_nothing_reported(tmp_path, photo_paths):
    files = variants(photo_paths, tmp_path / "in", 80)
    db = str(tmp_path / "db")
    proc = subprocess.Popen(CLI + ["add", "--db", db, str(tmp_path / "in")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    reported = {}
    deadline = time.monotonic() + 120
    while len(reported) < 12 and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        work_id, _state, path = line.rstrip("\n").split("\t")
        reported[work_id] = path
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert 12 <= len(reported) < len(files), "the kill must land in the middle of the add"
    ids = _assert_consistent_and_findable(db, reported)
    # Re-running the add finishes the job without duplicates.
    subprocess.run(CLI + ["add", "--db", db, str(tmp_path / "in")], check=True,
                   capture_output=True)
    with copytrace.open(db) as lib:
        assert len(lib.works()) == len(files) and ids <= {w.work_id for w in lib.works()}


def test_concurrent_writers(tmp_path, photo_paths):
    files = variants(photo_paths, tmp_path / "in", 40)
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    for i, f in enumerate(files):  # overlapping halves: files 15..24 are added by both
        if i < 25:
            os.link(f, a / f.name)
        if i >= 15:
            os.link(f, b / f.name)
    db = str(tmp_path / "db")
    procs = [subprocess.Popen(CLI + ["add", "--db", db, str(d)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for d in (a, b)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1] for o in outs]
    reported = {}
    for out, _ in outs:
        for line in out.splitlines():
            work_id, _, path = line.split("\t")
            reported[work_id] = path
    assert len(reported) == len(files)
    ids = _assert_consistent_and_findable(db, reported)
    assert len(ids) == len(files)

"""The CLI's contract: exit codes, one error line per bad file naming it, JSON lines."""
from __future__ import annotations

import json
import subprocess
import sys

CLI = [sys.executable, "-m", "copytrace"]


def run(*args, env=None):
    return subprocess.run(CLI + list(args), capture_output=True, text=True, env=env, check=False)


def test_add_query_list_show_remove(tmp_path, photo_paths):
    db = str(tmp_path / "db")
    bad = tmp_path / "notes.jpg"
    bad.write_text("not an image")
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    r = run("add", "--db", db, str(photo_paths[0]), str(bad), str(empty), str(photo_paths[1]))
    assert r.returncode == 1
    errors = r.stderr.strip().splitlines()
    assert len(errors) == 2 and "notes.jpg" in errors[0] and "empty.png" in errors[1]
    ids = [line.split("\t")[0] for line in r.stdout.splitlines()]
    assert len(ids) == 2

    r = run("query", "--db", db, "--json", "--min-score", "0", "--top-k", "2", str(photo_paths[0]))
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert next(m["work_id"] for m in res["matches"]) == ids[0] and len(res["matches"]) == 2

    r = run("list", "--db", db, "--json")
    assert {json.loads(line)["work_id"] for line in r.stdout.splitlines()} == set(ids)
    assert json.loads(run("show", "--db", db, ids[1]).stdout)["work_id"] == ids[1]
    r = run("show", "--db", db, "0000")
    assert r.returncode == 1 and "0000" in r.stderr
    assert run("remove", "--db", db, ids[1]).returncode == 0
    assert len(run("list", "--db", db).stdout.splitlines()) == 1


def test_usage_errors_exit_2(tmp_path):
    assert run("query").returncode == 2
    assert run("query", "--top-k", "0", "x.jpg").returncode == 2
    assert run("frobnicate").returncode == 2


def test_bench_runs_the_checkouts_scripts():
    listed = run("bench", "list")
    assert listed.returncode == 0 and "audio" in listed.stdout.split()
    usage = run("bench", "audio", "--help")  # the script's own options, passed through
    assert usage.returncode == 0 and "--per-cell" in usage.stdout
    unknown = run("bench", "nope")
    assert unknown.returncode == 2 and "'nope'" in unknown.stderr and "audio" in unknown.stderr


def test_db_from_environment(tmp_path, photo_paths):
    import os

    env = dict(os.environ, COPYTRACE_DB=str(tmp_path / "envdb"))
    assert run("add", str(photo_paths[0]), env=env).returncode == 0
    assert (tmp_path / "envdb" / "catalog.sqlite").exists()

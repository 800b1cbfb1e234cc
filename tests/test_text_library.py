"""Text end to end (issue 21): `copytrace add novel.txt`, `copytrace query repost.html --json`,
the Python API and the HTTP API, with offsets that point into the files as written."""
from __future__ import annotations

import html
import json
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("opencc")

import copytrace
from copytrace.config import EngineConfig
from copytrace.errors import NotMediaError
from tests.test_text import POEMS, VERSES, _filler


def _novel() -> str:
    """A 'novel': poems and verses among unrelated text, several thousand characters."""
    return (_filler(30, 1500) + "\n\n" + POEMS + "\n\n" + _filler(31, 1500) + "\n\n" + VERSES
            + "\n\n" + _filler(32, 1500))


def _repost(novel: str) -> tuple[str, int, int, int, int]:
    """An HTML page re-posting a passage of the novel in Traditional script; returns the page
    and (page start, page end, novel start, novel end) of the copy."""
    import opencc

    a = novel.index(POEMS) + 24
    b = a + 120
    trad = opencc.OpenCC("s2t").convert(novel[a:b])
    head = "<!DOCTYPE html><html><head><title>轉載</title></head><body><p>今天天氣很好 &amp; 晴。</p><p>"
    page = head + html.escape(trad) + "</p><p>" + _filler(33, 300) + "</p></body></html>"
    return page, len(head), len(head) + len(trad), a, b


def test_python_api_add_and_query_text(tmp_path):
    novel = _novel()
    (tmp_path / "novel.txt").write_text(novel, encoding="gb18030")
    page, qs, qe, rs, re_ = _repost(novel)
    (tmp_path / "repost.html").write_text(page, encoding="utf-8")
    cfg = EngineConfig(signals=("visual", "audio", "text"))
    with copytrace.open(str(tmp_path / "db"), cfg) as lib:
        work = lib.add(str(tmp_path / "novel.txt")).work
        assert work.media_type == "text"
        res = lib.query(str(tmp_path / "repost.html"))
        assert [m.work_id for m in res.matches] == [work.work_id]
        m = res.matches[0]
        assert m.signal == "text" and m.score >= 0.5
        seg = m.segments[0]
        assert (seg.query_start_char, seg.query_end_char) == (qs, qe)
        assert (seg.ref_start_char, seg.ref_end_char) == (rs, re_)
        # unrelated text matches nothing
        (tmp_path / "other.txt").write_text(_filler(40, 3000), encoding="utf-8")
        assert lib.query(str(tmp_path / "other.txt")).matches == ()
        # reopening the library finds it through the saved index
    with copytrace.open(str(tmp_path / "db"), cfg) as lib:
        again = lib.query(str(tmp_path / "repost.html")).matches[0].segments[0]
        assert again == seg
        lib.remove(work.work_id)
        assert lib.query(str(tmp_path / "repost.html")).matches == ()


def test_too_short_text_is_refused_naming_the_file(tmp_path):
    (tmp_path / "tiny.txt").write_text("three words only", encoding="utf-8")
    cfg = EngineConfig(signals=("visual", "audio", "text"))
    with copytrace.open(str(tmp_path / "db"), cfg) as lib, pytest.raises(
            NotMediaError, match="tiny.txt: plain text too short"):
        lib.add(str(tmp_path / "tiny.txt"))


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "copytrace", *args], capture_output=True,
                          text=True, check=False)


def test_cli_add_novel_and_query_repost_json(tmp_path):
    novel = _novel()
    (tmp_path / "novel.txt").write_text(novel, encoding="utf-8")
    page, qs, qe, rs, re_ = _repost(novel)
    (tmp_path / "repost.html").write_text(page, encoding="utf-8")
    db = str(tmp_path / "db")
    r = _cli("add", "--db", db, str(tmp_path / "novel.txt"))
    assert r.returncode == 0, r.stderr
    r = _cli("query", "--db", db, "--json", str(tmp_path / "repost.html"))
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    seg = res["matches"][0]["segments"][0]
    assert res["matches"][0]["signal"] == "text"
    assert (seg["query_start_char"], seg["query_end_char"]) == (qs, qe)
    assert (seg["ref_start_char"], seg["ref_end_char"]) == (rs, re_)
    r = _cli("query", "--db", db, str(tmp_path / "repost.html"))  # readable: side by side
    assert r.returncode == 0, r.stderr
    assert f"chars {qs}–{qe}" in r.stdout and "reference" in r.stdout


def test_http_api_registers_and_queries_text(tmp_path):
    pytest.importorskip("fastapi")
    from copytrace.server.app import ServerConfig
    from tests.test_server import Server, _keys

    novel = _novel()
    page, qs, qe, rs, re_ = _repost(novel)
    root = tmp_path / "db"
    srv = Server(root, ServerConfig(max_upload_mb=4, job_above_s=60.0), _keys(root))
    try:
        status, work, _ = srv.call("POST", "/api/works?filename=novel.txt&title=Novel",
                                   novel.encode("utf-8"), key="register")
        assert status == 201, work
        status, res, _ = srv.call("POST", "/api/query?filename=repost.html",
                                  page.encode("utf-8"), key="query")
        assert status == 200, res
        m = res["matches"][0]
        assert m["work_id"] == work["work_id"] and m["signal"] == "text"
        seg = m["segments"][0]
        assert [seg[k] for k in ("query_start_char", "query_end_char", "ref_start_char",
                                 "ref_end_char")] == [qs, qe, rs, re_]
    finally:
        srv.close()


def test_index_file_is_rebuilt_when_the_catalogue_moves(tmp_path):
    novel = _novel()
    (tmp_path / "a.txt").write_text(novel, encoding="utf-8")
    (tmp_path / "b.txt").write_text(VERSES + " " + _filler(41, 800), encoding="utf-8")
    cfg = EngineConfig(signals=("text",))
    with copytrace.open(str(tmp_path / "db"), cfg) as lib:
        lib.add(str(tmp_path / "a.txt"))
        n1 = len(lib.signal("text").postings())
        lib.add(str(tmp_path / "b.txt"))
        n2 = len(lib.signal("text").postings())
        assert n2 > n1
        assert np.all(np.diff(lib.signal("text").postings().hashes) >= 0)


def test_text_through_add_descriptors_registers_as_add_does(tmp_path):
    """Descriptors described here and registered through add_descriptors (as Ray ingestion
    does) give the work `add` gives: no duration (a text's positions are characters)."""
    (tmp_path / "novel.txt").write_text(_novel(), encoding="utf-8")
    with copytrace.open(str(tmp_path / "a")) as lib:
        added = lib.add(str(tmp_path / "novel.txt")).work
    with copytrace.open(str(tmp_path / "b")) as lib:
        descs, _ = lib.describe(str(tmp_path / "novel.txt"), "text")
        work = lib.add_descriptors(descs, "novel", media_type="text", sha256=added.sha256,
                                   path=str(tmp_path / "novel.txt")).work
    assert added.duration_s is None and work.duration_s is None

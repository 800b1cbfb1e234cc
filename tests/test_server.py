"""The HTTP service over a real library: register, query, list, remove, bad uploads."""
from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request

import pytest

import copytrace
from copytrace.server.app import CopytraceServer


@pytest.fixture()
def server(tmp_path):
    lib = copytrace.open(str(tmp_path / "db"))
    srv = CopytraceServer(("127.0.0.1", 0), lib)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_port}"
    srv.shutdown()
    srv.server_close()
    lib.close()


def call(method, url, body=None):
    req = urllib.request.Request(url, data=body, method=method)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_register_query_remove(server, photo_paths):
    status, work = call("POST", f"{server}/api/works?filename=a.jpg&title=A",
                        photo_paths[0].read_bytes())
    assert status == 201 and work["title"] == "A"
    status, again = call("POST", f"{server}/api/works?filename=b.jpg", photo_paths[0].read_bytes())
    assert status == 200 and again["work_id"] == work["work_id"] and not again["created"]
    status, res = call("POST", f"{server}/api/query?filename=q.jpg", photo_paths[0].read_bytes())
    assert status == 200 and res["matches"][0]["work_id"] == work["work_id"]
    assert res["query"]["path"] == "q.jpg"
    status, works = call("GET", f"{server}/api/works")
    assert [w["work_id"] for w in works] == [work["work_id"]]
    assert call("DELETE", f"{server}/api/works/{work['work_id']}")[0] == 200
    assert call("GET", f"{server}/api/works/{work['work_id']}")[0] == 404


def test_bad_uploads(server):
    status, err = call("POST", f"{server}/api/query?filename=notes.jpg", b"plain text here")
    assert status == 422 and "notes.jpg" in err["error"]
    assert call("POST", f"{server}/api/query?filename=x.jpg", b"")[0] == 400
    with urllib.request.urlopen(server + "/", timeout=10) as r:
        assert b"copytrace" in r.read()

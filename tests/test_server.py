"""The HTTP service over a real library and a real uvicorn on loopback: keys and scopes, uploads
(raw, multipart, chunked, over the limit), validation, pagination, jobs, no temporary file left.
"""
from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
import wave
from pathlib import Path

import numpy as np
import pytest

import copytrace
from copytrace.server.app import CopytraceServer, ServerConfig, wait_until_up
from copytrace.server.keys import KeyStore

DATA = Path(__file__).parent / "data"


class Server:
    def __init__(self, root: Path, config: ServerConfig, keys: dict[str, str]) -> None:
        self.root = root
        self.lib = copytrace.open(str(root))
        self.srv = CopytraceServer(("127.0.0.1", 0), self.lib, config)
        self.thread = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.srv.server_port}"
        self.keys = keys
        wait_until_up(self.url)

    def close(self) -> None:
        self.srv.shutdown()
        self.thread.join(30)
        self.srv.server_close()
        self.lib.close()

    def call(self, method: str, path: str, body: bytes | None = None, key: str | None = "admin",
             headers: dict | None = None) -> tuple[int, object, dict]:
        h = dict(headers or {})
        if key is not None:
            h["Authorization"] = f"Bearer {self.keys.get(key, key)}"
        req = urllib.request.Request(self.url + path, data=body, method=method, headers=h)
        try:
            with urllib.request.urlopen(req, timeout=120) as r:
                raw, status, hdrs = r.read(), r.status, dict(r.headers)
        except urllib.error.HTTPError as e:
            raw, status, hdrs = e.read(), e.code, dict(e.headers)
        ctype = hdrs.get("content-type", "")
        return status, (json.loads(raw) if "json" in ctype and raw else raw), hdrs


def _keys(root: Path) -> dict[str, str]:
    root.mkdir(parents=True, exist_ok=True)
    copytrace.open(str(root)).close()
    ks = KeyStore(root)
    out = {scope: ks.add(f"test-{scope}", scope)[1] for scope in ("query", "register", "admin")}
    out["slow"] = ks.add("rate-limited", "query", rate_per_min=3)[1]
    ks.close()
    return out


@pytest.fixture()
def server(tmp_path):
    root = tmp_path / "db"
    s = Server(root, ServerConfig(max_upload_mb=1, job_above_s=60.0), _keys(root))
    yield s
    s.close()


def multipart(name: str, data: bytes, fields: dict[str, str] | None = None) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
             for k, v in (fields or {}).items()]
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
                 f'filename="{name}"\r\nContent-Type: application/octet-stream\r\n\r\n'.encode()
                 + data + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def leftovers(root: Path) -> list[str]:
    """Files in uploads/ that no registered work owns, and anything in uploads/.tmp."""
    lib = copytrace.open(str(root))
    owned = {w.path for w in lib.works()}
    lib.close()
    up = root / "uploads"
    return sorted(str(p.relative_to(up)) for p in up.rglob("*")
                  if p.is_file() and str(p.resolve()) not in owned)


def test_register_query_list_remove(server, photo_paths):
    status, work, _ = server.call("POST", "/api/works?filename=a.jpg&title=A",
                                  photo_paths[0].read_bytes(), key="register")
    assert status == 201 and work["title"] == "A" and work["created"]
    body, ctype = multipart("b.jpg", photo_paths[0].read_bytes())
    status, again, _ = server.call("POST", "/api/works", body, key="register",
                                   headers={"Content-Type": ctype})
    assert status == 200 and again["work_id"] == work["work_id"] and not again["created"]
    body, ctype = multipart("second.jpg", photo_paths[1].read_bytes(), {"title": "Second"})
    status, second, _ = server.call("POST", "/api/works", body, key="admin",
                                    headers={"Content-Type": ctype})
    assert status == 201 and second["title"] == "Second"
    status, res, _ = server.call("POST", "/api/query?filename=q.jpg", photo_paths[0].read_bytes(),
                                 key="query")
    assert status == 200 and res["matches"][0]["work_id"] == work["work_id"]
    assert res["query"]["path"] == "q.jpg"
    status, page, _ = server.call("GET", "/api/works?limit=1", key="query")
    assert status == 200 and page["total"] == 2 and page["next_offset"] == 1
    assert [w["work_id"] for w in page["works"]] == [work["work_id"]]
    status, page2, _ = server.call("GET", "/api/works?limit=1&offset=1", key="query")
    assert [w["work_id"] for w in page2["works"]] == [second["work_id"]]
    assert page2["next_offset"] is None
    status, raw, _ = server.call("GET", f"/api/works/{work['work_id']}/file", key="query")
    assert status == 200 and raw == photo_paths[0].read_bytes()
    kept = Path(server.call("GET", f"/api/works/{work['work_id']}", key="query")[1]["path"])
    assert kept.parent == server.root / "uploads" and kept.is_file()
    assert server.call("DELETE", f"/api/works/{work['work_id']}", key="admin")[0] == 200
    assert not kept.exists()  # the service's copy goes with the work
    assert server.call("GET", f"/api/works/{work['work_id']}", key="query")[0] == 404
    assert server.call("DELETE", f"/api/works/{work['work_id']}", key="admin")[0] == 404
    assert leftovers(server.root) == []


def test_keys_scopes_and_rate_limit(server, photo_paths):
    img = photo_paths[0].read_bytes()
    status, err, hdrs = server.call("GET", "/api/works", key=None)
    assert status == 401 and "Bearer" in err["error"] and hdrs["www-authenticate"] == "Bearer"
    assert server.call("GET", "/api/works", key="ct_nope_nope")[0] == 401
    status, err, _ = server.call("POST", "/api/works?filename=a.jpg", img, key="query")
    assert status == 403 and "'register'" in err["error"]
    assert server.call("DELETE", "/api/works/abc", key="register")[0] == 403
    assert server.call("GET", "/api/keys", key="register")[0] == 403
    assert server.call("GET", "/api/health", key=None)[0] == 200  # for load balancers
    # Keys over HTTP (admin): create, use, revoke.
    status, made, _ = server.call("POST", "/api/keys?name=ops&scope=query", b"", key="admin")
    assert status == 201 and made["key"].startswith("ct_")
    assert server.call("GET", "/api/works", key=made["key"])[0] == 200
    assert server.call("DELETE", f"/api/keys/{made['key_id']}", key="admin")[0] == 200
    assert server.call("GET", "/api/works", key=made["key"])[0] == 401
    # A key with its own limit: 3 a minute, the fourth waits.
    codes = [server.call("GET", "/api/works", key="slow")[0] for _ in range(3)]
    status, err, hdrs = server.call("GET", "/api/works", key="slow")
    assert codes == [200, 200, 200] and status == 429 and int(hdrs["retry-after"]) >= 1
    assert server.call("GET", "/api/works", key="query")[0] == 200  # others are not held up
    assert leftovers(server.root) == []


def test_keys_are_stored_hashed_and_the_cli_prints_the_key_last(tmp_path):
    db = tmp_path / "db"

    def run(*a):
        return subprocess.run([sys.executable, "-m", "copytrace", *a, "--db", str(db)],
                              check=False, capture_output=True, text=True, timeout=120)

    assert run("keys", "list").returncode == 2  # no library there
    copytrace.open(str(db)).close()
    r = run("keys", "add", "uploader", "--scope", "register")
    assert r.returncode == 0, r.stderr
    secret = r.stdout.split()[-1]
    assert secret.startswith("ct_")
    assert oct((db / "keys.sqlite").stat().st_mode & 0o777) == "0o600"
    assert secret.encode() not in (db / "keys.sqlite").read_bytes()
    ks = KeyStore(db)
    assert ks.lookup(secret).scope == "register" and ks.lookup(secret + "x") is None
    ks.close()
    listed = run("keys", "list")
    assert "uploader" in listed.stdout and "register" in listed.stdout and secret not in listed.stdout
    key_id = secret.split("_")[1]
    assert run("keys", "revoke", key_id).returncode == 0
    assert "revoked" in run("keys", "list").stdout
    assert run("keys", "revoke", "nobody").returncode == 1
    assert run("keys", "add", "x", "--scope", "root").returncode == 2


def test_serving_without_keys_needs_no_auth_on_loopback(tmp_path):
    lib = copytrace.open(str(tmp_path / "db"))
    try:
        with pytest.raises(ValueError, match="no API keys"):
            CopytraceServer(("127.0.0.1", 0), lib, ServerConfig())
        with pytest.raises(ValueError, match="loopback"):
            ServerConfig(host="0.0.0.0", no_auth=True)
        with pytest.raises(ValueError, match="wildcard"):
            ServerConfig(cors_origins=("*",))
    finally:
        lib.close()
    r = subprocess.run([sys.executable, "-m", "copytrace", "serve", "--db", str(tmp_path / "db"),
                        "--host", "0.0.0.0", "--port", "0", "--no-auth"],
                       check=False, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "loopback" in r.stderr
    r = subprocess.run([sys.executable, "-m", "copytrace", "serve", "--db", str(tmp_path / "db"),
                        "--port", "0"], check=False, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 2 and "keys add" in r.stderr


def test_no_auth_server_refuses_cross_origin_and_foreign_hosts(tmp_path, photo_paths):
    s = Server(tmp_path / "db", ServerConfig(no_auth=True), {})
    try:
        assert s.call("GET", "/api/works", key=None)[0] == 200
        # A page elsewhere posting text/plain (no preflight) must not register anything.
        status, err, _ = s.call("POST", "/api/works?filename=a.jpg", photo_paths[0].read_bytes(),
                                key=None, headers={"Origin": "http://evil.example",
                                                   "Content-Type": "text/plain"})
        assert status == 403 and "cross-origin" in err["error"]
        assert s.call("GET", "/api/works", key=None)[1]["total"] == 0
        # DNS rebinding: a foreign name resolving to 127.0.0.1.
        assert s.call("GET", "/api/works", key=None, headers={"Host": "evil.example"})[0] == 403
        status, _, hdrs = s.call("GET", "/api/health", key=None,
                                 headers={"Origin": s.url})  # the page itself
        assert status == 200 and "access-control-allow-origin" not in hdrs
    finally:
        s.close()
    allowed = "https://app.example.com"
    root = tmp_path / "db2"
    s = Server(root, ServerConfig(cors_origins=(allowed,)), _keys(root))
    try:
        status, _, hdrs = s.call("GET", "/api/works", headers={"Origin": allowed})
        assert status == 200 and hdrs["access-control-allow-origin"] == allowed
        assert s.call("GET", "/api/works", headers={"Origin": "https://other.example"})[0] == 403
    finally:
        s.close()


def test_validation_answers_422_with_the_parameter(server, photo_paths):
    img = photo_paths[0].read_bytes()
    for query, name in (("top_k=abc", "top_k"), ("top_k=0", "top_k"), ("min_score=2", "min_score"),
                        ("mode=later", "mode"), ("evidence=maybe", "evidence")):
        status, err, _ = server.call("POST", f"/api/query?filename=q.jpg&{query}", img, key="query")
        assert status == 422 and err["error"].startswith(name), (query, err)
        assert "Traceback" not in err["error"] and "ValueError" not in err["error"]
    status, err, _ = server.call("GET", "/api/works?limit=-1", key="query")
    assert status == 422 and "limit" in err["error"]
    status, err, _ = server.call("POST", "/api/query?filename=notes.jpg", b"plain text here",
                                 key="query")
    assert status == 422 and "notes.jpg" in err["error"]
    status, err, _ = server.call("POST", "/api/works?filename=notes.jpg", b"plain text here",
                                 key="register")
    assert status == 422 and "notes.jpg" in err["error"]
    assert server.call("POST", "/api/query?filename=x.jpg", b"", key="query")[0] == 400
    body, ctype = multipart("x.jpg", b"")
    assert server.call("POST", "/api/query", body[:40], key="query",
                       headers={"Content-Type": ctype})[0] == 400
    status, page, _ = server.call("GET", "/", key=None)
    assert status == 200 and b"copytrace" in page
    status, spec, _ = server.call("GET", "/openapi.json", key=None)
    assert status == 200 and "/api/query" in spec["paths"] and "/api/jobs/{job_id}" in spec["paths"]
    assert "multipart/form-data" in spec["paths"]["/api/works"]["post"]["requestBody"]["content"]
    assert server.call("GET", "/docs", key=None)[0] == 200
    assert leftovers(server.root) == []


def _post(url: str, path: str, key: str, body: bytes, ctype: str | None = None,
          chunked: bool = False) -> tuple[int, dict]:
    """POST that reads the answer even when the server answers (413) and hangs up before
    the body is sent (urllib raises instead)."""
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        conn.putrequest("POST", path)
        conn.putheader("Authorization", f"Bearer {key}")
        if ctype:
            conn.putheader("Content-Type", ctype)
        if chunked:
            conn.putheader("Transfer-Encoding", "chunked")
        else:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders()
        try:
            for i in range(0, len(body), 65536):
                c = body[i:i + 65536]
                conn.send(f"{len(c):x}\r\n".encode() + c + b"\r\n" if chunked else c)
            if chunked:
                conn.send(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed: read that answer
        r = conn.getresponse()
        return r.status, json.loads(r.read() or b"null")
    finally:
        conn.close()


def test_uploads_over_the_limit_get_413_and_leave_nothing(server, photo_paths):
    big = os.urandom(1024 * 1024 + 10)
    status, err = _post(server.url, "/api/query?filename=big.jpg", server.keys["query"], big)
    assert status == 413 and "1 MB" in err["error"]
    body, ctype = multipart("big.jpg", big)
    assert _post(server.url, "/api/works", server.keys["register"], body, ctype)[0] == 413
    # No Content-Length: refused once the streamed bytes pass the limit.
    for ct in (None, ctype):
        assert _post(server.url, "/api/works?filename=big.jpg", server.keys["register"],
                     body if ct else big, ct, chunked=True)[0] == 413
    # A client that hangs up mid-upload.
    host, port = server.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.putrequest("POST", "/api/query?filename=cut.jpg")
    conn.putheader("Authorization", f"Bearer {server.keys['query']}")
    conn.putheader("Content-Length", "500000")
    conn.endheaders()
    conn.send(photo_paths[0].read_bytes()[:20000])
    conn.close()
    time.sleep(0.5)
    assert server.call("GET", "/api/health", key=None)[0] == 200
    assert leftovers(server.root) == []
    assert list((server.root / "uploads").rglob("*.jpg")) == []


def write_wav(path: Path, seconds: float, rate: int = 8000) -> Path:
    """Real music (the test tracks) repeated to ``seconds``: a long upload."""
    from copytrace.media.audio import iter_audio

    x = np.concatenate([s for _, s in iter_audio(DATA / "music_beast.ogg", rate)] +
                       [s for _, s in iter_audio(DATA / "music_brainsukker.ogg", rate)])
    n = int(seconds * rate)
    y = np.tile(x, n // len(x) + 1)[:n]
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.clip(y, -1, 1) * 32767).astype("<i2").tobytes())
    return path


@pytest.mark.slow
def test_long_upload_is_a_job_and_listings_stay_fast(tmp_path, photo_paths):
    root = tmp_path / "db"
    s = Server(root, ServerConfig(max_upload_mb=64, job_above_s=30.0), _keys(root))
    try:
        assert s.call("POST", "/api/works?filename=a.jpg", photo_paths[0].read_bytes())[0] == 201
        long_wav = write_wav(tmp_path / "long.wav", 900.0)
        status, job, hdrs = s.call("POST", "/api/query?filename=long.wav", long_wav.read_bytes(),
                                   key="query")
        assert status == 202 and hdrs["location"] == f"/api/jobs/{job['job_id']}"
        # Someone else's job is not yours to read.
        assert s.call("GET", f"/api/jobs/{job['job_id']}", key="slow")[0] == 404
        seen, latencies = set(), []
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            state = s.call("GET", f"/api/jobs/{job['job_id']}", key="query")[1]
            seen.add(state["state"])
            if state["state"] in ("done", "failed"):
                break
            if state["state"] == "running":
                t0 = time.perf_counter()
                status, page, _ = s.call("GET", "/api/works", key="query")
                latencies.append(time.perf_counter() - t0)
                assert status == 200 and page["total"] == 1
                # A short query is not queued behind the long one either.
                t0 = time.perf_counter()
                assert s.call("POST", "/api/query?filename=q.jpg", photo_paths[0].read_bytes(),
                              key="query")[0] == 200
            time.sleep(0.05)
        assert state["state"] == "done", state
        assert state["status"] == 200 and state["progress"] == 1.0
        assert state["result"]["query"]["path"] == "long.wav"
        assert state["result"]["query"]["duration_s"] == pytest.approx(900.0, abs=1.0)
        assert "running" in seen and len(latencies) >= 3, (seen, latencies)
        # Not queued behind the job (which runs for many seconds): the numbers a user reads
        # are bench/long_media.py --serve's; a test only tells waiting from not waiting.
        assert sorted(latencies)[len(latencies) // 2] < 0.2 and max(latencies) < 2.0, latencies
        print(f"listing during a long job: n={len(latencies)} max={max(latencies) * 1000:.1f} ms "
              f"median={sorted(latencies)[len(latencies) // 2] * 1000:.1f} ms")
        # mode=sync makes the client wait instead; mode=job makes even an image a job.
        status, job2, _ = s.call("POST", "/api/query?filename=q.jpg&mode=job",
                                 photo_paths[0].read_bytes(), key="query")
        assert status == 202
        for _ in range(200):
            j = s.call("GET", f"/api/jobs/{job2['job_id']}", key="query")[1]
            if j["state"] == "done":
                break
            time.sleep(0.1)
        assert j["result"]["matches"][0]["title"] == "a"  # the uploaded name, not the stored one
        assert s.call("GET", "/api/jobs/" + "0" * 32, key="query")[0] == 404
        assert s.call("GET", "/api/jobs/nope", key="query")[0] == 422
        assert leftovers(root) == []
    finally:
        s.close()


@pytest.mark.slow
def test_jobs_of_a_killed_server_are_reported_failed(tmp_path, photo_paths):
    root = tmp_path / "db"
    keys = _keys(root)

    def start():
        p = subprocess.Popen([sys.executable, "-m", "copytrace", "serve", "--db", str(root),
                              "--port", "0", "--job-above-s", "5"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = p.stdout.readline()
        url = line.split(" on ")[1].split()[0].rstrip("/")
        wait_until_up(url)
        return p, url

    p, url = start()
    try:
        long_wav = write_wav(tmp_path / "long.wav", 900.0)
        req = urllib.request.Request(url + "/api/query?filename=long.wav", data=long_wav.read_bytes(),
                                     method="POST", headers={"Authorization": f"Bearer {keys['query']}"})
        with urllib.request.urlopen(req, timeout=60) as r:
            assert r.status == 202
            job_id = json.loads(r.read())["job_id"]
    finally:
        p.send_signal(signal.SIGKILL)
        p.wait(30)
    assert list((root / "uploads" / ".tmp").iterdir())  # the killed job's upload is still there
    p, url = start()
    try:
        req = urllib.request.Request(url + f"/api/jobs/{job_id}",
                                     headers={"Authorization": f"Bearer {keys['query']}"})
        with urllib.request.urlopen(req, timeout=30) as r:
            job = json.loads(r.read())
        assert job["state"] == "failed" and "stopped before this job finished" in job["error"]
        assert list((root / "uploads" / ".tmp").iterdir()) == []
    finally:
        p.send_signal(signal.SIGINT)
        p.wait(30)


def test_keep_alive_requests_do_not_wait_for_delayed_acks(server):
    """One connection, many requests (what clients and the load bench do): each answers in
    milliseconds, not the 40 ms a delayed ACK costs when Nagle holds the response's body."""
    host, port = server.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    times = []
    try:
        for _ in range(20):
            t0 = time.perf_counter()
            conn.request("GET", "/api/works?limit=10",
                         headers={"Authorization": f"Bearer {server.keys['admin']}"})
            r = conn.getresponse()
            assert r.status == 200 and json.loads(r.read())["total"] == 0
            times.append(time.perf_counter() - t0)
    finally:
        conn.close()
    assert sorted(times)[len(times) // 2] < 0.02, times


def multipart_files(files: list[tuple[str, bytes]]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = b"".join(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
                    f'filename="{n}"\r\n\r\n'.encode() + d + b"\r\n" for n, d in files)
    return body + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def test_batch_query_is_one_job_with_a_result_per_file(server, photo_paths):
    assert server.call("POST", "/api/works?filename=a.jpg&title=A",
                       photo_paths[0].read_bytes())[0] == 201
    body, ctype = multipart_files([("copy.jpg", photo_paths[0].read_bytes()),
                                   ("other.jpg", photo_paths[-1].read_bytes()),
                                   ("notes.txt", b"not a picture at all")])
    status, job, _ = server.call("POST", "/api/query/batch?top_k=3", body, key="query",
                                 headers={"Content-Type": ctype})
    assert status == 202
    for _ in range(300):
        j = server.call("GET", f"/api/jobs/{job['job_id']}", key="query")[1]
        if j["state"] in ("done", "failed"):
            break
        time.sleep(0.1)
    assert j["state"] == "done" and j["progress"] == 1.0
    res = j["result"]["results"]
    assert [r["filename"] for r in res] == ["copy.jpg", "other.jpg", "notes.txt"]
    assert [r["status"] for r in res] == [200, 200, 422]
    assert res[0]["result"]["matches"][0]["title"] == "A"
    assert res[1]["result"]["matches"] == [] and "notes.txt" in res[2]["error"]
    # The limit is for the whole body; raw bodies are not a batch.
    half = os.urandom(600 * 1024)
    body, ctype = multipart_files([("x.jpg", half), ("y.jpg", half)])
    assert _post(server.url, "/api/query/batch", server.keys["query"], body, ctype,
                 chunked=True)[0] == 413
    assert server.call("POST", "/api/query/batch", b"raw", key="query")[0] == 415
    assert leftovers(server.root) == []


def test_a_request_that_runs_long_continues_as_a_job(tmp_path, photo_paths):
    from copytrace.server.jobs import JobStore

    root = tmp_path / "db"
    # The first query of a fresh worker loads the models: well over 50 ms.
    s = Server(root, ServerConfig(sync_wait_s=0.05), _keys(root))
    try:
        status, job, hdrs = s.call("POST", "/api/works?filename=a.jpg&title=A",
                                   photo_paths[0].read_bytes(), key="register")
        assert status == 202 and hdrs["location"] == f"/api/jobs/{job['job_id']}"
        for _ in range(300):
            j = s.call("GET", f"/api/jobs/{job['job_id']}", key="register")[1]
            if j["state"] in ("done", "failed"):
                break
            time.sleep(0.1)
        assert j["state"] == "done" and j["status"] == 201 and j["result"]["title"] == "A"
        assert s.call("GET", "/api/works", key="query")[1]["total"] == 1
        # mode=sync waits however long it takes.
        status, res, _ = s.call("POST", "/api/query?filename=q.jpg&mode=sync",
                                photo_paths[1].read_bytes(), key="query")
        assert status == 200 and "matches" in res
        assert leftovers(root) == []
    finally:
        s.close()
    jobs = JobStore(root)
    try:
        assert jobs.prune(3600.0) == 0 and jobs.get(job["job_id"]) is not None
        assert jobs.prune(0.0) == 1 and jobs.get(job["job_id"]) is None  # finished: dropped
    finally:
        jobs.close()

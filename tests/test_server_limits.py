"""The service's per-request time limit on a real `copytrace serve` process: a request past
``--request-timeout-s`` is stopped and answered 504 (a job: failed, status 504), leaves no
temporary file and no half-registered work, and the worker is free for the next request."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

import copytrace

pytest.importorskip("fastapi")

from copytrace.server.app import wait_until_up
from tests.test_server import _keys, leftovers, write_wav


def call(url: str, method: str, path: str, key: str, body: bytes | None = None):
    req = urllib.request.Request(url + path, data=body, method=method,
                                 headers={"Authorization": f"Bearer {key}"})
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


@pytest.fixture()
def limited(tmp_path):
    """A server whose requests may run 0.5 s, answering every request synchronously."""
    root = tmp_path / "db"
    keys = _keys(root)
    p = subprocess.Popen([sys.executable, "-m", "copytrace", "serve", "--db", str(root),
                          "--port", "0", "--request-timeout-s", "0.5", "--job-above-s", "3600",
                          "--sync-wait-s", "600", "--max-upload-mb", "64"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    assert " on " in line, line + p.stderr.read()
    url = line.split(" on ")[1].split()[0].rstrip("/")
    wait_until_up(url)
    yield root, url, keys
    p.send_signal(signal.SIGINT)
    p.wait(30)


def test_a_request_past_the_time_limit_is_stopped_and_leaves_nothing(limited, tmp_path,
                                                                      photo_paths):
    root, url, keys = limited
    # 20 minutes of music: describing it takes several seconds on any machine
    long_wav = write_wav(tmp_path / "long.wav", 1200.0).read_bytes()
    t0 = time.monotonic()
    status, body = call(url, "POST", "/api/query?filename=long.wav&mode=sync", keys["query"],
                        long_wav)
    took = time.monotonic() - t0
    assert status == 504, body
    assert body["error"].startswith("long.wav: stopped after the time limit of 0.5 s")
    assert "--request-timeout-s" in body["error"]
    assert took < 15.0  # stopped at the limit, not after describing 20 minutes
    # a registration past the limit keeps nothing: no work, no file in uploads/
    status, body = call(url, "POST", "/api/works?filename=long.wav&mode=sync", keys["register"],
                        long_wav)
    assert status == 504 and "decoding audio" in body["error"], body
    assert call(url, "GET", "/api/works", keys["query"])[1]["total"] == 0
    # as a job: failed, with the reason and the status the request would have had
    status, job = call(url, "POST", "/api/query?filename=long.wav&mode=job", keys["query"],
                       long_wav)
    assert status == 202
    for _ in range(300):
        job = call(url, "GET", f"/api/jobs/{job['job_id']}", keys["query"])[1]
        if job["state"] in ("done", "failed"):
            break
        time.sleep(0.1)
    assert job["state"] == "failed" and job["status"] == 504, job
    assert "time limit of 0.5 s" in job["error"]
    # the workers are free and the library consistent: a photo registers and is found
    status, work = call(url, "POST", "/api/works?filename=a.jpg", keys["register"],
                        photo_paths[0].read_bytes())
    assert status == 201, work
    status, res = call(url, "POST", "/api/query?filename=q.jpg", keys["query"],
                       photo_paths[0].read_bytes())
    assert status == 200 and res["matches"][0]["work_id"] == work["work_id"]
    assert leftovers(root) == []
    assert list((root / "uploads" / ".tmp").iterdir()) == []
    with copytrace.open(str(root)) as lib:
        assert [w.work_id for w in lib.works()] == [work["work_id"]]


def test_a_finished_job_is_never_changed_again(tmp_path):
    from copytrace.server.jobs import JobStore

    jobs = JobStore(tmp_path)
    job = jobs.create("query", None, "x.wav", str(tmp_path / "x.wav"))
    jobs.update(job.job_id, "failed", "failed", 1.0, 504, None, "past the limit")
    jobs.update(job.job_id, "done", "done", 1.0, 200, {"late": True})  # its worker came back
    got = jobs.get(job.job_id)
    assert (got.state, got.status, got.result) == ("failed", 504, None)
    jobs.close()


def test_time_limit_must_not_be_negative():
    from copytrace.server.app import ServerConfig

    with pytest.raises(ValueError, match="request_timeout_s"):
        ServerConfig(request_timeout_s=-1.0)


def test_a_job_reports_the_fraction_decoded(tmp_path, photo_paths):
    from copytrace.server.app import ServerConfig
    from tests.test_server import Server

    root = tmp_path / "db"
    s = Server(root, ServerConfig(max_upload_mb=64), _keys(root))
    try:
        long_wav = write_wav(tmp_path / "long.wav", 900.0).read_bytes()
        status, job, _ = s.call("POST", "/api/query?filename=long.wav&mode=job", long_wav,
                                key="query")
        assert status == 202
        seen = []
        for _ in range(3000):
            job = s.call("GET", f"/api/jobs/{job['job_id']}", key="query")[1]
            seen.append((job["stage"], job["progress"]))
            if job["state"] in ("done", "failed"):
                break
            time.sleep(0.02)
        assert job["state"] == "done", job
        fractions = [p for _, p in seen]
        assert fractions == sorted(fractions)  # never backwards
        decoding = [p for stage, p in seen if stage.startswith("decoding audio (")]
        assert any(0.15 < p < 0.9 for p in decoding), seen  # between start and end
    finally:
        s.close()


def test_a_worker_past_its_limit_without_a_check_is_answered_and_cleaned_up(tmp_path,
                                                                           photo_paths):
    """A photo query has no check of the limit (one decode, one encoder call): under a 10 ms
    limit and no grace the client is answered 504 at once, while the worker finishes; its
    upload is still removed and a job in that state is failed, not left running."""
    from copytrace.server.app import ServerConfig
    from tests.test_server import Server

    root = tmp_path / "db"
    s = Server(root, ServerConfig(request_timeout_s=0.01, stop_grace_s=0.0), _keys(root))
    try:
        status, body, _ = s.call("POST", "/api/query?filename=q.jpg&mode=sync",
                                 photo_paths[0].read_bytes(), key="query")
        assert status == 504 and "still running" in body["error"], body
        status, job, _ = s.call("POST", "/api/query?filename=q.jpg&mode=job",
                                photo_paths[1].read_bytes(), key="query")
        assert status == 202
        for _ in range(300):
            got = s.call("GET", f"/api/jobs/{job['job_id']}", key="query")[1]
            if got["state"] in ("done", "failed"):
                break
            time.sleep(0.05)
        time.sleep(1.0)  # the worker returns: the job must stay failed
        got = s.call("GET", f"/api/jobs/{job['job_id']}", key="query")[1]
        assert got["state"] == "failed" and got["status"] == 504, got
        for _ in range(100):  # the workers finish and remove their uploads
            if not list((root / "uploads" / ".tmp").iterdir()):
                break
            time.sleep(0.1)
        assert leftovers(root) == []
    finally:
        s.close()

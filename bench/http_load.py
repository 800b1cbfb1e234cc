"""Load on the HTTP service over loopback: a real `copytrace serve` process, a library of the
test photos, then ``--requests`` mixed requests from ``--concurrency`` clients; then listings
timed while a long audio job runs.

    python bench/http_load.py --requests 500 --concurrency 8 --json out/http_load.json

Mix (by weight): list works 40, get a work 10, query an edited photo or an innocent one 30,
register a new edited photo 5, ledger inclusion proof 10, health 5. Every request carries an
API key (query or register scope). Reported: p50/p99/max latency overall and per kind, errors
(anything but the expected status, or a transport error). Phase two submits a 15-minute audio
query (a job) and times ``--listings`` listings while it runs.
"""
from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import wave
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

DATA = Path(__file__).resolve().parents[1] / "tests" / "data"


def edited(path: Path, rng: random.Random) -> bytes:
    """A copy of a photo as an uploader might make it: cropped, resized, re-encoded."""
    im = Image.open(path).convert("RGB")
    w, h = im.size
    f = rng.uniform(0.75, 0.95)
    x, y = rng.randint(0, int(w * (1 - f))), rng.randint(0, int(h * (1 - f)))
    im = im.crop((x, y, x + int(w * f), y + int(h * f)))
    im = im.resize((int(im.width * rng.uniform(0.5, 1.0)), int(im.height * rng.uniform(0.5, 1.0))))
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=rng.randint(60, 90))
    return buf.getvalue()


def long_wav(seconds: float, rate: int = 8000) -> bytes:
    from copytrace.media.audio import iter_audio

    x = np.concatenate([s for p in ("music_beast.ogg", "music_brainsukker.ogg")
                        for _, s in iter_audio(DATA / p, rate)])
    n = int(seconds * rate)
    y = np.tile(x, n // len(x) + 1)[:n]
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.clip(y, -1, 1) * 32767).astype("<i2").tobytes())
    return buf.getvalue()


class Client:
    def __init__(self, url: str) -> None:
        host, port = url.removeprefix("http://").split(":")
        self.host, self.port = host, int(port)
        self.local = threading.local()

    def request(self, method: str, path: str, key: str, body: bytes | None = None):
        conn = getattr(self.local, "conn", None)
        reused = conn is not None
        if conn is None:
            conn = self.local.conn = http.client.HTTPConnection(self.host, self.port, timeout=300)
        headers = {"Authorization": f"Bearer {key}"}
        if body is not None:
            headers["Content-Type"] = "application/octet-stream"
        try:
            conn.request(method, path, body=body, headers=headers)
            r = conn.getresponse()
            return r.status, r.read()
        except (OSError, http.client.HTTPException) as e:
            self.local.conn = None
            conn.close()
            if reused and isinstance(e, (BrokenPipeError, ConnectionResetError,
                                         http.client.RemoteDisconnected)):
                # the server closed an idle keep-alive connection (uvicorn: after 5 s)
                return self.request(method, path, key, body)
            raise


def start_server(db: Path, args) -> tuple[subprocess.Popen, str]:
    cmd = [sys.executable, "-m", "copytrace", "serve", "--db", str(db), "--port", "0",
           "--rate-limit", str(args.rate_limit), "--workers", str(args.workers),
           "--max-upload-mb", "64"]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    if " on " not in line:
        raise SystemExit(f"server did not start: {line}{p.stderr.read()}")
    return p, line.split(" on ")[1].split()[0].rstrip("/")


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q * (len(xs) - 1)))] * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--requests", type=int, default=500)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--workers", type=int, default=1, help="the server's --workers")
    ap.add_argument("--rate-limit", type=int, default=0,
                    help="the server's --rate-limit (0: off, so the mix measures the engine)")
    ap.add_argument("--listings", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", help="write the numbers here")
    args = ap.parse_args()

    import copytrace
    from copytrace.server.keys import KeyStore

    rng = random.Random(args.seed)
    photos = sorted(DATA.glob("*.jpg"))
    registered, innocent = photos[:-2], photos[-2:]
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "db"
        with copytrace.open(str(db)) as lib:
            work_ids = [lib.add(str(p)).work.work_id for p in registered]
        ks = KeyStore(db)
        qkey, rkey = ks.add("bench-query", "query")[1], ks.add("bench-register", "register")[1]
        ks.close()
        proc, url = start_server(db, args)
        client = Client(url)
        try:
            for _ in range(100):
                try:
                    if client.request("GET", "/api/health", qkey)[0] == 200:
                        break
                except OSError:
                    time.sleep(0.1)
            # Warm the engine (model load) so the numbers are the steady state.
            client.request("POST", "/api/query?filename=w.jpg", qkey, registered[0].read_bytes())

            kinds = (["list"] * 40 + ["get"] * 10 + ["query"] * 30 + ["register"] * 5 +
                     ["proof"] * 10 + ["health"] * 5)
            plan = []
            for i in range(args.requests):
                kind = rng.choice(kinds)
                if kind == "list":
                    plan.append((kind, "GET", f"/api/works?limit=50&offset={rng.randint(0, 5)}",
                                 qkey, None, 200))
                elif kind == "get":
                    plan.append((kind, "GET", f"/api/works/{rng.choice(work_ids)}", qkey, None, 200))
                elif kind == "query":
                    src = rng.choice(registered + innocent)
                    plan.append((kind, "POST", f"/api/query?filename=q{i}.jpg&mode=sync", qkey,
                                 edited(src, rng), 200))
                elif kind == "register":
                    plan.append((kind, "POST", f"/api/works?filename=r{i}.jpg&mode=sync", rkey,
                                 edited(rng.choice(registered), rng), None))
                elif kind == "proof":
                    plan.append((kind, "GET", f"/api/ledger/proof/{rng.choice(work_ids)}", qkey,
                                 None, 200))
                else:
                    plan.append((kind, "GET", "/api/health", qkey, None, 200))

            results: list[tuple[str, float, bool]] = []
            lock = threading.Lock()

            def run(item):
                kind, method, path, key, body, expect = item
                t0 = time.perf_counter()
                try:
                    status, _ = client.request(method, path, key, body)
                    ok = status == expect if expect else status in (200, 201)
                except (OSError, http.client.HTTPException):
                    ok = False
                with lock:
                    results.append((kind, time.perf_counter() - t0, ok))

            t0 = time.perf_counter()
            with ThreadPoolExecutor(args.concurrency) as ex:
                list(ex.map(run, plan))
            wall = time.perf_counter() - t0

            # Phase two: listings while a long job runs.
            status, body = client.request("POST", "/api/query?filename=long.wav&mode=job", qkey,
                                          long_wav(900.0))
            assert status == 202, (status, body)
            job_id = json.loads(body)["job_id"]
            during: list[float] = []
            side = Client(url)
            while len(during) < args.listings:
                state = json.loads(side.request("GET", f"/api/jobs/{job_id}", qkey)[1])["state"]
                if state in ("done", "failed"):
                    break
                if state == "running":
                    t1 = time.perf_counter()
                    assert side.request("GET", "/api/works?limit=50", qkey)[0] == 200
                    during.append(time.perf_counter() - t1)
                time.sleep(0.02)
            while json.loads(side.request("GET", f"/api/jobs/{job_id}", qkey)[1])["state"] not in (
                    "done", "failed"):
                time.sleep(0.2)
        finally:
            proc.terminate()
            proc.wait(30)
        leftover = sorted(p.name for p in (db / "uploads" / ".tmp").iterdir())

    lat = [d for _, d, _ in results]
    out = {
        "requests": len(results), "concurrency": args.concurrency, "workers": args.workers,
        "errors": sum(not ok for _, _, ok in results), "wall_s": round(wall, 2),
        "throughput_rps": round(len(results) / wall, 1),
        "p50_ms": round(pct(lat, 0.5), 1), "p99_ms": round(pct(lat, 0.99), 1),
        "max_ms": round(max(lat) * 1000, 1),
        "per_kind": {
            k: {"n": len(v), "p50_ms": round(pct(v, 0.5), 1), "p99_ms": round(pct(v, 0.99), 1)}
            for k in sorted({k for k, _, _ in results})
            for v in [[d for kk, d, _ in results if kk == k]]},
        "listing_during_long_job": {
            "n": len(during), "p50_ms": round(pct(during, 0.5), 1) if during else None,
            "p99_ms": round(pct(during, 0.99), 1) if during else None,
            "max_ms": round(max(during) * 1000, 1) if during else None},
        "temporary_files_left": leftover,
        "cpus": os.cpu_count(),
    }
    print(json.dumps(out, indent=2))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    if out["errors"] or leftover:
        sys.exit(1)


if __name__ == "__main__":
    main()

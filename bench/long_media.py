"""Memory and time of long media: a 1-hour audio query against a registered 1-hour track.

    python bench/long_media.py --work out/long_media --json out/long_media.json

The reference is DATA.md's eval music (``data/audio/eval/tracks.json``, staged by
scripts/stage_audio.py) joined end to end into ``--minutes`` of audio; the query is as long,
made of other eval tracks (never registered) with ``--copies`` planted excerpts of the
reference, ``--copy-s`` seconds each, under white noise at ``--snr-db``. Registering and
querying each run in a fresh process, so each peak resident set (``VmHWM``) is its own;
``--tracemalloc`` also reports Python's traced peak (slower). ``--serve`` then serves the
library (``copytrace serve --no-auth`` on loopback), sends the query as a job and times a
listing (``GET /api/works``) every 50 ms while it runs; the server's peak RSS and the job's
progress stages are reported too.
``--max-segments 4,16`` instead aligns the two files' descriptors directly
(``align.offset.audio_alignments``) with each ``OffsetConfig.max_segments`` (the engine's is
4) and reports which planted copies each finds: recall on long queries with several copies.
``--video`` measures a video instead: an hour of camera pans over real photos (the test photos
and the staged ones, animated: there is no hour of real footage in DATA.md), 320x180 at 2 fps,
registered; the query is an hour of pans over other photos with the planted minutes copied
from the reference. Found: the planted copies whose
reported segment overlaps the planted query and reference spans.
Files are written as WAV at ``--rate`` Hz, ``--channels`` channels (48000 and 2 exercise
decoding and resampling as a real upload would; 8000 mono keeps the files small).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import wave
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def eval_tracks() -> list[Path]:
    listing = ROOT / "data" / "audio" / "eval" / "tracks.json"
    if not listing.exists():
        raise SystemExit(f"{listing} is missing: stage the eval music (scripts/stage_audio.py)")
    paths = [ROOT / t["path"] for t in json.loads(listing.read_text()) if not t.get("copy_of")]
    missing = [p for p in paths if not p.exists()]
    if missing:
        raise SystemExit(f"{len(missing)} eval tracks are not staged, e.g. {missing[0]}")
    return paths


def fill(tracks: list[Path], seconds: float, rate: int) -> tuple[np.ndarray, list[Path]]:
    """Tracks decoded at ``rate`` and joined until ``seconds``; the tracks used."""
    from copytrace.media.audio import iter_audio

    n, parts, used = int(seconds * rate), [], []
    total = 0
    for p in tracks:
        used.append(p)
        for _, x in iter_audio(p, rate, chunk_s=30.0):
            parts.append(x.copy())
            total += x.size
        if total >= n:
            break
    if total < n:
        raise SystemExit(f"only {total / rate:.0f} s of eval music for {seconds:.0f} s")
    return np.concatenate(parts)[:n], used


def write_wav(path: Path, x: np.ndarray, rate: int, channels: int) -> None:
    pcm = (np.clip(x, -1, 1) * 32767).astype("<i2")
    if channels > 1:
        pcm = np.repeat(pcm[:, None], channels, axis=1)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        for i in range(0, len(pcm), rate * 60):  # a minute at a time
            w.writeframes(pcm[i:i + rate * 60].tobytes())


def make_media(args, work: Path) -> tuple[Path, Path, list[dict]]:
    ref_path, q_path = work / "reference.wav", work / "query.wav"
    plan_path = work / "plan.json"
    key = {"minutes": args.minutes, "copies": args.copies, "copy_s": args.copy_s,
           "snr_db": args.snr_db, "seed": args.seed, "rate": args.rate, "channels": args.channels}
    if plan_path.exists() and json.loads(plan_path.read_text())["key"] == key:
        return ref_path, q_path, json.loads(plan_path.read_text())["copies"]
    seconds, sr = args.minutes * 60.0, 8000
    tracks = eval_tracks()
    ref, used = fill(tracks, seconds, sr)
    rest = [p for p in tracks if p not in used]
    query, _ = fill(rest, seconds, sr)
    rng = np.random.default_rng(args.seed)
    copies = []
    slot = seconds / args.copies  # one copy per slot of the query, at a random place in it
    n = int(args.copy_s * sr)
    for c in range(args.copies):
        q0 = c * slot + rng.uniform(0, slot - args.copy_s)
        r0 = rng.uniform(0, seconds - args.copy_s)
        x = ref[int(r0 * sr):int(r0 * sr) + n]
        noise = rng.standard_normal(n).astype(np.float32)
        noise *= np.sqrt(np.mean(x ** 2) / 10 ** (args.snr_db / 10)) / max(noise.std(), 1e-12)
        query[int(q0 * sr):int(q0 * sr) + n] = x + noise
        copies.append({"query_start_s": q0, "ref_start_s": r0, "duration_s": args.copy_s})
    write_wav(ref_path, _at_rate(ref, sr, args.rate), args.rate, args.channels)
    write_wav(q_path, _at_rate(query, sr, args.rate), args.rate, args.channels)
    plan_path.write_text(json.dumps({"key": key, "copies": copies}, indent=1))
    return ref_path, q_path, copies


def make_video(args, work: Path) -> tuple[Path, Path, list[dict]]:
    from fractions import Fraction

    from PIL import Image

    ref_path, q_path, plan_path = work / "reference.mp4", work / "query.mp4", work / "plan.json"
    key = {"video": True, "minutes": args.minutes, "copies": args.copies, "copy_s": args.copy_s,
           "seed": args.seed}
    if plan_path.exists() and json.loads(plan_path.read_text())["key"] == key:
        return ref_path, q_path, json.loads(plan_path.read_text())["copies"]
    photos = sorted((ROOT / "tests" / "data").glob("*.jpg")) + sorted(
        (ROOT / ".stage" / "photos").rglob("*.jpg"))
    images = [Image.open(p).convert("RGB") for p in photos]
    half = len(images) // 2
    fps, size, minutes = 2, (320, 180), int(args.minutes)
    rng = np.random.default_rng(args.seed)

    def minute(pool: list, m: int, seed: int) -> list:
        """60 s of a camera wandering over one photo of ``pool``."""
        im = pool[m % len(pool)]
        w, h = im.size
        r = np.random.default_rng(seed)
        periods, phases = r.uniform(8.0, 16.0, 3), r.uniform(0, 2 * np.pi, 3)
        out = []
        for i in range(60 * fps):
            px, py, pz = (0.5 + 0.5 * np.sin(2 * np.pi * (i / fps) / periods + phases)).tolist()
            cw, ch = int(w * (0.3 + 0.3 * pz)), int(h * (0.3 + 0.3 * pz))
            x, y = int(px * (w - cw)), int(py * (h - ch))
            out.append(im.crop((x, y, x + cw, y + ch)).resize(size, Image.BILINEAR))
        return out

    slots = rng.choice(minutes, size=args.copies, replace=False)
    sources = rng.choice(minutes, size=args.copies, replace=False)
    copies = [{"query_start_s": float(q * 60), "ref_start_s": float(r * 60), "duration_s": 60.0}
              for q, r in zip(sorted(slots), sources)]
    planted = {int(c["query_start_s"] // 60): int(c["ref_start_s"] // 60) for c in copies}
    for path, pool, base, plant in ((ref_path, images[:half], 0, {}),
                                    (q_path, images[half:], 10_000, planted)):
        import av

        with av.open(str(path), "w") as c:
            st = c.add_stream("libx264", rate=Fraction(fps))
            st.width, st.height, st.pix_fmt = size[0], size[1], "yuv420p"
            st.options = {"crf": "23", "preset": "ultrafast", "g": "24"}
            for m in range(minutes):
                frames = (minute(images[:half], plant[m], plant[m]) if m in plant
                          else minute(pool, m, base + m))
                for im in frames:
                    for pkt in st.encode(av.VideoFrame.from_image(im)):
                        c.mux(pkt)
            for pkt in st.encode():
                c.mux(pkt)
    plan_path.write_text(json.dumps({"key": key, "copies": copies}, indent=1))
    return ref_path, q_path, copies


def _at_rate(x: np.ndarray, sr: int, rate: int) -> np.ndarray:
    """Linear interpolation up to ``rate``: the content stays band-limited to 4 kHz, as the
    model hears it; what the bench measures is decoding a file of that rate."""
    if rate == sr:
        return x
    t = np.arange(int(len(x) * rate / sr)) * (sr / rate)
    return np.interp(t, np.arange(len(x)), x).astype(np.float32)


def peak_rss_mb() -> float:
    """This process's peak resident set: VmHWM, which belongs to the process's own memory map
    (``ru_maxrss`` can carry the parent's peak across the spawn)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(args) -> None:
    """One operation in this process: print its wall time and peaks as JSON."""
    import copytrace

    if args.tracemalloc:
        import tracemalloc

        tracemalloc.start()
    t0 = time.perf_counter()
    out: dict = {}
    with copytrace.open(args.db) as lib:
        if args.child == "register":
            res = lib.add(args.file, title="long reference")
            out["work_id"] = res.work.work_id
        else:
            res = lib.query(args.file, top_k=5)
            out["matches"] = [{"work_id": m.work_id, "score": m.score,
                               "segments": [[s.query_start_s, s.query_end_s, s.ref_start_s,
                                             s.ref_end_s, s.score] for s in m.segments]}
                              for m in res.matches]
    out["wall_s"] = time.perf_counter() - t0
    out["peak_rss_mb"] = peak_rss_mb()
    if args.tracemalloc:
        out["peak_traced_mb"] = tracemalloc.get_traced_memory()[1] / 2 ** 20
    print(json.dumps(out))


def run_child(op: str, db: Path, file: Path, tracemalloc: bool) -> dict:
    cmd = [sys.executable, __file__, "--child", op, "--db", str(db), "--file", str(file)]
    if tracemalloc:
        cmd.append("--tracemalloc")
    p = subprocess.run(cmd, check=False, capture_output=True, text=True, env=os.environ)
    if p.returncode:
        raise SystemExit(f"{op} failed:\n{p.stderr}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def serve_and_list(db: Path, q_path: Path) -> dict:
    """Listing latencies while the query runs as a job on a real server."""
    import http.client
    import signal

    p = subprocess.Popen([sys.executable, "-m", "copytrace", "serve", "--db", str(db),
                          "--port", "0", "--no-auth", "--max-upload-mb", "2048",
                          "--rate-limit", "0"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = p.stdout.readline()
        if " on " not in line:
            raise SystemExit(f"server did not start: {line}{p.stderr.read()}")
        port = int(line.split(" on ")[1].split()[0].rstrip("/").rsplit(":", 1)[1])

        def call(method: str, path: str, body=None):
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
            t0 = time.perf_counter()
            c.request(method, path, body=body)
            r = c.getresponse()
            data = r.read()
            c.close()
            return r.status, json.loads(data), time.perf_counter() - t0

        with open(q_path, "rb") as f:
            status, job, _ = call("POST", "/api/query?filename=query.wav&mode=job&top_k=5", f)
        if status != 202:
            raise SystemExit(f"the query was not accepted as a job: {status} {job}")
        t0, lat, stages = time.perf_counter(), [], []
        while True:
            st = call("GET", f"/api/jobs/{job['job_id']}")[1]
            if not stages or stages[-1] != st["stage"]:
                stages.append(st["stage"])
            if st["state"] in ("done", "failed"):
                break
            if st["state"] == "running":
                status, page, dt = call("GET", "/api/works")
                if status != 200 or page["total"] != 1:
                    raise SystemExit(f"listing failed: {status} {page}")
                lat.append(dt)
            time.sleep(0.05)
        job_s = time.perf_counter() - t0
        hwm = Path(f"/proc/{p.pid}/status").read_text().split("VmHWM:")[1].split()[0]
    finally:
        p.send_signal(signal.SIGINT)
        p.wait(60)
    lat.sort()
    return {"job_state": st["state"], "job_s": job_s, "server_peak_rss_mb": int(hwm) / 1024,
            "listings": len(lat), "listing_p50_ms": 1000 * lat[len(lat) // 2],
            "listing_p99_ms": 1000 * lat[min(len(lat) - 1, round(0.99 * (len(lat) - 1)))],
            "listing_max_ms": 1000 * lat[-1], "stages_seen": len(stages),
            "stages_sample": stages[:: max(1, len(stages) // 8)]}


def segments_sweep(ref_path: Path, q_path: Path, copies: list[dict], counts: list[int]) -> dict:
    from copytrace.align.offset import OffsetAligner, OffsetConfig, audio_alignments
    from copytrace.models.audio_cohort import load_cohort
    from copytrace.models.audio_spec import get_audio_spec
    from copytrace.runtime.audio import load_audio_encoder

    spec = get_audio_spec()
    enc, cohort = load_audio_encoder(spec), load_cohort(spec)
    qs, _, qv = enc.embed_file(str(q_path), hop_s=spec.query_hop_s)
    rs, _, rv = enc.embed_file(str(ref_path), hop_s=spec.hop_s)
    q_typ, r_typ = (None, None) if cohort is None else (cohort.typicality(qv),
                                                        cohort.typicality(rv))
    out = {}
    for k in counts:
        res = audio_alignments(OffsetAligner(OffsetConfig(max_segments=k)), qv, qs, rv, rs,
                               spec, q_typ, r_typ)
        segs = [[a.segment.query_start_s, a.segment.query_end_s, a.segment.ref_start_s,
                 a.segment.ref_end_s, a.segment.score] for a in res]
        hits = found(copies, [{"work_id": "ref", "segments": segs}], "ref")
        out[str(k)] = {"found": int(sum(hits)), "which": hits,
                       "above_threshold": sum(a.segment.score >= spec.threshold_similarity
                                              for a in res)}
    return out


def found(copies: list[dict], matches: list[dict], work_id: str) -> list[bool]:
    segs = [s for m in matches if m["work_id"] == work_id for s in m["segments"]]
    out = []
    for c in copies:
        q0, r0, d = c["query_start_s"], c["ref_start_s"], c["duration_s"]
        out.append(any(s[0] < q0 + d and s[1] > q0 and s[2] < r0 + d and s[3] > r0
                       and abs((s[2] - s[0]) - (r0 - q0)) < 1.0 for s in segs))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--copies", type=int, default=4)
    ap.add_argument("--copy-s", type=float, default=60.0)
    ap.add_argument("--snr-db", type=float, default=10.0)
    ap.add_argument("--rate", type=int, default=8000)
    ap.add_argument("--channels", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", default="out/long_media", help="media and library go here")
    ap.add_argument("--tracemalloc", action="store_true")
    ap.add_argument("--serve", action="store_true",
                    help="then time listings on a server while the query runs as a job")
    ap.add_argument("--video", action="store_true", help="a long video instead of audio")
    ap.add_argument("--max-segments", help="comma-separated OffsetConfig.max_segments to try")
    ap.add_argument("--json")
    ap.add_argument("--child", choices=["register", "query"], help=argparse.SUPPRESS)
    ap.add_argument("--db", help=argparse.SUPPRESS)
    ap.add_argument("--file", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    ref_path, q_path, copies = (make_video if args.video else make_media)(args, work)
    if args.max_segments:
        counts = [int(k) for k in args.max_segments.split(",")]
        report = {"planted": len(copies), "max_segments": segments_sweep(ref_path, q_path,
                                                                         copies, counts)}
        print(json.dumps(report, indent=1))
        if args.json:
            Path(args.json).write_text(json.dumps(report, indent=1))
        return None
    db = work / "db"
    if db.exists():
        import shutil

        shutil.rmtree(db)
    reg = run_child("register", db, ref_path, args.tracemalloc)
    qry = run_child("query", db, q_path, args.tracemalloc)
    hits = found(copies, qry["matches"], reg["work_id"])
    report = {
        "minutes": args.minutes, "rate": args.rate, "channels": args.channels,
        "query_mb_on_disk": q_path.stat().st_size / 2 ** 20,
        "register": {k: v for k, v in reg.items() if k != "work_id"},
        "query": {k: v for k, v in qry.items() if k != "matches"},
        "planted": len(copies), "found": int(sum(hits)),
        "segments": [s for m in qry["matches"] for s in m["segments"]],
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"), "load_avg": os.getloadavg(),
    }
    if args.serve:
        report["served"] = serve_and_list(db, q_path)
    print(json.dumps(report, indent=1))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()

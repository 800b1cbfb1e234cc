"""Speed of the registration log alone (no media, no descriptors): appends per second, and
inclusion/consistency proof times on a large log.

    python bench/ledger.py --leaves 1000000 --json out/ledger.json

The log lives in a real SQLite file with the catalogue's settings (WAL, synchronous=FULL).
Appends are timed in transactions of ``--batch`` entries (as ``copytrace add`` commits one work
per transaction, its per-work cost is the fsync of that transaction; that is timed too, over
``--single`` entries). Entries are registration-sized canonical JSON (about 450 bytes).
"""
from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import tempfile
import time

import numpy as np

from copytrace.ledger import entry
from copytrace.ledger.log import SCHEMA, MerkleLog
from copytrace.ledger.merkle import leaf_hash, verify_consistency, verify_inclusion


def _entry(i: int) -> bytes:
    return entry.canonical({
        "v": 1, "op": "register", "work_id": f"{i:016x}", "sha256": f"{i:064x}",
        "title": f"work {i}", "path": f"/media/registered/work-{i:08d}.mp4",
        "media_type": "video", "duration_s": 61.5, "added_at": 1.7e9 + i, "model":
        "ct-image-r18s@1.0.0", "descriptors": {"sha256": f"{i:064x}", "n": 62, "models": {
            "visual": "ct-image-r18s@1.0.0", "audio": "ct-audio-nafp@4"}},
        "by": "bench", "time": 1.7e9 + i})


def _open(path: str) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.executescript(SCHEMA)
    return db


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--leaves", type=int, default=1_000_000)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--single", type=int, default=300)
    ap.add_argument("--proofs", type=int, default=1000)
    ap.add_argument("--json", dest="json_path")
    args = ap.parse_args()
    out: dict = {"leaves": args.leaves, "batch": args.batch, "machine": os.uname().nodename,
                 "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory() as tmp:
        db = _open(os.path.join(tmp, "log.sqlite"))
        log = MerkleLog(db)
        rates = []
        t_all = time.perf_counter()
        for lo in range(0, args.leaves, args.batch):
            t0 = time.perf_counter()
            db.execute("BEGIN IMMEDIATE")
            for i in range(lo, min(lo + args.batch, args.leaves)):
                log.append(f"{i:016x}", "register", _entry(i))
            db.execute("COMMIT")
            rates.append((min(lo + args.batch, args.leaves) - lo) / (time.perf_counter() - t0))
        out["build_s"] = time.perf_counter() - t_all
        out["appends_per_s_batched_median"] = statistics.median(rates)
        n = log.size()
        t0 = time.perf_counter()
        for i in range(args.single):
            db.execute("BEGIN IMMEDIATE")
            log.append(f"s{i}", "register", _entry(n + i))
            db.execute("COMMIT")
        out["appends_per_s_one_per_transaction"] = args.single / (time.perf_counter() - t0)
        n = log.size()
        root = log.root(n)
        rng = np.random.default_rng(0)
        times, ok = [], True
        for idx in rng.integers(0, n, args.proofs).tolist():
            t0 = time.perf_counter()
            path = log.inclusion_proof(idx, n)
            times.append(time.perf_counter() - t0)
            ok &= verify_inclusion(leaf_hash(log.leaf(idx)[2]), idx, n, path, root)
        out["inclusion_proof_ms_median"] = 1e3 * statistics.median(times)
        out["inclusion_proof_ms_p90"] = 1e3 * float(np.percentile(times, 90))
        out["inclusion_path_len"] = len(path)
        ctimes = []
        for old in rng.integers(1, n, 100).tolist():
            t0 = time.perf_counter()
            proof = log.consistency_proof(old, n)
            ctimes.append(time.perf_counter() - t0)
            ok &= verify_consistency(old, n, log.root(old), root, proof)
        out["consistency_proof_ms_median"] = 1e3 * statistics.median(ctimes)
        out["all_proofs_verified"] = bool(ok)
        db.close()
    print(json.dumps(out, indent=2))
    if args.json_path:
        os.makedirs(os.path.dirname(args.json_path) or ".", exist_ok=True)
        with open(args.json_path, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()

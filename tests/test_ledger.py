"""The registration log: RFC 9162 hashes against the Certificate Transparency test vectors and
an independent recursive implementation, proofs that fail on any single-bit change, tampering
with the catalogue or the log caught by `copytrace ledger verify`, rollbacks and forks caught
by a consistency proof against a saved checkpoint, and a kill -9 during registration."""
from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys

import numpy as np
import pytest

from copytrace.errors import LedgerError
from copytrace.ledger import merkle
from copytrace.ledger.log import SCHEMA, MerkleLog
from copytrace.ledger.note import Signer, verify_checkpoint
from copytrace.ledger.proofs import (
    check_consistency,
    check_inclusion,
    consistency_proof,
)

from .conftest import variants

CLI = [sys.executable, "-m", "copytrace"]

# RFC 6962's test leaves and the roots of their first 1..8 (Certificate Transparency's
# merkle tree tests).
CT_LEAVES = [bytes.fromhex(h) for h in ("", "00", "10", "2021", "3031", "40414243",
                                        "5051525354555657", "606162636465666768696a6b6c6d6e6f")]
CT_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


# -- an independent implementation: the RFC's recursive definitions, word for word ----------
def _h(b: bytes) -> bytes:
    return hashlib.sha256(b).digest()


def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(d: list[bytes]) -> bytes:
    if len(d) == 0:
        return _h(b"")
    if len(d) == 1:
        return _h(b"\x00" + d[0])
    k = _k(len(d))
    return _h(b"\x01" + ref_mth(d[:k]) + ref_mth(d[k:]))


def ref_path(m: int, d: list[bytes]) -> list[bytes]:
    if len(d) == 1:
        return []
    k = _k(len(d))
    if m < k:
        return ref_path(m, d[:k]) + [ref_mth(d[k:])]
    return ref_path(m - k, d[k:]) + [ref_mth(d[:k])]


def ref_subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if b else [ref_mth(d)]
    k = _k(n)
    if m <= k:
        return ref_subproof(m, d[:k], b) + [ref_mth(d[k:])]
    return ref_subproof(m - k, d[k:], False) + [ref_mth(d[:k])]


def _memory_log(leaves: list[bytes]) -> MerkleLog:
    db = sqlite3.connect(":memory:", isolation_level=None)
    db.executescript(SCHEMA)
    log = MerkleLog(db)
    for i, data in enumerate(leaves):
        log.append(f"w{i}", "register", data)
    return log


def test_ct_test_vectors():
    log = _memory_log(CT_LEAVES)
    for n in range(1, 9):
        assert log.root(n).hex() == CT_ROOTS[n - 1]
        assert ref_mth(CT_LEAVES[:n]).hex() == CT_ROOTS[n - 1]
    assert log.root(0) == merkle.EMPTY_ROOT == _h(b"")


def test_random_trees_match_the_reference():
    rng = np.random.default_rng(0)
    leaves = [rng.bytes(int(rng.integers(0, 40))) for _ in range(70)]
    log = _memory_log(leaves)
    for n in range(1, len(leaves) + 1):
        root = log.root(n)
        assert root == ref_mth(leaves[:n]) == merkle.root_of([merkle.leaf_hash(x)
                                                             for x in leaves[:n]])
        for m in sorted({0, n - 1, *rng.integers(0, n, 3).tolist()}):
            path = log.inclusion_proof(m, n)
            assert path == ref_path(m, leaves[:n])
            assert merkle.verify_inclusion(merkle.leaf_hash(leaves[m]), m, n, path, root)
        for m in sorted({1, n, *rng.integers(1, n + 1, 3).tolist()}):
            proof = log.consistency_proof(m, n)
            assert proof == ([] if m == n else ref_subproof(m, leaves[:n], True))
            assert merkle.verify_consistency(m, n, log.root(m), root, proof)


def _flip(b: bytes, bit: int) -> bytes:
    out = bytearray(b)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


def test_every_single_bit_change_of_a_proof_is_detected():
    leaves = [f"entry {i}".encode() for i in range(13)]
    log = _memory_log(leaves)
    n, m, old = 13, 6, 5
    root, path = log.root(n), log.inclusion_proof(m, n)
    leaf = merkle.leaf_hash(leaves[m])
    for i, h in enumerate(path):
        for bit in range(256):
            bad = path[:i] + [_flip(h, bit)] + path[i + 1:]
            assert not merkle.verify_inclusion(leaf, m, n, bad, root)
    for bit in range(256):
        assert not merkle.verify_inclusion(_flip(leaf, bit), m, n, path, root)
        assert not merkle.verify_inclusion(leaf, m, n, path, _flip(root, bit))
    assert not merkle.verify_inclusion(leaf, m + 1, n, path, root)
    # (the tree size is not bound by the path alone: check_inclusion takes it from the signed
    # checkpoint, and the tests below change it there)
    cpath, old_root = log.consistency_proof(old, n), log.root(old)
    for i, h in enumerate(cpath):
        for bit in range(0, 256, 7):
            bad = cpath[:i] + [_flip(h, bit)] + cpath[i + 1:]
            assert not merkle.verify_consistency(old, n, old_root, root, bad)
    for bit in range(0, 256, 7):
        assert not merkle.verify_consistency(old, n, _flip(old_root, bit), root, cpath)


def test_checkpoint_signature_rejects_every_single_bit_change(tmp_path):
    signer = Signer.load_or_create(tmp_path / "k", "copytrace.local/test")
    assert (tmp_path / "k").stat().st_mode & 0o777 == 0o600
    log = _memory_log(CT_LEAVES)
    note = signer.sign(f"copytrace.local/test\n8\n{__import__('base64').b64encode(log.root()).decode()}\n")
    assert verify_checkpoint(note, signer.vkey).size == 8
    raw = note.encode()
    rejected = 0
    for bit in range(len(raw) * 8):
        try:
            changed = _flip(raw, bit).decode("utf-8")
        except UnicodeDecodeError:
            rejected += 1
            continue
        with pytest.raises(LedgerError):
            verify_checkpoint(changed, signer.vkey)
        rejected += 1
    assert rejected == len(raw) * 8
    other = Signer.load_or_create(tmp_path / "k2", "copytrace.local/test")
    with pytest.raises(LedgerError):
        verify_checkpoint(note, other.vkey)


# -- through a real library -------------------------------------------------------------------
def run(*args):
    return subprocess.run(CLI + [str(a) for a in args], capture_output=True, text=True,
                          check=False)


@pytest.fixture(scope="module")
def library(tmp_path_factory, photo_paths):
    root = tmp_path_factory.mktemp("ledger")
    files = variants(photo_paths, root / "media", 6, seed=7)
    db = root / "db"
    r = run("add", "--db", db, *files)
    assert r.returncode == 0, r.stderr
    ids = [line.split("\t")[0] for line in r.stdout.splitlines()]
    assert run("remove", "--db", db, ids[-1]).returncode == 0
    return db, ids


def _copy(db, tmp_path):
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(db, out)
    return out


def test_verify_passes_then_fails_after_any_edit(library, tmp_path):
    db, ids = library
    r = run("ledger", "verify", "--db", db)
    assert r.returncode == 0 and "7 log entries" in r.stdout, r.stderr
    edits = {
        "UPDATE works SET title = 'someone else' WHERE work_id = ?": "title",
        "UPDATE works SET added_at = added_at - 86400 WHERE work_id = ?": "added_at",
        "UPDATE descriptors SET vectors = zeroblob(length(vectors)) WHERE work_id = ?":
            "descriptors",
        "DELETE FROM works WHERE work_id = ?": "no removal logged",
        "UPDATE ledger_leaves SET data = replace(data, 'v0001', 'v0009') WHERE work_id = ?":
            "log entry 1",
        "DELETE FROM ledger_leaves WHERE work_id = ?": "log entry 1:",
    }
    for sql, expect in edits.items():
        copy = _copy(db, tmp_path / expect.replace(" ", "_"))
        with sqlite3.connect(copy / "catalog.sqlite") as c:
            assert c.execute(sql, (ids[1],)).rowcount >= 1
        r = run("ledger", "verify", "--db", copy)
        assert r.returncode == 1 and expect in r.stderr, (sql, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1


def test_one_bit_in_a_stored_vector_is_caught(library, tmp_path):
    db, ids = library
    copy = _copy(db, tmp_path)
    with sqlite3.connect(copy / "catalog.sqlite") as c:
        blob = bytearray(c.execute("SELECT vectors FROM descriptors WHERE work_id = ?",
                                   (ids[2],)).fetchone()[0])
        blob[100] ^= 1
        c.execute("UPDATE descriptors SET vectors = ? WHERE work_id = ?", (bytes(blob), ids[2]))
    r = run("ledger", "verify", "--db", copy)
    assert r.returncode == 1 and ids[2] in r.stderr


def test_inclusion_proof_checks_offline(library, tmp_path):
    db, ids = library
    r = run("ledger", "prove", "--db", db, ids[3])
    assert r.returncode == 0, r.stderr
    proof_path = tmp_path / "proof.json"
    proof_path.write_text(r.stdout)
    vkey = (db / "ledger.pub").read_text().strip()
    r = run("ledger", "check-proof", proof_path, "--vkey", vkey)
    assert r.returncode == 0 and ids[3] in r.stdout
    proof = json.loads(proof_path.read_text())
    assert check_inclusion(proof, vkey)["work_id"] == ids[3]
    tampered = dict(proof, index=proof["index"] + 1)
    proof_path.write_text(json.dumps(tampered))
    assert run("ledger", "check-proof", proof_path, "--vkey", vkey).returncode == 1


def test_rollback_and_fork_fail_the_consistency_proof(library, tmp_path, photo_paths):
    import copytrace

    db, _ = library
    older = _copy(db, tmp_path / "older")  # the library as it was
    saved = tmp_path / "checkpoint.txt"
    with copytrace.open(str(db)) as lib:
        for f in variants(photo_paths, tmp_path / "more", 2, seed=11):
            lib.add(str(f))
        lib.flush()
        saved.write_text(lib.store.checkpoint())  # a user keeps the latest checkpoint
    r = run("ledger", "consistency", "--db", db, saved)
    assert r.returncode == 0, r.stderr
    # the operator restores the older catalogue (same key): the saved checkpoint exposes it
    r = run("ledger", "consistency", "--db", older, saved)
    assert r.returncode == 1 and "rolled back" in r.stderr
    # a fork: the older catalogue grows by as many *other* entries, same size, other root
    with copytrace.open(str(older)) as lib:
        for f in variants(photo_paths, tmp_path / "fork", 2, seed=12):
            lib.add(str(f))
        lib.flush()
        assert verify_checkpoint(lib.store.checkpoint(), lib.store.signer().vkey).size == \
            verify_checkpoint(saved.read_text(), lib.store.signer().vkey).size
    r = run("ledger", "consistency", "--db", older, saved)
    assert r.returncode == 1 and "fork" in r.stderr
    with copytrace.open(str(db)) as lib:
        note, vkey = lib.store.checkpoint(), lib.store.signer().vkey
        proof = consistency_proof(lib.store.catalog.ledger, note, note, vkey)
        check_consistency(proof, vkey)


def test_version_1_catalogue_is_backfilled(library, tmp_path):
    import copytrace

    db, ids = library
    copy = _copy(db, tmp_path)
    with sqlite3.connect(copy / "catalog.sqlite") as c:
        c.executescript("DROP TABLE ledger_leaves; DROP TABLE ledger_nodes; "
                        "DROP TABLE ledger_checkpoints; "
                        "UPDATE meta SET value = '1' WHERE key = 'schema_version';")
    with copytrace.open(str(copy)) as lib:
        log = lib.store.catalog.ledger
        assert log.size() == lib.store.catalog.count() >= len(ids) - 1
        assert all(json.loads(d)["by"] == "backfill" for _, _, _, d in log.leaves())
    assert run("ledger", "verify", "--db", copy).returncode == 0


def test_kill_during_registration_leaves_log_and_catalogue_in_agreement(tmp_path, photo_paths):
    import copytrace

    files = variants(photo_paths, tmp_path / "media", 60, seed=3)
    db = tmp_path / "db"
    assert run("add", "--db", db, files[0]).returncode == 0
    rng = np.random.default_rng(5)
    reported: set[str] = set()
    for _ in range(3):
        p = subprocess.Popen(CLI + ["add", "--db", str(db), *map(str, files)],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        for _ in range(int(rng.integers(3, 15))):  # kill after a few more works are added
            reported.add(p.stdout.readline().split("\t")[0])
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
        r = run("ledger", "verify", "--db", db)
        assert r.returncode == 0, r.stderr
    with copytrace.open(str(db)) as lib:
        registered = {w.work_id for w in lib.works()}
    assert reported <= registered and len(registered) < len(files)


def test_ledger_over_http(tmp_path, photo_paths):
    import threading
    import urllib.error
    import urllib.request

    import copytrace
    from copytrace.server.app import CopytraceServer, ServerConfig

    lib = copytrace.open(str(tmp_path / "db"), create=True)
    work_id = lib.add(str(photo_paths[0])).work.work_id
    lib.flush()
    srv = CopytraceServer(("127.0.0.1", 0), lib, ServerConfig(no_auth=True))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{srv.server_port}/api/ledger"

    def get(path, body=None):
        req = urllib.request.Request(base + path, data=body, method="POST" if body else "GET")
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    try:
        vkey = get("/vkey")[1].strip()
        status, note = get("/checkpoint")
        assert status == 200 and verify_checkpoint(note, vkey).size == 1
        status, proof = get(f"/proof/{work_id}")
        assert status == 200 and check_inclusion(json.loads(proof), vkey)["work_id"] == work_id
        assert get("/proof/0000")[0] == 404
        assert json.loads(get("/verify")[1]) == {"ok": True, "problems": []}
        lib.add(str(photo_paths[1]))
        status, proof = get("/consistency", note.encode())
        assert status == 200 and json.loads(proof)["new_size"] == 2
        check_consistency(json.loads(proof), vkey)
        assert get("/consistency", b"not a checkpoint\n")[0] == 409
        req = urllib.request.Request(f"http://127.0.0.1:{srv.server_port}/api/query?filename=q.jpg"
                                     "&evidence=1", data=photo_paths[0].read_bytes(),
                                     method="POST")
        with urllib.request.urlopen(req, timeout=60) as r:
            res = json.loads(r.read())
        (bundle,) = res["evidence"]
        assert check_inclusion(bundle["registration"], vkey)["work_id"] == work_id
    finally:
        srv.shutdown()
        srv.server_close()
        lib.close()


def test_evidence_bundle_for_a_video_match_checks_offline(tmp_path):
    from fractions import Fraction

    from .video_clips import pan_frames, write_clip

    ref = pan_frames("face_astronaut.jpg", 10 * 25, seed=1)
    video = write_clip(tmp_path / "ref.mp4", ref, Fraction(25))
    clip = write_clip(tmp_path / "clip.mp4", ref[75:200], Fraction(25))
    db, ev = tmp_path / "db", tmp_path / "evidence"
    assert run("add", "--db", db, video).returncode == 0
    r = run("query", "--db", db, "--evidence", ev, clip)
    assert r.returncode == 0 and "evidence:" in r.stderr, r.stderr
    (bundle,) = [p.parent for p in ev.glob("*/evidence.json")]
    data = json.loads((bundle / "evidence.json").read_text())
    seg = data["match"]["segments"][0]
    assert data["pictures"]["reference-0.jpg"]["time_s"] == pytest.approx(seg["ref_start_s"])
    assert {"query-0.jpg", "reference-0.jpg"} <= set(data["files"])
    assert data["models"]["model"].startswith("ct-image-r18s@")
    assert data["models"]["files"]
    vkey = (db / "ledger.pub").read_text().strip()
    ok = run("evidence", "verify", ev, "--vkey", vkey, "--query", clip)
    assert ok.returncode == 0, ok.stderr
    wrong_query = run("evidence", "verify", ev, "--vkey", vkey, "--query", video)
    assert wrong_query.returncode == 1 and "not the file" in wrong_query.stderr
    other = Signer.load_or_create(tmp_path / "other.key", vkey.split("+")[0])
    assert run("evidence", "verify", ev, "--vkey", other.vkey).returncode == 1
    pic = bundle / "reference-0.jpg"
    pic.write_bytes(_flip(pic.read_bytes(), 8 * 200))
    r = run("evidence", "verify", ev, "--vkey", vkey)
    assert r.returncode == 1 and "reference-0.jpg" in r.stderr

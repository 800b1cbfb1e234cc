"""Check a library's log against itself, its checkpoints and the catalogue it records.

``verify_log`` recomputes every leaf hash and every stored subtree hash from the leaves' bytes,
every checkpoint's root and signature, and, for every work, the entry the catalogue's rows
imply: a ``works`` row, a descriptor or a log entry edited behind copytrace's back disagrees
with something here. Problems come in log order, the first one naming the first entry that
disagrees.
"""
from __future__ import annotations

import json

from copytrace.errors import LedgerError
from copytrace.ledger import entry as ledger_entry
from copytrace.ledger.merkle import EMPTY_ROOT, leaf_hash, node_hash, subtree_hash
from copytrace.ledger.note import verify_checkpoint


def _levels(leaves: list[bytes]) -> list[list[bytes]]:
    """Complete-subtree hashes by level, from the leaf hashes."""
    levels = [leaves]
    while len(levels[-1]) > 1:
        prev = levels[-1]
        levels.append([node_hash(prev[i], prev[i + 1]) for i in range(0, len(prev) - 1, 2)])
    return levels


def _root(levels: list[list[bytes]], size: int) -> bytes:
    """MTH of the first ``size`` leaves from the recomputed complete-subtree levels."""
    return EMPTY_ROOT if size == 0 else subtree_hash(0, size, lambda lv, i: levels[lv][i])


def verify_log(catalog, vkey: str) -> list[str]:
    """Every disagreement found; empty when log, checkpoints and catalogue agree."""
    log = catalog.ledger
    problems: list[tuple[int, str]] = []

    def fail(seq: int, message: str) -> None:
        problems.append((seq, message))

    leaves = list(log.leaves())
    hashes = [leaf_hash(data) for _, _, _, data in leaves]
    latest: dict[str, tuple[int, dict]] = {}
    for seq, work_id, op, data in leaves:
        try:
            obj = json.loads(data)
        except ValueError:
            fail(seq, f"log entry {seq}: not a JSON entry")
            continue
        if obj.get("op") != op or obj.get("work_id") != work_id or op not in ("register",
                                                                              "remove"):
            fail(seq, f"log entry {seq}: its columns disagree with its bytes")
        latest[work_id] = (seq, obj)
    levels = _levels(hashes)
    stored = {(lv, i): h for lv, i, h in log.stored_nodes()}
    expected = {(lv, i): h for lv, row in enumerate(levels) for i, h in enumerate(row)}
    for level, idx in sorted(set(stored) | set(expected)):  # leaves first, then upward
        if stored.get((level, idx)) != expected.get((level, idx)):
            first = idx << level
            what = ("its bytes do not match the hash stored when it was appended" if level == 0
                    else f"stored tree hash (level {level}, index {idx}) does not match the "
                         f"entries' bytes")
            fail(first, f"log entry {first}: {what}")
            break
    for size, note in log.checkpoints():
        try:
            cp = verify_checkpoint(note, vkey)
        except LedgerError as e:
            fail(size, f"checkpoint of size {size}: {e}")
            continue
        if cp.size != size or size > len(leaves):
            fail(size, f"checkpoint of size {size}: the log holds {len(leaves)} "
                                   f"entries")
        elif cp.root != _root(levels, size):
            fail(size, f"checkpoint of size {size}: its root is not the log's root "
                                   f"at that size (entries before {size} were changed)")
    works = {w.work_id: w for w in catalog.works()}
    for work_id, work in works.items():
        if work_id not in latest or latest[work_id][1].get("op") != "register":
            fail(len(leaves), f"work {work_id}: in the catalogue but not registered "
                                          f"in the log")
            continue
        seq, logged = latest[work_id]
        now = ledger_entry.registration(work, catalog.descriptor_rows(work_id), "", 0.0)
        for field in ledger_entry.CATALOGUE_FIELDS:
            if logged.get(field) != now[field]:
                fail(seq, f"work {work_id}: catalogue {field} differs from log "
                                      f"entry {seq}")
                break
    for work_id, (seq, logged) in latest.items():
        if logged.get("op") == "register" and work_id not in works:
            fail(seq, f"work {work_id}: registered by log entry {seq}, missing from "
                                  f"the catalogue with no removal logged")
    return [msg for _, msg in sorted(problems, key=lambda p: p[0])]


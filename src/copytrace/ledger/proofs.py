"""Proofs as plain JSON objects, and the standalone checks that need only the proof, the
checkpoint inside it and the log's public (verifier) key.

An inclusion proof says: entry ``index`` (its bytes given) is in the log whose signed
checkpoint is given. A consistency proof says: the log of an old checkpoint is a prefix of the
log of a newer one, so nothing registered earlier was rewritten or dropped (a rollback or a
fork fails it).
"""
from __future__ import annotations

import base64

from copytrace.errors import LedgerError
from copytrace.ledger.log import MerkleLog
from copytrace.ledger.merkle import leaf_hash, verify_consistency, verify_inclusion
from copytrace.ledger.note import b64decode_strict, verify_checkpoint


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def _unb64(s: str, what: str) -> bytes:
    try:
        return b64decode_strict(s)
    except (ValueError, TypeError):
        raise LedgerError(f"{what} is not base64") from None


def inclusion_proof(log: MerkleLog, index: int, checkpoint_note: str, vkey: str) -> dict:
    cp = verify_checkpoint(checkpoint_note, vkey)
    if not 0 <= index < cp.size:
        raise LedgerError(f"entry {index} is not in the checkpoint of size {cp.size}")
    work_id, op, data = log.leaf(index)
    return {"type": "inclusion", "work_id": work_id, "op": op, "index": index,
            "tree_size": cp.size, "entry": _b64(data),
            "path": [_b64(h) for h in log.inclusion_proof(index, cp.size)],
            "checkpoint": checkpoint_note, "vkey": vkey}


def check_inclusion(proof: dict, vkey: str) -> dict:
    """The entry (bytes decoded as JSON) if ``proof`` holds under ``vkey``; LedgerError if not.
    ``vkey`` comes from the verifier, not from the proof: a proof can name any key."""
    import json

    try:
        cp = verify_checkpoint(proof["checkpoint"], vkey)
        index, size = int(proof["index"]), int(proof["tree_size"])
        data = _unb64(proof["entry"], "entry")
        path = [_unb64(h, "path hash") for h in proof["path"]]
    except (KeyError, TypeError, ValueError) as e:
        raise LedgerError(f"malformed inclusion proof: {e}") from None
    if size != cp.size:
        raise LedgerError(f"proof is for size {size}, its checkpoint for {cp.size}")
    if not verify_inclusion(leaf_hash(data), index, size, path, cp.root):
        raise LedgerError(f"entry {index} is not in the log of size {size} (proof fails)")
    return json.loads(data)


def consistency_proof(log: MerkleLog, old_note: str, new_note: str, vkey: str) -> dict:
    old, new = verify_checkpoint(old_note, vkey), verify_checkpoint(new_note, vkey)
    if old.size > new.size:
        raise LedgerError(f"the log now holds {new.size} entries, fewer than the {old.size} "
                          f"of the checkpoint given: it was rolled back")
    path = [] if old.size in (0, new.size) else log.consistency_proof(old.size, new.size)
    return {"type": "consistency", "old_size": old.size, "new_size": new.size,
            "path": [_b64(h) for h in path], "old_checkpoint": old_note,
            "new_checkpoint": new_note, "vkey": vkey}


def check_consistency(proof: dict, vkey: str) -> None:
    """None if the old checkpoint's log is a prefix of the new one's; LedgerError if not."""
    try:
        old = verify_checkpoint(proof["old_checkpoint"], vkey)
        new = verify_checkpoint(proof["new_checkpoint"], vkey)
        path = [_unb64(h, "path hash") for h in proof["path"]]
    except (KeyError, TypeError) as e:
        raise LedgerError(f"malformed consistency proof: {e}") from None
    if old.size > new.size:
        raise LedgerError(f"the new checkpoint ({new.size}) is shorter than the old "
                          f"({old.size}): a rollback")
    if old.size == 0:
        return
    if not verify_consistency(old.size, new.size, old.root, new.root, path):
        raise LedgerError(f"the log of size {new.size} does not extend the log of size "
                          f"{old.size}: entries before {old.size} were changed (a fork)")

"""The bytes of a log entry: canonical JSON (sorted keys, no spaces, UTF-8).

A registration records what the catalogue holds of the work (id, content sha256, title, path,
media type, duration, time added, descriptor models and the sha256 of its descriptors) plus who
registered it and when the entry was made; ``catalogue_fields`` is the part that
``copytrace ledger verify`` recomputes from the catalogue. A removal records the work id, its
content hash, who and when.
"""
from __future__ import annotations

import hashlib
import json

import numpy as np

VERSION = 1
# Fields of a registration recomputed from the catalogue's rows on verification.
CATALOGUE_FIELDS = ("work_id", "sha256", "title", "path", "media_type", "duration_s",
                    "added_at", "model", "descriptors")


def canonical(obj: dict) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def descriptors_digest(rows) -> dict:
    """sha256 over each descriptor row (signal, model, n, dims, times, vectors), in signal
    order, as the catalogue stores them; plus the models by signal and the row count."""
    h = hashlib.sha256()
    models, total = {}, 0
    for signal, model, n, dims, starts, ends, vectors in sorted(rows, key=lambda r: r[0]):
        h.update(canonical({"signal": signal, "model": model, "n": int(n), "dims": int(dims)}))
        for blob in (starts, ends, vectors):
            h.update(len(blob).to_bytes(8, "big"))
            h.update(blob)
        models[signal] = model
        total += int(n)
    return {"sha256": h.hexdigest(), "models": models, "n": total}


def descriptor_rows(descriptors) -> list[tuple]:
    """The rows the catalogue writes for ``Descriptors`` objects (same bytes, same order)."""
    out = []
    for d in descriptors:
        v = np.ascontiguousarray(d.vectors, dtype=np.float32)
        out.append((d.signal, d.model, len(d), v.shape[1],
                    np.asarray(d.starts_s, np.float64).tobytes(),
                    np.asarray(d.ends_s, np.float64).tobytes(), v.tobytes()))
    return out


def registration(work, rows, by: str, time_s: float) -> dict:
    return {"v": VERSION, "op": "register", "work_id": work.work_id, "sha256": work.sha256,
            "title": work.title, "path": work.path, "media_type": work.media_type,
            "duration_s": work.duration_s, "added_at": work.added_at, "model": work.model,
            "descriptors": descriptors_digest(rows), "by": by, "time": time_s}


def removal(work, by: str, time_s: float) -> dict:
    return {"v": VERSION, "op": "remove", "work_id": work.work_id, "sha256": work.sha256,
            "by": by, "time": time_s}

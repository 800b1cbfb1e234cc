"""Evidence bundles: one self-contained folder per match, checkable offline.

``evidence.json`` holds the query (its sha256, type, duration), the match (work, score,
segments), the matched work's registration entry with its inclusion proof, the signed
checkpoint and the log's verifier key, the descriptor models with the sha256 of their files, and
the sha256 of every other file of the bundle: pictures of the matched parts (the images
themselves, or the video frames at each segment's start on both sides). ``verify_bundle``
checks all of it with nothing but the bundle (and, to trust it, the log's key from elsewhere).
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

from copytrace.engine import file_sha256
from copytrace.errors import CopytraceError, LedgerError, MediaError

BUNDLE_FILE = "evidence.json"
THUMB_SIDE = 480


def _save_jpeg(image, path: Path) -> None:
    image = image.convert("RGB")
    image.thumbnail((THUMB_SIDE, THUMB_SIDE))
    image.save(path, format="JPEG", quality=85)


def _still(path: str, media_type: str, time_s: float):
    """A picture of ``path`` at ``time_s`` (the image itself for stills); None for audio or an
    unreadable file (the bundle then says so instead of holding a picture)."""
    try:
        if media_type == "image":
            from copytrace.media.image import load_image

            return load_image(path, draft_size=THUMB_SIDE)
        if media_type == "video":
            from copytrace.media.video import iter_frames_between

            return next((im for _, im in iter_frames_between(path, time_s, time_s + 1.0,
                                                             THUMB_SIDE)), None)
    except (MediaError, OSError):
        return None
    return None


def _model_files(lib, signal: str) -> dict:
    spec = lib.signal(signal).spec
    files = {}
    for precision in ("fp32", "int8"):
        try:
            p = spec.path(precision)
        except (CopytraceError, ValueError, KeyError):
            continue
        if p.is_file():
            files[p.name] = file_sha256(p)
    return {"model": spec.model_id, "files": files}


def write_bundles(lib, result, query_path: str, out_dir: str | os.PathLike) -> list[Path]:
    """One bundle folder per match of ``result`` under ``out_dir``; returns their paths."""
    from copytrace import __version__

    out = Path(out_dir)
    store = lib.store
    written = []
    for m in result.matches:
        folder = out / f"{result.query.sha256[:16]}-{m.work_id}"
        folder.mkdir(parents=True, exist_ok=True)
        try:
            proof = store.prove(m.work_id)
        except LedgerError as e:
            raise LedgerError(f"work {m.work_id}: no registration to prove ({e})") from None
        pictures = {}
        # pictures of timed media and images; a text match's passages are in "match"
        times = ([] if m.signal == "text" else
                 [(s.query_start_s, s.ref_start_s) for s in m.segments] or [(0.0, 0.0)])
        for i, (tq, tr) in enumerate(times[:8]):
            for side, src, kind, t in (("query", query_path, result.query.media_type, tq),
                                       ("reference", m.path, m.media_type, tr)):
                im = _still(src, kind, t) if src else None
                if im is not None:
                    name = f"{side}-{i}.jpg"
                    _save_jpeg(im, folder / name)
                    pictures[name] = {"side": side, "time_s": t if kind == "video" else None}
        bundle = {
            "format": "copytrace-evidence/1", "copytrace": __version__,
            "created_at": time.time(),
            "query": {"path": query_path, "sha256": result.query.sha256,
                      "media_type": result.query.media_type,
                      "duration_s": result.query.duration_s},
            "match": m.to_dict(),
            "registration": proof,
            "models": _model_files(lib, m.signal),
            "pictures": pictures,
            "files": {name: file_sha256(folder / name) for name in pictures},
        }
        tmp = folder / (BUNDLE_FILE + ".tmp")
        tmp.write_text(json.dumps(bundle, indent=2, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, folder / BUNDLE_FILE)
        written.append(folder)
    return written


def verify_bundle(folder: str | os.PathLike, vkey: str | None = None,
                  query_file: str | None = None) -> list[str]:
    """Problems with one bundle (empty: it holds). ``vkey``: the log's key as the checker got
    it from its owner; without it the key inside the bundle is used, which proves integrity
    but not who signed."""
    from copytrace.ledger.proofs import check_inclusion

    folder = Path(folder)
    try:
        b = json.loads((folder / BUNDLE_FILE).read_text(encoding="utf-8"))
        proof, match = b["registration"], b["match"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        return [f"{folder}: not an evidence bundle ({e})"]
    problems = []
    try:
        entry = check_inclusion(proof, vkey or proof.get("vkey", ""))
    except LedgerError as e:
        return [f"{folder}: registration proof: {e}"]
    if entry.get("op") != "register" or entry.get("work_id") != match.get("work_id"):
        problems.append(f"{folder}: the proven entry is not the registration of "
                        f"{match.get('work_id')}")
    if entry.get("sha256") is None or entry.get("title") != match.get("title"):
        problems.append(f"{folder}: the match's title differs from the registered one")
    for name, digest in b.get("files", {}).items():
        p = folder / name
        if not p.is_file() or file_sha256(p) != digest:
            problems.append(f"{folder}: {name} is missing or changed")
    if set(b.get("files", {})) != set(b.get("pictures", {})):
        problems.append(f"{folder}: pictures and file hashes disagree")
    if query_file is not None and file_sha256(query_file) != b["query"]["sha256"]:
        problems.append(f"{folder}: {query_file} is not the file this evidence is about")
    return problems

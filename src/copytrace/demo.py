"""The demo: register real sample photos, query edited copies and innocent photos, report.

Run with ``copytrace demo`` (or ``make demo``). Uses the library at ``OUT/library`` so it never
touches your default library.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from copytrace.types import QueryResult


def run_demo(samples: Path, out: Path, n_innocent: int = 2) -> list[QueryResult]:
    from PIL import Image

    import copytrace
    from copytrace.eval.edits import apply_edit

    photos = sorted(p for p in samples.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if len(photos) < n_innocent + 3:
        raise SystemExit(f"demo needs at least {n_innocent + 3} photos in {samples}")
    refs, innocent = photos[:-n_innocent], photos[-n_innocent:]
    out.mkdir(parents=True, exist_ok=True)
    queries_dir = out / "queries"
    queries_dir.mkdir(exist_ok=True)
    rng = np.random.default_rng(2026)
    # Planted copies: each a different real-world edit of a registered photo.
    plans = [("text", refs[0]), ("hflip", refs[1]), ("pip", refs[2 % len(refs)]),
             ("screenshot", refs[3 % len(refs)]), ("jpeg", refs[4 % len(refs)])]
    queries = []
    for family, src in plans:
        other = Image.open(innocent[0]).convert("RGB")
        q = queries_dir / f"copy-{family}-of-{src.stem}.jpg"
        apply_edit(family, Image.open(src).convert("RGB"), rng, other).save(q, quality=80)
        queries.append(q)
    for p in innocent:  # innocent files: never registered, lightly edited so edits are no cue
        q = queries_dir / f"innocent-{p.stem}.jpg"
        apply_edit("jpeg", Image.open(p).convert("RGB"), rng).save(q)
        queries.append(q)

    with copytrace.open(str(out / "library")) as lib:
        for p in refs:
            res = lib.add(str(p))
            print(f"registered {res.work.work_id}  {p.name}{'' if res.created else ' (already)'}")
        return [lib.query(str(q), top_k=3) for q in queries]

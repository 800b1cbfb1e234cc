"""A DISC21-style image copy-detection benchmark: build the set, search, score.

The set (built once per seed and cached):
- **references**: the eval images minus a held-out part, padded with distractor images (from
  another pool, say which in the report) up to ``min_refs``;
- **copy queries**: edited versions of references, one edit family each;
- **unregistered queries**: the same edit pipeline applied to the held-out eval images, which
  are never registered, so being edited is no cue;
- **background**: distractor images that are neither references nor used in queries, for
  SSCD-style score normalisation.

Images mixed into a query (image overlays, picture-in-picture backgrounds) come from the
held-out pool, never from the references, so a query never contains a second registered work.

Some eval images are versions of one work (a wallpaper shipped at several aspect ratios, frames
of one clip, one test photo at several sizes). ``groups`` maps each such image to its work: the
split keeps a work on one side (an unregistered query never has a registered sibling), and a
copy query's predictions of the other registered versions of its work are ignored: neither
true nor false (DISC21 has one true reference per query; finding a sibling is no error).

Any method that yields ``(query index, reference index, score)`` predictions is scored the same
way by ``score_predictions``: our descriptor, PDQ, pHash.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from copytrace.eval.edits import ALL_FAMILIES, FAMILIES, apply_edit
from copytrace.eval.metrics import (
    evaluate,
    operating_point_at,
    precision_recall,
    recall_at_precision,
)

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff")
SET_VERSION = 3


@dataclass(frozen=True)
class ImageSetConfig:
    """How the benchmark set is drawn. ``max_side`` caps query sources before editing (speed)."""

    n_copies: int = 600
    n_unregistered: int = 600
    min_refs: int = 1500
    n_background: int = 1000
    seed: int = 0
    max_side: int = 768
    query_quality: int = 95
    families: tuple[str, ...] = FAMILIES

    def __post_init__(self) -> None:
        if self.n_copies < 1 or self.n_unregistered < 0:
            raise ValueError("need n_copies >= 1 and n_unregistered >= 0")
        if self.min_refs < 1 or self.n_background < 0:
            raise ValueError("need min_refs >= 1 and n_background >= 0")
        if self.max_side < 64 or not 50 <= self.query_quality <= 100:
            raise ValueError("max_side must be >= 64 and query_quality within 50..100")
        unknown = set(self.families) - set(ALL_FAMILIES)
        if unknown or not self.families:
            raise ValueError(f"unknown edit families {sorted(unknown)}; known: {ALL_FAMILIES}")


@dataclass(frozen=True)
class Query:
    """One query image. ``ref`` is the index of the reference it copies, or None."""

    name: str
    path: str
    family: str
    source: str
    ref: int | None
    other: str | None


@dataclass(frozen=True)
class ImageSet:
    root: str
    refs: tuple[str, ...]
    queries: tuple[Query, ...]
    background: tuple[str, ...]
    manifest: dict
    ref_groups: tuple[str, ...] = ()

    def gt_pairs(self) -> set[tuple[int, int]]:
        """(query, reference) pairs that are copies: one per copy query."""
        return {(i, q.ref) for i, q in enumerate(self.queries) if q.ref is not None}

    def ignored_pairs(self) -> set[tuple[int, int]]:
        """Copy query x another registered version of its work: scored neither way."""
        members: dict[str, list[int]] = {}
        for j, g in enumerate(self.ref_groups):
            members.setdefault(g, []).append(j)
        pairs = set()
        for i, q in enumerate(self.queries):
            if q.ref is not None and self.ref_groups:
                pairs.update((i, j) for j in members[self.ref_groups[q.ref]] if j != q.ref)
        return pairs

    def write_lists(self, directory: Path) -> None:
        """Plain path lists (one per line) for peer runners in other venvs."""
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "refs.txt").write_text("".join(p + "\n" for p in self.refs))
        (directory / "queries.txt").write_text("".join(q.path + "\n" for q in self.queries))


def list_images(directory: str | os.PathLike) -> list[str]:
    """Image files under ``directory`` (recursive, by suffix), sorted, absolute."""
    root = Path(directory)
    if not root.is_dir():
        raise FileNotFoundError(f"image directory {root} does not exist")
    return sorted(
        str(p.resolve()) for p in root.rglob("*")
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
    )


# Source paths (from the eval manifest) whose images are versions of one work; group 1 names it.
WORK_GROUP_PATTERNS = (
    re.compile(r"^(.*/wallpapers/[^/]+)/contents/images/"),  # one wallpaper, many aspect ratios
    re.compile(r"^(.*/video_frames)/"),  # frames of one clip
    re.compile(r"^(.*/video_annotation/data_annotated)/"),
    re.compile(r"^(.*/jxl/flower)/"),  # one test photo at several sizes and crops
)


def work_groups_from_manifest(image_dir: str | os.PathLike) -> dict[str, str]:
    """Map image path -> work id, from ``<image_dir>/manifest.json`` (stage_images.py's); a
    record's own ``work`` field (stage_photos.py writes one) wins over the path patterns."""
    mf = Path(image_dir) / "manifest.json"
    if not mf.is_file():
        return {}
    groups = {}
    for rec in json.loads(mf.read_text()).get("images", []):
        src = rec.get("work") or f"{rec.get('package', '')}:{rec.get('source_path', '')}"
        for pat in () if rec.get("work") else WORK_GROUP_PATTERNS:
            m = pat.match(rec.get("source_path", ""))
            if m:
                src = f"{rec.get('package', '')}:{m.group(1)}"
                break
        groups[str((Path(image_dir) / rec["file"]).resolve())] = src
    return groups


def _digest(paths: list[str]) -> str:
    """Names, sizes and mtimes: a re-staged pool may reuse names for new content."""
    h = hashlib.sha256()
    for p in paths:
        st = os.stat(p)
        h.update(f"{p}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def _load_capped(path: str, max_side: int):
    from copytrace.media.image import load_image

    im = load_image(path, draft_size=max_side)
    if max(im.size) > max_side:
        from PIL import Image

        k = max_side / max(im.size)
        im = im.resize((max(1, round(im.size[0] * k)), max(1, round(im.size[1] * k))), Image.LANCZOS)
    return im


def _make_query(job: tuple[str, str, str | None, str, int, int, int, int]) -> None:
    source, family, other, out_path, seed, index, max_side, quality = job
    rng = np.random.default_rng([seed, index])
    image = _load_capped(source, max_side)
    other_image = _load_capped(other, max_side) if other else None
    edited = apply_edit(family, image, rng, other_image)
    tmp = out_path + ".tmp"
    edited.save(tmp, format="JPEG", quality=quality)
    os.replace(tmp, out_path)


def build_image_set(
    eval_paths: list[str],
    distract_paths: list[str],
    out_dir: str | os.PathLike,
    cfg: ImageSetConfig = ImageSetConfig(),
    workers: int = 2,
    groups: dict[str, str] | None = None,
) -> ImageSet:
    """Draw the set from ``eval_paths`` (+ distractors) and write the query images; cached.

    ``groups`` maps eval paths to work ids (see ``work_groups_from_manifest``); paths not in it
    are works of their own.
    """
    root = Path(out_dir)
    group_of = {p: (groups or {}).get(p, p) for p in eval_paths}
    key = {
        "version": SET_VERSION, "config": {**asdict(cfg), "families": list(cfg.families)},
        "eval_digest": _digest(eval_paths), "distract_digest": _digest(distract_paths),
        "groups_digest": hashlib.sha256(json.dumps(sorted(group_of.items())).encode()).hexdigest()[:16],
    }
    cached = load_image_set(root)
    if cached is not None and cached.manifest.get("key") == key:
        log.info("reusing the benchmark set in %s", root)
        return cached

    rng = np.random.default_rng(cfg.seed)
    works: dict[str, list[str]] = {}
    for p in eval_paths:
        works.setdefault(group_of[p], []).append(p)
    work_ids = sorted(works)
    pool = [p for i in rng.permutation(len(work_ids)) for p in works[work_ids[i]]]
    distract = [distract_paths[i] for i in rng.permutation(len(distract_paths))]
    # Held-out eval images: the sources of unregistered queries and the "other" images mixed
    # into queries. A third of the pool at most, so most eval images stay references; the cut
    # moves to a work boundary so no work is on both sides.
    n_held = min(max(cfg.n_unregistered, 2), len(pool) // 3)
    while 0 < n_held < len(pool) and group_of[pool[n_held]] == group_of[pool[n_held - 1]]:
        n_held += 1
    if n_held < 2 or n_held >= len(pool):
        raise ValueError(f"only {len(pool)} eval images in {len(works)} works: need more")
    held, eval_refs = pool[:n_held], pool[n_held:]
    n_pad = max(0, cfg.min_refs - len(eval_refs))
    if n_pad > len(distract):
        raise ValueError(
            f"{len(eval_refs)} eval references need {n_pad} distractors to reach {cfg.min_refs}, "
            f"but the distractor pool has {len(distract)}: pass a larger --distract-dir"
        )
    refs = eval_refs + distract[:n_pad]
    # The background (score normalisation) takes what the references left of the pool.
    background = distract[n_pad : n_pad + cfg.n_background]
    if len(background) < cfg.n_background:
        log.warning("background has %d images, fewer than the %d asked", len(background), cfg.n_background)

    copy_refs = rng.choice(len(eval_refs), size=cfg.n_copies, replace=cfg.n_copies > len(eval_refs))
    fam = list(cfg.families)
    specs: list[tuple[str, str, int | None]] = []  # (source, family, ref)
    for j, r in enumerate(copy_refs):
        specs.append((eval_refs[int(r)], fam[j % len(fam)], int(r)))
    for j in range(cfg.n_unregistered):
        specs.append((held[j % n_held], fam[(j + len(fam) // 2) % len(fam)], None))
    order = rng.permutation(len(specs))  # mix copies and unregistered; names carry no label
    qdir = root / "queries"
    qdir.mkdir(parents=True, exist_ok=True)
    queries, jobs = [], []
    for n, i in enumerate(order):
        source, family, ref = specs[int(i)]
        other = held[int(rng.integers(0, n_held))]
        if other == source:
            other = held[(held.index(other) + 1) % n_held]
        path = str((qdir / f"q{n:05d}.jpg").resolve())
        queries.append(Query(f"q{n:05d}", path, family, source, ref, other))
        jobs.append((source, family, other, path, cfg.seed, n, cfg.max_side, cfg.query_quality))

    log.info("editing %d queries with %d workers", len(jobs), workers)
    if workers > 1:
        with ProcessPoolExecutor(workers) as ex:
            list(ex.map(_make_query, jobs, chunksize=16))
    else:
        for job in jobs:
            _make_query(job)

    manifest = {
        "key": key,
        "counts": {
            "refs": len(refs), "eval_refs": len(eval_refs), "distractor_refs": n_pad,
            "queries": len(queries), "copies": cfg.n_copies, "unregistered": cfg.n_unregistered,
            "held_out_sources": n_held, "background": len(background),
        },
    }
    ref_groups = [group_of.get(p, p) for p in refs]
    manifest["counts"]["eval_works_with_several_refs"] = sum(
        1 for g in set(ref_groups) if ref_groups.count(g) > 1
    )
    data = {
        "manifest": manifest, "refs": refs, "background": background,
        "queries": [asdict(q) for q in queries], "ref_groups": ref_groups,
    }
    tmp = root / "set.json.tmp"
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, root / "set.json")
    return ImageSet(str(root), tuple(refs), tuple(queries), tuple(background), manifest,
                    tuple(ref_groups))


def load_image_set(out_dir: str | os.PathLike) -> ImageSet | None:
    p = Path(out_dir) / "set.json"
    if not p.is_file():
        return None
    data = json.loads(p.read_text())
    queries = tuple(Query(**q) for q in data["queries"])
    if not all(os.path.isfile(q.path) for q in queries):
        return None
    return ImageSet(str(out_dir), tuple(data["refs"]), queries, tuple(data["background"]),
                    data["manifest"], tuple(data.get("ref_groups", data["refs"])))


# --- search ---------------------------------------------------------------------------------


def exact_topk(queries: np.ndarray, refs: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact inner-product search: (similarities [Nq, k], indices [Nq, k]), best first."""
    k = min(k, refs.shape[0])
    sims_out = np.empty((queries.shape[0], k), np.float32)
    idx_out = np.empty((queries.shape[0], k), np.int64)
    for s in range(0, queries.shape[0], 1024):
        sims = queries[s : s + 1024] @ refs.T
        part = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        ps = np.take_along_axis(sims, part, axis=1)
        o = np.argsort(-ps, axis=1, kind="stable")
        idx_out[s : s + 1024] = np.take_along_axis(part, o, axis=1)
        sims_out[s : s + 1024] = np.take_along_axis(ps, o, axis=1)
    return sims_out, idx_out


def background_similarity(queries: np.ndarray, background: np.ndarray, k: int) -> np.ndarray:
    """Similarity of each query to its k-th nearest background image (SSCD normalisation)."""
    sims, _ = exact_topk(queries, background, k)
    return sims[:, k - 1]


# --- scoring --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Predictions:
    """Pooled predictions: row i says query ``query[i]`` matches reference ``ref[i]``."""

    query: np.ndarray
    ref: np.ndarray
    score: np.ndarray

    @classmethod
    def from_topk(cls, sims: np.ndarray, idx: np.ndarray) -> Predictions:
        nq, k = idx.shape
        return cls(np.repeat(np.arange(nq), k), idx.reshape(-1), sims.reshape(-1).astype(np.float64))

    def subset(self, keep_queries: np.ndarray) -> Predictions:
        m = np.isin(self.query, keep_queries)
        return Predictions(self.query[m], self.ref[m], self.score[m])


def _top1(pred: Predictions, n_queries: int) -> np.ndarray:
    top = np.full(n_queries, -np.inf)
    np.maximum.at(top, pred.query, pred.score)
    return top


def score_predictions(
    image_set: ImageSet, pred: Predictions, threshold: float | None = None
) -> dict:
    """µAP, recall@P90, rank-1 overall and per family; precision and FP rate at ``threshold``."""
    ignored = image_set.ignored_pairs()
    if ignored:
        keep = np.fromiter(((q, r) not in ignored for q, r in zip(pred.query.tolist(), pred.ref.tolist())),
                           dtype=bool, count=pred.query.shape[0])
        pred = Predictions(pred.query[keep], pred.ref[keep], pred.score[keep])
    gt = image_set.gt_pairs()
    qs = image_set.queries
    overall = evaluate(pred.query.tolist(), pred.ref.tolist(), pred.score, gt)
    pr = precision_recall(pred.query.tolist(), pred.ref.tolist(), pred.score, gt)
    p90 = recall_at_precision(pr, 0.9)
    top1 = _top1(pred, len(qs))
    unreg = np.array([i for i, q in enumerate(qs) if q.ref is None], dtype=np.int64)
    report: dict = {"overall": overall.to_json()}
    if threshold is not None:
        at = operating_point_at(pr, threshold)
        report["at_threshold"] = {
            "threshold": threshold, "precision": round(at.precision, 6), "recall": round(at.recall, 6),
            "unregistered_above": round(float(np.mean(top1[unreg] >= threshold)), 6)
            if unreg.size else None,
        }
    # Where a threshold would have to sit for stricter precision targets (calibration aid).
    report["operating_points"] = {
        f"p{round(100 * p)}": {"threshold": op.threshold if np.isfinite(op.threshold) else None,
                               "recall": round(op.recall, 6)}
        for p in (0.9, 0.95, 0.99)
        for op in [recall_at_precision(pr, p)]
    }
    report["unregistered_above_p90_threshold"] = (
        round(float(np.mean(top1[unreg] >= p90.threshold)), 6) if unreg.size else None
    )
    families: dict = {}
    for fam in sorted({q.family for q in qs}):
        members = np.array([i for i, q in enumerate(qs) if q.family == fam], dtype=np.int64)
        fam_gt = {(i, r) for i, r in gt if qs[i].family == fam}
        if not fam_gt:
            continue
        sub = pred.subset(members)
        res = evaluate(sub.query.tolist(), sub.ref.tolist(), sub.score, fam_gt)
        # Also at the overall P90 cut: what one global threshold buys this family.
        sub_pr = precision_recall(sub.query.tolist(), sub.ref.tolist(), sub.score, fam_gt)
        families[fam] = {
            "n_copies": len(fam_gt), "n_unregistered": int(sum(qs[i].ref is None for i in members)),
            "micro_ap": round(res.micro_ap, 6), "recall_at_p90": round(res.recall_at_p90, 6),
            "rank1": round(res.rank1, 6),
            "recall_at_global_p90": round(operating_point_at(sub_pr, p90.threshold).recall, 6),
        }
    report["families"] = families
    return report

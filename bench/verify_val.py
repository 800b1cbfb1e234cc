"""Choose local verification's settings on validation data only (train packages, never eval).

    python bench/verify_val.py --out out/verify_val

The set: the 386 val-split images of data/images/train/manifest.json, read again from their
staged sources (.stage/pkgs, full resolution; the gcompris .rcc members are skipped) and capped
at 640 px like the eval pool, are the works; train-split images of the same packages (not val)
pad the references to --min-refs. Queries are made by copytrace.eval.image_bench exactly as the
eval benchmark makes its own (same edit families, half copies, half unregistered). For every
query the top-k cosine candidates are verified; the script then grid-searches the combination
``cosine + bonus * clip((inliers - a) / (b - a), 0, 1)`` for the best µAP and calibrates the
threshold of the combined score (precision 0.99 on this set, as the registry's cosine
threshold was calibrated). Writes <out>/val_choice.json and prints a table.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import time
from pathlib import Path

import numpy as np
from images import cached_descriptors, resolve_spec  # bench/ is on sys.path when run as a script

from copytrace.eval.image_bench import (
    ImageSetConfig,
    Predictions,
    build_image_set,
    exact_topk,
    score_predictions,
)
from copytrace.eval.metrics import precision_recall, recall_at_precision
from copytrace.verify import LocalVerifier, VerifyConfig, verified_score
from copytrace.verify.batch import verify_topk

ROOT = Path(__file__).resolve().parent.parent
log = logging.getLogger("bench.verify_val")


def stage_val(manifest: Path, pkgs: Path, out: Path, n_distract: int, seed: int) -> tuple[list[str], list[str]]:
    """Val sources -> <out>/val, train sources (same packages) -> <out>/distract; JPEG q95, 640 px."""
    from copytrace.errors import MediaError
    from copytrace.media.image import load_image

    recs = json.loads(manifest.read_text())["images"]
    rng = np.random.default_rng(seed)
    train = [r for r in recs if r["split"] == "train"]
    picks = {"val": [r for r in recs if r["split"] == "val"],
             "distract": [train[i] for i in rng.permutation(len(train))]}
    paths: dict[str, list[str]] = {}
    for split, rs in picks.items():
        d = out / split
        d.mkdir(parents=True, exist_ok=True)
        got = []
        for r in rs:
            if split == "distract" and len(got) >= n_distract:
                break
            dst = d / f"{r['id']}.jpg"
            if not dst.is_file():
                src = pkgs / r["package"] / r["source_path"]
                if not src.is_file():
                    continue
                try:
                    im = load_image(str(src))
                except MediaError:
                    continue
                if min(im.size) < 128:
                    continue
                im.thumbnail((640, 640))
                im.save(dst, "JPEG", quality=95)
            got.append(str(dst.resolve()))
        paths[split] = sorted(got)
    return paths["val"], paths["distract"]


def evaluate(image_set, sims, idx, thr=None) -> dict:
    r = score_predictions(image_set, Predictions.from_topk(sims, idx), thr)
    o = r["overall"]
    return {"micro_ap": o["micro_ap"], "recall_at_p90": o["recall_at_p90"], "rank1": o["rank1"],
            "families": {f: (x["recall_at_p90"], x["rank1"]) for f, x in r["families"].items()},
            "at_threshold": r.get("at_threshold")}


def threshold_for(image_set, sims, idx, precision: float) -> float:
    pred = Predictions.from_topk(sims, idx)
    gt = image_set.gt_pairs()
    pr = precision_recall(pred.query.tolist(), pred.ref.tolist(), pred.score, gt)
    return float(recall_at_precision(pr, precision).threshold)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="out/verify_val")
    ap.add_argument("--stage", default=str(ROOT / ".stage" / "verify_val"))
    ap.add_argument("--model", default="ct-image-r18s")
    ap.add_argument("--backend", default="openvino")
    ap.add_argument("--detector", action="append", default=None, choices=["sift", "orb"])
    ap.add_argument("--top-k", type=int, default=10)
    ap.add_argument("--min-refs", type=int, default=800)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    val, distract = stage_val(ROOT / "data/images/train/manifest.json", ROOT / ".stage/pkgs",
                              Path(args.stage), args.min_refs, args.seed)
    log.info("val works %d, train-package distractors %d", len(val), len(distract))
    cfg = ImageSetConfig(n_copies=600, n_unregistered=600, min_refs=args.min_refs, n_background=0,
                         seed=args.seed)
    image_set = build_image_set(val, distract, out / "set", cfg, workers=2)

    from copytrace.runtime import load_encoder

    spec = resolve_spec(args.model)
    encoder = load_encoder(spec, args.backend, "fp32", 0)
    cache = out / "descriptors"
    refs, _ = cached_descriptors(cache, encoder, spec, list(image_set.refs))
    queries, _ = cached_descriptors(cache, encoder, spec, [q.path for q in image_set.queries])
    sims, idx = exact_topk(queries, refs, args.top_k)
    spec_thr = float(spec.threshold_similarity)
    report: dict = {"set": image_set.manifest["counts"], "seed": args.seed,
                    "cosine": evaluate(image_set, sims, idx, spec_thr),
                    "cosine_threshold_p99_on_val": threshold_for(image_set, sims, idx, 0.99)}
    log.info("cosine only: %s", {k: v for k, v in report["cosine"].items() if k != "families"})

    qpaths = [q.path for q in image_set.queries]
    for det in args.detector or ["orb", "sift"]:
        vcfg = VerifyConfig(detector=det)
        f = out / f"inliers-{det}.npz"
        if f.is_file():
            d = np.load(f)
            inl, query_s = d["inliers"], d["query_s"]
        else:
            t0 = time.perf_counter()
            res = verify_topk(LocalVerifier(vcfg), qpaths, list(image_set.refs), idx, args.top_k)
            log.info("%s: verified in %.0f s", det, time.perf_counter() - t0)
            inl, query_s = res.inliers, res.query_s
            np.savez(f, inliers=inl, query_s=query_s, ref_features_s=res.ref_features_s)
        grid = []
        for a in (3, 4, 6, 8, 10, 12, 15):
            for b in (a + 5, a + 10, a + 20, a + 40, a + 80):
                for bonus in (0.1, 0.2, 0.3, 0.5, 1.0, 2.0):
                    c = VerifyConfig(detector=det, min_inliers=a, full_inliers=b, bonus=bonus)
                    s = verified_score(sims, np.maximum(inl, 0), c)
                    r = evaluate(image_set, s, idx)
                    grid.append({"min_inliers": a, "full_inliers": b, "bonus": bonus,
                                 "micro_ap": r["micro_ap"], "recall_at_p90": r["recall_at_p90"]})
        grid.sort(key=lambda g: (-g["micro_ap"], -g["recall_at_p90"]))
        best = grid[0]
        c = VerifyConfig(detector=det, min_inliers=best["min_inliers"],
                         full_inliers=best["full_inliers"], bonus=best["bonus"])
        s = verified_score(sims, np.maximum(inl, 0), c)
        thr = threshold_for(image_set, s, idx, 0.99)
        report[det] = {"best": best, "top5": grid[:5], "threshold_p99_on_val": thr,
                       "verified": evaluate(image_set, s, idx, thr),
                       "median_query_ms": round(1000 * float(np.median(query_s)), 1),
                       "inliers_true_median": float(np.median(inl[[q.ref is not None for q in image_set.queries], 0])),
                       }
        log.info("%s best %s thr %.3f", det, best, thr)
    (out / "val_choice.json").write_text(json.dumps(report, indent=1))
    print(json.dumps({k: v for k, v in report.items()}, indent=1)[:6000])


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    main()

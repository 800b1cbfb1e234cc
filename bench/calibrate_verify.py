"""Refit the still-image decision threshold and score scale on validation data only (issue 20).

    python bench/verify_val.py --out out/verify_val --detector sift     # the val set + inliers
    python bench/calibrate_verify.py --val out/verify_val --out out/calibrate_verify

Input: bench/verify_val.py's set (the val split of the *train* packages as works, train-split
images of the same packages as distractors, queries edited like the eval benchmark's), its
cached descriptors and RootSIFT inlier counts. Never the eval or photograph sets.

1. Combined score of every (query, top-k candidate): the shipped verifier's rule
   (``cosine + bonus * clip((inliers - 3) / 40, 0, 1)``).
2. Label noise: a top candidate above ``--audit-above`` that the set calls false is checked on
   the *unedited* images: when the query's source and that reference verify with at least
   ``--same-inliers`` inliers, or their whole-image cosine is at least ``--same-cosine``, they
   are one picture in two packages (a train image that is a version of a val image); the pair
   is then ignored (neither true nor false), as the benchmark ignores a work's other versions.
3. Threshold: the lowest combined score at which precision over all predictions at or above it
   is at least ``--precision`` (0.99); the engine's score 0.5 sits there.
4. Score scale: the slope ``a`` of ``P(top-1 is the right reference) = sigmoid(a * (combined -
   threshold))`` fitted by maximum likelihood on each query's top-1 (its intercept fixed so
   that 0.5 stays at the threshold).

Writes <out>/calibration.json with the registry keys to set and the val numbers.
"""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np
from images import cached_descriptors, resolve_spec  # bench/ is on sys.path when run as a script

from copytrace.eval.image_bench import (
    ImageSet,
    Predictions,
    exact_topk,
    load_image_set,
    score_predictions,
)
from copytrace.eval.metrics import precision_recall, recall_at_precision
from copytrace.verify import LocalVerifier, VerifyConfig, verified_score

log = logging.getLogger("bench.calibrate_verify")


def audit_false_pairs(image_set: ImageSet, scores: np.ndarray, idx: np.ndarray, above: float,
                      same_inliers: int, same_cosine: float, desc_of) -> tuple[set, list[dict]]:
    """(query, ref) pairs scored >= ``above`` that the set calls false but whose unedited
    images are one picture. ``desc_of(path)`` gives a whole-image descriptor."""
    ver = LocalVerifier(VerifyConfig())
    ignored, audit = set(), []
    feats: dict[str, object] = {}

    def f(p: str):
        if p not in feats:
            feats[p] = ver.features(p, query=True)
        return feats[p]

    for i, q in enumerate(image_set.queries):
        for c in range(idx.shape[1]):
            j = int(idx[i, c])
            if scores[i, c] < above or q.ref == j:
                continue
            src, ref = q.source, image_set.refs[j]
            inl = ver.verify_features(f(src), f(ref)).inliers
            cos = float(desc_of(src) @ desc_of(ref))
            same = inl >= same_inliers or cos >= same_cosine
            audit.append({"query": q.name, "family": q.family, "source": src, "ref": ref,
                          "score": round(float(scores[i, c]), 4), "originals_inliers": int(inl),
                          "originals_cosine": round(cos, 4), "same_picture": bool(same)})
            if same:
                ignored.add((i, j))
    return ignored, audit


def wilson_lower(tp: np.ndarray, n: np.ndarray, z: float = 1.96) -> np.ndarray:
    """95% Wilson score lower bound of a proportion tp / n."""
    n = np.maximum(n, 1)
    p = tp / n
    return (p + z * z / (2 * n) - z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))) / (1 + z * z / n)


def wilson_threshold(pred: Predictions, gt: set, precision: float) -> float:
    """Lowest score at which the 95% lower bound of precision (over predictions at or above
    it) is still >= ``precision``: a point estimate from a handful of false positives is too
    optimistic a promise for other data."""
    order = np.argsort(-pred.score, kind="stable")
    s = pred.score[order]
    hit = np.array([(int(q), int(r)) in gt for q, r in zip(pred.query[order], pred.ref[order])])
    tp, n = np.cumsum(hit), np.arange(1, len(s) + 1)
    ends = np.flatnonzero(np.r_[s[1:] != s[:-1], True])  # cut only between distinct scores
    ok = ends[wilson_lower(tp[ends], n[ends]) >= precision]
    if ok.size == 0:
        raise SystemExit(f"no threshold reaches a precision bound of {precision} on this set")
    return float(s[ok[-1]])  # the lowest score whose cut still keeps the bound


def fit_slope(x: np.ndarray, y: np.ndarray) -> float:
    """ML slope of sigmoid(a * x) for labels y (x already centred on the threshold)."""
    a = 10.0
    for _ in range(100):  # Newton on the 1-D log-likelihood (concave in a)
        p = 1 / (1 + np.exp(-a * x))
        g = float(np.sum((y - p) * x))
        h = float(-np.sum(p * (1 - p) * x * x))
        if h == 0:
            break
        step = g / h
        a -= step
        if abs(step) < 1e-6:
            break
    return float(a)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--val", default="out/verify_val", help="bench/verify_val.py's --out")
    ap.add_argument("--out", default="out/calibrate_verify")
    ap.add_argument("--model", default="ct-image-r18s")
    ap.add_argument("--backend", default="openvino")
    ap.add_argument("--precision", type=float, default=0.99)
    ap.add_argument("--bound", default="wilson", choices=["wilson", "point"],
                    help="wilson: the 95%% lower bound of val precision must reach --precision "
                         "(default); point: the measured precision itself")
    ap.add_argument("--audit-above", type=float, default=0.6)
    ap.add_argument("--same-inliers", type=int, default=25)
    ap.add_argument("--same-cosine", type=float, default=0.9)
    ap.add_argument("--top-k", type=int, default=10)
    ap.add_argument("--fixed-threshold", type=float, default=None,
                    help="keep this threshold and fit only the slope around it")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    val, out = Path(args.val), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    image_set = load_image_set(val / "set")
    if image_set is None:
        raise SystemExit(f"no benchmark set under {val / 'set'}: run bench/verify_val.py first")
    inl_f = val / "inliers-sift.npz"
    if not inl_f.is_file():
        raise SystemExit(f"{inl_f} missing: run bench/verify_val.py --detector sift first")

    from copytrace.runtime import load_encoder

    spec = resolve_spec(args.model)
    encoder = load_encoder(spec, args.backend, "fp32", 0)
    cache = val / "descriptors"
    refs, _ = cached_descriptors(cache, encoder, spec, list(image_set.refs))
    queries, _ = cached_descriptors(cache, encoder, spec, [q.path for q in image_set.queries])
    sources = sorted({q.source for q in image_set.queries})
    src_desc, _ = cached_descriptors(cache, encoder, spec, sources)
    desc = dict(zip(list(image_set.refs), refs)) | dict(zip(sources, src_desc))
    sims, idx = exact_topk(queries, refs, args.top_k)
    inl = np.load(inl_f)["inliers"]
    cfg = VerifyConfig()
    scores = verified_score(sims, np.maximum(inl, 0), cfg).astype(np.float32)

    ignored, audit = audit_false_pairs(image_set, scores, idx, args.audit_above, args.same_inliers,
                                       args.same_cosine, desc.__getitem__)
    log.info("audited %d false pairs above %.2f: %d are one picture", len(audit), args.audit_above, len(ignored))
    keep = np.array([[(i, int(idx[i, c])) not in ignored for c in range(idx.shape[1])]
                     for i in range(idx.shape[0])])
    pred = Predictions.from_topk(np.where(keep, scores, -np.inf), idx)
    m = np.isfinite(pred.score)
    pred = Predictions(pred.query[m], pred.ref[m], pred.score[m])
    gt = image_set.gt_pairs()
    pr = precision_recall(pred.query.tolist(), pred.ref.tolist(), pred.score, gt)
    thr_point = float(recall_at_precision(pr, args.precision).threshold)
    thr = wilson_threshold(pred, gt, args.precision) if args.bound == "wilson" else thr_point
    if args.fixed_threshold is not None:
        thr = args.fixed_threshold  # only the slope is fitted, around this threshold
    raw = Predictions.from_topk(scores, idx)
    raw_pr = precision_recall(raw.query.tolist(), raw.ref.tolist(), raw.score, gt)
    thr_raw = float(recall_at_precision(raw_pr, args.precision).threshold)

    # Top-1 of every query (after the audit): is it the right reference?
    top_s = np.where(keep, scores, -np.inf).max(axis=1)
    top_j = idx[np.arange(len(idx)), np.where(keep, scores, -np.inf).argmax(axis=1)]
    y = np.array([q.ref is not None and q.ref == int(j) for q, j in zip(image_set.queries, top_j)], float)
    ok = np.isfinite(top_s)
    slope = fit_slope(top_s[ok] - thr, y[ok])

    before = score_predictions(image_set, Predictions.from_topk(scores, idx), cfg.threshold_score)
    after = score_predictions(image_set, Predictions.from_topk(scores, idx), thr)
    report = {
        "val_set": str(val), "counts": image_set.manifest["counts"],
        "verify_config": {"min_inliers": cfg.min_inliers, "full_inliers": cfg.full_inliers, "bonus": cfg.bonus},
        "target_precision": args.precision,
        "audit": {"above": args.audit_above, "same_inliers": args.same_inliers,
                  "same_cosine": args.same_cosine, "pairs": len(audit), "one_picture": len(ignored),
                  "pairs_list": audit},
        "threshold_before": cfg.threshold_score,
        "threshold_without_audit": round(thr_raw, 4),
        "threshold_point_estimate": round(thr_point, 4), "bound": args.bound,
        "verify_threshold_similarity": round(thr, 4),
        "verify_score_slope": round(slope, 3),
        "val_at_old_threshold": before["at_threshold"],
        "val_at_new_threshold_raw_labels": after["at_threshold"],
        "val_at_new_threshold_audited": {
            "precision": round(float(np.mean([(int(q), int(r)) in gt for q, r, s in
                                               zip(pred.query, pred.ref, pred.score) if s >= thr])), 6),
            "recall": round(float(sum(1 for q, r, s in zip(pred.query, pred.ref, pred.score)
                                      if s >= thr and (int(q), int(r)) in gt) / max(1, len(gt))), 6)},
        "top1_correct_share_below_new_threshold": round(float(np.mean(top_s[y == 1] < thr)), 4),
    }
    (out / "calibration.json").write_text(json.dumps(report, indent=1))
    print(json.dumps({k: v for k, v in report.items() if k != "audit"} | {
        "audit": {k: v for k, v in report["audit"].items() if k != "pairs_list"}}, indent=1))


if __name__ == "__main__":
    main()

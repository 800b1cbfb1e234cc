"""Score a finished `bench/images.py --regions` run at the registry's current calibration.

    python bench/rescore_images.py --out out/bench_photos [--model ct-image-r18s]

bench/images.py --regions saves every query's candidates, cosines and inlier counts
(<out>/regions_scores.npz: whole image and whole + regions). This recombines them with the
model entry's verifier settings (``verify_threshold_similarity``, ``verify_bonus``) without
describing or verifying again, and reports three rows at that threshold:

- whole image + verification (the engine with ``query_regions=False``);
- whole + regions for every query (the whole image's verified candidates and the boxes'
  together, each reference at its best score, as the engine merges them);
- **engine**: regions only for queries whose whole image has no candidate at the threshold
  (what ``EngineConfig.query_regions`` does).

Writes <out>/rescored.json and <out>/rescored.md.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from images import resolve_spec  # bench/ is on sys.path when run as a script

from copytrace.eval.image_bench import Predictions, load_image_set, score_predictions
from copytrace.verify import VerifyConfig, verified_score


def union_topk(s1: np.ndarray, i1: np.ndarray, s2: np.ndarray, i2: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
    """Per query, each reference's best score over two candidate lists, the best k kept."""
    k = s1.shape[1]
    out_s = np.full_like(s1, -np.inf)
    out_i = np.zeros_like(i1)
    for q in range(s1.shape[0]):
        best: dict[int, float] = {}
        for s, j in zip(np.concatenate([s1[q], s2[q]]).tolist(), np.concatenate([i1[q], i2[q]]).tolist()):
            if s > best.get(j, -np.inf):
                best[j] = s
        ranked = sorted(best.items(), key=lambda kv: -kv[1])[:k]
        out_i[q, :len(ranked)] = [j for j, _ in ranked]
        out_s[q, :len(ranked)] = [v for _, v in ranked]
    return out_s, out_i


def rows(out: Path, model: str, threshold: float | None = None, same_folder: str | None = None,
         eval_dir: str | None = None) -> dict:
    image_set = load_image_set(out / "set")
    if image_set is None:
        raise SystemExit(f"no benchmark set under {out / 'set'}")
    f = out / "regions_scores.npz"
    if not f.is_file():
        raise SystemExit(f"{f} missing: run bench/images.py with --regions first")
    a = np.load(f)
    spec = resolve_spec(model)
    kw = {k: v for k, v in (("threshold_score", spec.verify_threshold_similarity),
                            ("bonus", spec.verify_bonus)) if v is not None}
    if threshold is not None:
        kw["threshold_score"] = threshold
    cfg = VerifyConfig(**kw)
    thr = cfg.threshold_score
    whole = verified_score(a["whole_sims"], a["whole_inliers"], cfg)
    merged = verified_score(a["sims"], a["inliers"], cfg)
    merged[a["sims"] <= -1.0] = -np.inf
    wi, mi = a["whole_idx"], a["idx"]
    use_regions = whole.max(axis=1) < thr  # the engine's rule: regions only when nothing passes
    out_rows = {}
    if same_folder:
        # Diagnostic: a query and a reference from one source folder matching the pattern
        # (dlib's johns: face chips of one person, frames of one clip) count as siblings:
        # their pairs are dropped, neither true nor false.
        import re

        from images import source_labels

        pat = re.compile(same_folder)
        labels = source_labels([eval_dir])
        for s_, j_ in ((whole, wi), (merged, mi)):
            for q in range(j_.shape[0]):
                a_ = labels.get(image_set.queries[q].source, "")
                if not pat.search(a_):
                    continue
                for c in range(j_.shape[1]):
                    r_ = int(j_[q, c])
                    if r_ != image_set.queries[q].ref and labels.get(image_set.refs[r_], "") == a_:
                        s_[q, c] = -np.inf
    # The merged list was cut to k by cosine before verification, so box hits could push a
    # whole-image candidate out unverified (a strong crop's own reference: crop 1.00 -> 0.88).
    # The engine keeps the whole image's verified candidates and adds the boxes' (issue 20).
    merged, mi = union_topk(whole, wi, merged, mi)
    eng = np.where(use_regions[:, None], merged, whole)
    eidx = np.where(use_regions[:, None], mi, wi)
    for name, s, j in (("whole + verification", whole, wi), ("whole + regions (every query)", merged, mi),
                       ("engine: regions when the whole image finds nothing", eng, eidx)):
        r = score_predictions(image_set, Predictions.from_topk(s.astype(np.float32), j), thr)
        unreg = [i for i, q in enumerate(image_set.queries) if q.ref is None]
        top = s.max(axis=1)
        r["highest_unregistered_combined"] = round(float(np.max(top[unreg])), 4) if unreg else None
        copies = [i for i, q in enumerate(image_set.queries) if q.ref is not None]
        right = [i for i in copies if int(j[i, int(np.argmax(s[i]))]) == image_set.queries[i].ref]
        r["top1_right_but_below_threshold"] = int(sum(top[i] < thr for i in right))
        out_rows[name] = r
    return {"threshold_score": thr, "bonus": cfg.bonus, "model": spec.model_id,
            "queries_searching_regions": round(float(np.mean(use_regions)), 4), "rows": out_rows,
            "counts": image_set.manifest["counts"], "same_folder_siblings": same_folder}


def markdown(res: dict) -> str:
    c = res["counts"]
    lines = [(f"Set: {c['refs']} references, {c['queries']} queries ({c['copies']} copies, "
             f"{c['unregistered']} unregistered). Threshold {res['threshold_score']} on the combined "
             f"score ({res['model']}); regions searched by {res['queries_searching_regions']:.0%} of "
             "queries under the engine rule."), "",
             ("| method | µAP | recall@P90 | top-1 | precision@thr | recall@thr | unregistered ≥ thr | "
             "top-1 right, below thr |"), "|---|---|---|---|---|---|---|---|"]
    for name, r in res["rows"].items():
        o, t = r["overall"], r["at_threshold"]
        lines.append(f"| {name} | {o['micro_ap']:.3f} | {o['recall_at_p90']:.3f} | {o['rank1']:.3f} | "
                     f"{t['precision']:.3f} | {t['recall']:.3f} | {t['unregistered_above']:.3f} | "
                     f"{r['top1_right_but_below_threshold']} |")
    names = list(res["rows"])
    fams = sorted(res["rows"][names[0]]["families"])
    lines += ["", "Per family: µAP / recall@P90 / top-1", "", "| family | " + " | ".join(names) + " |",
              "|---|" + "---|" * len(names)]
    for f in fams:
        cells = []
        for n in names:
            x = res["rows"][n]["families"][f]
            cells.append(f"{x['micro_ap']:.2f} / {x['recall_at_p90']:.2f} / {x['rank1']:.2f}")
        lines.append(f"| {f} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="the --out of a bench/images.py --regions run")
    ap.add_argument("--model", default="ct-image-r18s")
    ap.add_argument("--threshold", type=float, default=None,
                    help="a combined-score threshold instead of the registry's (comparison)")
    ap.add_argument("--same-folder-siblings", default=None,
                    help="diagnostic: regex on the 'package/dir' label of sources whose images "
                         "in one folder count as versions of one work (needs --eval-dir)")
    ap.add_argument("--eval-dir", default=None, help="the set's --eval-dir (for the labels)")
    args = ap.parse_args()
    out = Path(args.out)
    res = rows(out, args.model, args.threshold, args.same_folder_siblings, args.eval_dir)
    tag = (f"-thr{args.threshold}" if args.threshold is not None else "") + (
        "-siblings" if args.same_folder_siblings else "")
    (out / f"rescored{tag}.json").write_text(json.dumps(res, indent=1))
    md = markdown(res)
    (out / f"rescored{tag}.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()

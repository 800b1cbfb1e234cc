"""Score a finished `bench/images.py --regions` run at the registry's current calibration.

    python bench/rescore_images.py --out out/bench_photos [--model ct-image-r18s]

bench/images.py --regions saves every query's candidates, cosines and inlier counts
(<out>/regions_scores.npz: whole image and whole + regions). This recombines them with the
model entry's verifier settings (``verify_threshold_similarity``, ``verify_bonus``) without
describing or verifying again, and reports three rows at that threshold:

- whole image + verification (the engine with ``query_regions=False``);
- whole + regions for every query;
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


def rows(out: Path, model: str) -> dict:
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
    cfg = VerifyConfig(**kw)
    thr = cfg.threshold_score
    whole = verified_score(a["whole_sims"], a["whole_inliers"], cfg)
    merged = verified_score(a["sims"], a["inliers"], cfg)
    merged[a["sims"] <= -1.0] = -np.inf
    wi, mi = a["whole_idx"], a["idx"]
    use_regions = whole.max(axis=1) < thr  # the engine's rule: regions only when nothing passes
    eng = np.where(use_regions[:, None], merged, whole)
    eidx = np.where(use_regions[:, None], mi, wi)
    out_rows = {}
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
            "counts": image_set.manifest["counts"]}


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
    args = ap.parse_args()
    out = Path(args.out)
    res = rows(out, args.model)
    (out / "rescored.json").write_text(json.dumps(res, indent=1))
    md = markdown(res)
    (out / "rescored.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()

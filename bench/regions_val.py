"""Query-region settings compared on one set: which boxes, which score fusion, which gate.

    python bench/regions_val.py --val --out out/regions_val         # val of the train packages
    python bench/regions_val.py --set out/bench_images/set --out out/regions_eval

``--val`` builds bench/verify_val.py's set (val-split images of the train packages as works,
train-split images as distractors, the eval benchmark's edit families; staged under
``<out>/stage``), so choices made here never see the eval or photograph sets; ``--set`` reuses
a set bench/images.py built, to report those choices there.

Every query's boxes are proposed once in their widest form (edge rectangles, up to
``RegionConfig.max_edge_boxes``, and every grid window of every scale in ``--scales``, no
suppression) and described once; each variant picks its boxes from them by the same rule
``propose_regions`` applies, so variants differ only in their boxes. Candidates are the whole
image's top-k and each box's top-k; the top ``--verify-top`` of the merged list are verified
(whole query, and the box that brought a candidate), inlier counts memoised per (query, box,
reference). Fusion rules (``copytrace.verify.regions.FUSIONS``): ``max`` takes a reference's
best cosine over the whole image and its boxes; ``verified`` lets a box's cosine count only
when that box's own verification gives a bonus (else the whole image's cosine, computed
exactly). The engine rule searches regions only when no whole-image candidate reaches the
verified threshold, and, with a gate ``m``, only when the whole image's top-1 cosine is below
``m``. Writes <out>/regions.json and prints a table.
"""
from __future__ import annotations

import argparse
import json
import logging
import pickle
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from images import cached_descriptors, files_key, resolve_spec, verify_config  # bench/ on sys.path

from copytrace.eval.image_bench import (
    ImageSetConfig,
    Predictions,
    build_image_set,
    exact_topk,
    load_image_set,
    score_predictions,
)

ROOT = Path(__file__).resolve().parent.parent
log = logging.getLogger("bench.regions_val")

# name -> (grid scales, max edge boxes)
VARIANTS = {  # the first: the settings before issue 20's latency work; "edges4+grid0.5": now
    "edges6+grid0.5+0.7": ((0.5, 0.7), 6),
    "edges6+grid0.5": ((0.5,), 6),
    "edges4+grid0.5": ((0.5,), 4),
    "edges6+grid0.6": ((0.6,), 6),
    "edges6": ((), 6),
}


def propose_all(path: str, scales: tuple[float, ...]):
    """(boxes, kinds) of one query: edge rectangles ('e0'.. in support order), then every
    grid window ('g<scale>'), unsuppressed; boxes in the query as decoded at long side 1024."""
    from copytrace.media.image import load_image
    from copytrace.verify.regions import RegionConfig, edge_boxes, grid_boxes

    im = load_image(path, draft_size=1024)
    cfg = RegionConfig(max_edge_boxes=max(me for _, me in VARIANTS.values()))
    boxes = [b for b, _ in edge_boxes(im, cfg)]
    kinds = [f"e{i}" for i in range(len(boxes))]
    for s in scales:
        g = grid_boxes(im.size, (s,))
        boxes += g
        kinds += [f"g{s}"] * len(g)
    return im, boxes, kinds


def pick(boxes, kinds, size, scales: tuple[float, ...], max_edges: int) -> list[int]:
    """Rows of ``boxes`` a variant keeps: ``propose_regions``'s rule on that variant's boxes."""
    from copytrace.verify.regions import RegionConfig, iou

    cfg = RegionConfig()
    keep: list[int] = [r for r, k in enumerate(kinds) if k.startswith("e") and int(k[1:]) < max_edges]
    for r, k in enumerate(kinds):
        if (k.startswith("g") and float(k[1:]) in scales
                and all(iou(boxes[r], boxes[o]) <= cfg.nms_iou for o in keep)):
            keep.append(r)
    w, h = size
    whole = (0, 0, w, h)
    return [r for r in keep if iou(boxes[r], whole) < cfg.max_area + 0.1
            and boxes[r][2] - boxes[r][0] >= 16 and boxes[r][3] - boxes[r][1] >= 16]


def build_val(out: Path, min_refs: int, seed: int):
    from verify_val import stage_val

    val, distract = stage_val(ROOT / "data/images/train/manifest.json", ROOT / ".stage/pkgs",
                              out / "stage", min_refs, seed)
    cfg = ImageSetConfig(n_copies=600, n_unregistered=600, min_refs=min_refs, n_background=0,
                         seed=seed)
    return build_image_set(val, distract, out / "set", cfg, workers=2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--val", action="store_true", help="build and use verify_val.py's val set")
    ap.add_argument("--set", default=None, help="an image set bench/images.py built (<out>/set)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--model", default="ct-image-r18s")
    ap.add_argument("--backend", default="openvino")
    ap.add_argument("--precision", default="fp32")
    ap.add_argument("--top-k", type=int, default=10)
    ap.add_argument("--verify-top", type=int, default=10)
    ap.add_argument("--min-refs", type=int, default=800)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--gates", default="1.0,0.9,0.8,0.75,0.7,0.65,0.6",
                    help="whole-image top-1 cosines at or above which regions are skipped")
    ap.add_argument("--verify-detector", default="sift")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.val == bool(args.set):
        raise SystemExit("pass exactly one of --val and --set DIR")
    image_set = build_val(out, args.min_refs, args.seed) if args.val else load_image_set(args.set)
    if image_set is None:
        raise SystemExit(f"no image set under {args.set}")

    from copytrace.runtime import load_encoder, prepare_images
    from copytrace.verify import LocalVerifier, verified_score

    spec = resolve_spec(args.model)
    encoder = load_encoder(spec, args.backend, args.precision, 0)
    cache = out / "descriptors"
    refs, _ = cached_descriptors(cache, encoder, spec, list(image_set.refs))
    qpaths = [q.path for q in image_set.queries]
    queries, _ = cached_descriptors(cache, encoder, spec, qpaths)
    scales = tuple(sorted({s for sc, _ in VARIANTS.values() for s in sc}))
    f = cache / f"boxes-{files_key(qpaths)[:16]}-{'-'.join(map(str, scales))}.pkl"
    if f.is_file():
        boxes, kinds, sizes, bdesc = pickle.loads(f.read_bytes())
    else:
        boxes, kinds, sizes, bdesc = [], [], [], []
        t0 = time.perf_counter()

        def prep(p):
            im, b, k = propose_all(p, scales)
            return b, k, im.size, prepare_images([im.crop(x) for x in b], spec) if b else None

        with ThreadPoolExecutor(2) as ex:
            for n, (b, k, size, x) in enumerate(ex.map(prep, qpaths)):
                boxes.append(b), kinds.append(k), sizes.append(size)
                bdesc.append(encoder.encode(x) if x is not None else np.zeros((0, spec.dims), np.float32))
                if n % 200 == 0:
                    log.info("boxes of %d / %d queries (%d)", n + 1, len(qpaths), len(b))
        log.info("boxes described in %.0f s", time.perf_counter() - t0)
        f.write_bytes(pickle.dumps((boxes, kinds, sizes, bdesc)))

    k, top = args.top_k, args.verify_top
    vcfg = verify_config(argparse.Namespace(model=args.model, verify_detector=args.verify_detector))
    ver = LocalVerifier(vcfg)
    wsims, widx = exact_topk(queries, refs, k)
    picks = {name: [pick(boxes[i], kinds[i], sizes[i], sc, me) for i in range(len(qpaths))]
             for name, (sc, me) in VARIANTS.items()}
    ref_feats: dict[int, object] = {}

    def rf(j: int):
        if j not in ref_feats:
            ref_feats[j] = ver.features(image_set.refs[j])
        return ref_feats[j]

    def one(i: int):
        """Per variant and fusion: the query's merged candidates and combined scores."""
        from copytrace.media.image import load_image

        qf = ver.features(qpaths[i], query=True)
        im = None
        whole_inl: dict[int, int] = {}
        crop_feats: dict[int, object] = {}
        crop_inl: dict[tuple[int, int], int] = {}

        def w_inl(j):
            if j not in whole_inl:
                whole_inl[j] = ver.verify_features(qf, rf(j)).inliers
            return whole_inl[j]

        def c_inl(r, j):
            nonlocal im
            if (r, j) not in crop_inl:
                if r not in crop_feats:
                    if im is None:
                        im = load_image(qpaths[i], draft_size=1024)
                    crop_feats[r] = ver.features(im.crop(boxes[i][r]), query=True)
                crop_inl[(r, j)] = ver.verify_features(crop_feats[r], rf(j)).inliers
            return crop_inl[(r, j)]

        wl = [int(j) for j in widx[i, :top]]
        whole_scores = wsims[i].astype(np.float32).copy()  # beyond ``top``: unverified cosines
        whole_scores[:top] = [verified_score(float(wsims[i, c]), w_inl(j), vcfg) for c, j in enumerate(wl)]
        res = {"whole": (whole_scores, widx[i].copy())}
        if len(bdesc[i]):
            bs, bi = exact_topk(bdesc[i], refs, k)
        whole_cos = {int(j): float(c) for c, j in zip(wsims[i], widx[i])}
        for name in VARIANTS:
            # As the engine does (signals/visual.py): the whole image's candidates keep their
            # verified scores; a reference some box brings closer than the whole image did is
            # added, the best ``top`` of them by box cosine verified.
            brought: dict[int, tuple[float, int]] = {}
            for r in picks[name][i]:
                for s, j in zip(bs[r].tolist(), bi[r].tolist()):
                    if s > max(whole_cos.get(j, -2.0), brought.get(j, (-2.0,))[0]):
                        brought[j] = (s, r)
            order = sorted(brought.items(), key=lambda kv: -kv[1][0])
            for fusion in ("max", "verified"):
                best = {j: float(whole_scores[c]) if c < top else float(wsims[i, c])
                        for c, j in enumerate(widx[i].tolist())}
                for c, (j, (s, r)) in enumerate(order):
                    exact = whole_cos.get(j, float(queries[i] @ refs[j]))
                    if c >= top:  # not verified: a box's cosine counts only under "max"
                        score = s if fusion == "max" else exact
                    else:
                        n = max(c_inl(r, j), w_inl(j))
                        score = verified_score(s, n, vcfg)
                        if fusion == "verified":
                            # A box's cosine counts only when that box's geometry confirms it.
                            by_whole = verified_score(exact, w_inl(j), vcfg)
                            score = max(score if c_inl(r, j) > vcfg.min_inliers else -np.inf, by_whole)
                    best[j] = max(best.get(j, -np.inf), float(score))
                ranked = sorted(best.items(), key=lambda kv: -kv[1])[:k]
                sc = np.full(k, -np.inf, np.float32)
                ix = np.zeros(k, np.int64)
                for c, (j, v) in enumerate(ranked):
                    sc[c], ix[c] = v, j
                res[(name, fusion)] = (sc, ix)
        return i, res, len(crop_feats)

    results: dict = {}
    t0 = time.perf_counter()
    per_query: list = [None] * len(qpaths)
    with ThreadPoolExecutor(args.workers) as ex:
        for n, (i, res, _) in enumerate(ex.map(one, range(len(qpaths)))):
            per_query[i] = res
            if n % 200 == 0:
                log.info("verified %d / %d (%.0f s)", n + 1, len(qpaths), time.perf_counter() - t0)
    thr = vcfg.threshold_score
    whole = np.stack([r["whole"][0] for r in per_query])
    whole_ix = np.stack([r["whole"][1] for r in per_query])
    top1_cos = wsims[:, 0]
    needs = whole.max(axis=1) < thr
    gates = [float(g) for g in args.gates.split(",")]

    def metrics(s, j):
        r = score_predictions(image_set, Predictions.from_topk(s.astype(np.float32), j), thr)
        fam = {f: {x: round(v[x], 4) for x in ("micro_ap", "rank1")} for f, v in r["families"].items()}
        o, t = r["overall"], r["at_threshold"]
        return {"micro_ap": round(o["micro_ap"], 4), "recall_at_p90": round(o["recall_at_p90"], 4),
                "rank1": round(o["rank1"], 4), "precision_at_thr": round(t["precision"], 4),
                "recall_at_thr": round(t["recall"], 4),
                "unregistered_at_thr": round(t["unregistered_above"], 4), "families": fam}

    results["whole + verification"] = {**metrics(whole, whole_ix), "boxes_per_query": 0.0,
                                       "share_searching_regions": 0.0}
    unreg = np.array([q.ref is None for q in image_set.queries])
    for name in VARIANTS:
        nb = np.array([len(picks[name][i]) for i in range(len(qpaths))], float)
        for fusion in ("max", "verified"):
            s = np.stack([r[(name, fusion)][0] for r in per_query])
            j = np.stack([r[(name, fusion)][1] for r in per_query])
            for g in gates:
                use = needs & (top1_cos < g)
                es, ej = np.where(use[:, None], s, whole), np.where(use[:, None], j, whole_ix)
                results[f"{name} | {fusion} | gate {g}"] = {
                    **metrics(es, ej), "boxes_per_query": round(float(np.mean(nb * use)), 2),
                    "boxes_per_unregistered": round(float(np.mean((nb * use)[unreg])), 2),
                    "share_searching_regions": round(float(np.mean(use)), 4)}
    # The verified threshold this set gives (precision 0.99 over every prediction, as
    # bench/verify_val.py calibrated the shipped one), whole image + verification.
    from verify_val import threshold_for

    arrays = {"whole": whole, "whole_idx": whole_ix, "whole_sims": wsims}
    for name in VARIANTS:
        for fusion in ("max", "verified"):
            arrays[f"{name}|{fusion}|scores"] = np.stack([r[(name, fusion)][0] for r in per_query])
            arrays[f"{name}|{fusion}|idx"] = np.stack([r[(name, fusion)][1] for r in per_query])
    np.savez(out / "scores.npz", **arrays)
    report = {"threshold_p99_whole_verified": round(threshold_for(image_set, whole, whole_ix, 0.99), 4),
              "set": image_set.manifest["counts"], "val": args.val, "threshold": thr,
              "verify_top": top, "top_k": k, "rows": results}
    (out / "regions.json").write_text(json.dumps(report, indent=1))
    hdr = "| method | fusion | gate | µAP | R@P90 | top-1 | P@thr | R@thr | boxes/query | boxes/unreg | pip | screenshot | crop |"
    lines = [hdr, "|" + "---|" * 13]
    for key, r in results.items():
        parts = (key.split(" | ") + ["", ""])[:3]
        fam = r["families"]
        cells = [f"{fam[f]['micro_ap']:.2f}/{fam[f]['rank1']:.2f}" if f in fam else "–"
                 for f in ("pip", "screenshot", "crop")]
        lines.append(f"| {' | '.join(parts)} | {r['micro_ap']:.3f} | {r['recall_at_p90']:.3f} | "
                     f"{r['rank1']:.3f} | {r['precision_at_thr']:.3f} | {r['recall_at_thr']:.3f} | "
                     f"{r['boxes_per_query']:.1f} | {r.get('boxes_per_unregistered', 0):.1f} | "
                     + " | ".join(cells) + " |")
    (out / "regions.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

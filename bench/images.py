"""DISC21-style image copy-detection benchmark: our descriptor vs PDQ and pHash, same set.

    python bench/images.py --eval-dir data/images/eval --distract-dir data/images/distract \
        --out out/bench_images --model ct-image-r18s --backend openvino

Builds (or reuses) the set under <out>/set (see copytrace.eval.image_bench), describes
references, queries and background with copytrace.runtime, searches exactly (inner product),
and scores µAP, recall at 90% precision, rank-1, per-family results, the precision reached at
the registry's threshold_similarity, and the false-positive rate of unregistered queries above
it; with and without SSCD-style score normalisation. The hash baselines run in their own venv
(bench/baselines/setup.sh). Writes <out>/results.json and <out>/results.md.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import platform
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path

import numpy as np

from copytrace.eval.image_bench import (
    ImageSet,
    ImageSetConfig,
    Predictions,
    background_similarity,
    build_image_set,
    exact_topk,
    list_images,
    score_predictions,
    work_groups_from_manifest,
)
from copytrace.models.registry import DescriptorSpec, get_spec

ROOT = Path(__file__).resolve().parent.parent
log = logging.getLogger("bench.images")


def resolve_spec(model: str) -> DescriptorSpec:
    """A registry name (shipped weights) or a path to a registry JSON entry."""
    p = Path(model)
    if p.suffix == ".json" and p.is_file():
        return DescriptorSpec.from_file(p)
    return get_spec(model)


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


def describe_paths(encoder, spec: DescriptorSpec, paths: list[str], batch: int = 32) -> tuple[np.ndarray, float]:
    """Decode as the engine does (copytrace.media.image, JPEG draft) and encode.

    Returns (descriptors, seconds spent in the encoder alone).
    """
    from copytrace.media.image import load_image
    from copytrace.runtime import prepare_images

    draft = 2 * max(spec.input_size)

    def prep(chunk: list[str]) -> np.ndarray:
        return prepare_images([load_image(p, draft_size=draft) for p in chunk], spec)

    chunks = [paths[i : i + batch] for i in range(0, len(paths), batch)]
    out, encode_s = [], 0.0
    with ThreadPoolExecutor(2) as ex:  # decode the next batch while the encoder runs
        for k, x in enumerate(ex.map(prep, chunks)):
            t0 = time.perf_counter()
            out.append(encoder.encode(x))
            encode_s += time.perf_counter() - t0
            if k % 20 == 0:
                log.info("described %d / %d", min((k + 1) * batch, len(paths)), len(paths))
    return np.concatenate(out) if out else np.zeros((0, spec.dims), np.float32), encode_s


def files_key(paths: list[str]) -> str:
    """Names, sizes and mtimes: a rebuilt set reuses names like q00000.jpg, so names alone lie."""
    h = hashlib.sha256()
    for p in paths:
        st = Path(p).stat()
        h.update(f"{p}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def cached_descriptors(cache: Path, encoder, spec, paths: list[str]) -> tuple[np.ndarray, float | None]:
    key = files_key(paths)[:16]
    f = cache / f"{key}.npy"
    if f.is_file():
        return np.load(f), None
    x, encode_s = describe_paths(encoder, spec, paths)
    cache.mkdir(parents=True, exist_ok=True)
    np.save(f, x)
    return x, len(paths) / encode_s


def measure_speed(encoder, spec, paths: list[str], n: int = 96) -> dict:
    """Encoder throughput on preprocessed input: batch 1 and batch 32, median of runs."""
    from copytrace.media.image import load_image
    from copytrace.runtime import prepare_images

    x = prepare_images([load_image(p, draft_size=2 * max(spec.input_size)) for p in paths[:n]], spec)
    encoder.encode(x[:32])  # warm-up
    res = {}
    for bs in (1, 32):
        runs = []
        for _ in range(3):
            t0 = time.perf_counter()
            for i in range(0, len(x) - bs + 1, bs):
                encoder.encode(x[i : i + bs])
            runs.append((len(x) // bs * bs) / (time.perf_counter() - t0))
        res[f"batch{bs}_descriptors_per_s"] = round(float(np.median(runs)), 1)
    return res


def source_labels(image_dirs: list[str]) -> dict[str, str]:
    """Image path -> 'package/dir' from the stage manifests, to say where false positives live."""
    labels = {}
    for d in image_dirs:
        mf = Path(d) / "manifest.json"
        if not mf.is_file():
            continue
        for rec in json.loads(mf.read_text()).get("images", []):
            parts = Path(rec.get("source_path", "")).parent.parts[-2:]
            labels[str((Path(d) / rec["file"]).resolve())] = "/".join([rec.get("package", "?"), *parts])
    return labels


def false_positive_sources(image_set: ImageSet, pred: Predictions, threshold: float,
                           labels: dict[str, str], top: int = 8) -> list[dict]:
    """Which (query source, reference) folders the false positives above ``threshold`` join."""
    ignored, counts = image_set.ignored_pairs(), {}
    for q, r, sc in zip(pred.query.tolist(), pred.ref.tolist(), pred.score.tolist()):
        query = image_set.queries[q]
        if sc < threshold or query.ref == r or (q, r) in ignored:
            continue
        key = (labels.get(query.source, "?"), labels.get(image_set.refs[r], "?"))
        counts[key] = counts.get(key, 0) + 1
    ranked = sorted(counts.items(), key=lambda kv: -kv[1])[:top]
    return [{"query_source": a, "reference": b, "false_positives": n} for (a, b), n in ranked]


def run_descriptor(args, image_set: ImageSet, out: Path) -> dict:
    from copytrace.runtime import load_encoder

    spec = resolve_spec(args.model)
    weights = spec.path(args.precision)
    encoder = load_encoder(spec, args.backend, args.precision, args.threads)
    cache = out / "descriptors" / f"{spec.name}-{_file_digest(weights)}-{args.backend}-{args.precision}"
    t0 = time.perf_counter()
    refs, ref_rate = cached_descriptors(cache, encoder, spec, list(image_set.refs))
    queries, _ = cached_descriptors(cache, encoder, spec, [q.path for q in image_set.queries])
    describe_s = time.perf_counter() - t0
    sims, idx = exact_topk(queries, refs, args.top_k)
    raw = Predictions.from_topk(sims, idx)
    thr = float(spec.threshold_similarity)
    result = {
        "model": spec.model_id, "weights": str(weights), "backend": args.backend,
        "precision": args.precision, "input_size": list(spec.input_size),
        "threshold_similarity": thr, "describe_s": round(describe_s, 2),
        "encode_descriptors_per_s_while_describing": round(ref_rate, 1) if ref_rate else "cached",
        "speed": measure_speed(encoder, spec, list(image_set.refs)),
        "raw": score_predictions(image_set, raw, thr),
        "false_positive_sources_at_threshold": false_positive_sources(
            image_set, raw, thr, source_labels([args.eval_dir] + ([args.distract_dir] if args.distract_dir else []))
        ),
    }
    if args.regions:
        # One pass verifies the whole image's candidates (the plain verified row) and the
        # candidates the regions bring.
        if args.verify_top <= 0:
            raise SystemExit("--regions needs --verify-top K (regions are verified locally)")
        result["regions"] = run_regions(args, image_set, encoder, spec, refs, queries, cache)
        result["verified"] = result["regions"].pop("_whole")
        arrays = result["regions"].pop("_scores")
        np.savez(out / "regions_scores.npz", **dict(zip(
            ("scores", "idx", "inliers", "sims", "region", "whole_scores", "whole_idx",
             "whole_inliers", "whole_sims"), arrays)))
    elif args.verify_top > 0:
        result["verified"] = run_verification(args, image_set, sims, idx)
    background = list_images(args.background_dir) if args.background_dir else list(image_set.background)
    if background:
        bg, _ = cached_descriptors(cache, encoder, spec, background)
        kth = background_similarity(queries, bg, args.norm_k)
        norm = Predictions.from_topk(sims - args.norm_beta * kth[:, None], idx)
        result["normalised"] = {
            "k": args.norm_k, "beta": args.norm_beta, "background": len(bg),
            "background_from": args.background_dir or "distractor pool (not references)",
            **score_predictions(image_set, norm, None),
        }
    return result


def verify_config(args):
    """The verifier as the engine runs it: threshold and bonus from the model's registry entry."""
    from copytrace.verify import VerifyConfig

    spec = resolve_spec(args.model)
    kw = {k: v for k, v in (("threshold_score", spec.verify_threshold_similarity),
                            ("bonus", spec.verify_bonus)) if v is not None}
    return VerifyConfig(detector=args.verify_detector, **kw)


def run_verification(args, image_set: ImageSet, sims: np.ndarray, idx: np.ndarray) -> dict:
    """Second stage (copytrace.verify): local-feature RANSAC on each query's top candidates,
    joined with the cosine by the config's val-chosen monotone rule; scored at its own
    val-calibrated threshold. Same set and candidates as the raw row, so the two compare."""
    from copytrace.verify import LocalVerifier, verified_score
    from copytrace.verify.batch import verify_topk

    cfg = verify_config(args)
    res = verify_topk(LocalVerifier(cfg), [q.path for q in image_set.queries], list(image_set.refs),
                      idx, args.verify_top, args.workers)
    scores = verified_score(sims, np.maximum(res.inliers, 0), cfg)
    pred = Predictions.from_topk(scores.astype(np.float32), idx)
    return {
        "top": args.verify_top, "config": asdict(cfg), "threshold_score": cfg.threshold_score,
        "median_added_ms_per_query": round(1000 * float(np.median(res.query_s)), 1),
        "p90_added_ms_per_query": round(1000 * float(np.percentile(res.query_s, 90)), 1),
        "reference_features_ms_per_image": round(
            1000 * res.ref_features_s / max(1, len({int(j) for j in idx[:, :args.verify_top].ravel()})), 1),
        **score_predictions(image_set, pred, cfg.threshold_score),
        "false_positive_sources_at_threshold": false_positive_sources(
            image_set, pred, cfg.threshold_score,
            source_labels([args.eval_dir] + ([args.distract_dir] if args.distract_dir else []))),
    }


def describe_regions(encoder, spec: DescriptorSpec, paths: list[str], cfg) -> tuple[list[np.ndarray], list[list]]:
    """Region proposals of every query (copytrace.verify.regions) and their descriptors.

    Returns (descriptors [R_i, d] per query, boxes per query). Boxes are in the pixels of the
    query as decoded at the verifier's working size's parent (long side <= 1024)."""
    from copytrace.media.image import load_image
    from copytrace.runtime import prepare_images
    from copytrace.verify.regions import crop_regions, propose_regions

    def prep(p: str):
        im = load_image(p, draft_size=1024)
        boxes = propose_regions(im, cfg)
        return (prepare_images(crop_regions(im, boxes), spec) if boxes else None), boxes, im.size

    descs, all_boxes = [], []
    with ThreadPoolExecutor(2) as ex:
        for n, (x, boxes, size) in enumerate(ex.map(prep, paths)):
            descs.append(encoder.encode(x) if x is not None else np.zeros((0, spec.dims), np.float32))
            all_boxes.append([(b, size) for b in boxes])
            if n % 200 == 0:
                log.info("regions of %d / %d queries (%d boxes)", n + 1, len(paths), len(boxes))
    return descs, all_boxes


def run_regions(args, image_set: ImageSet, encoder, spec, refs: np.ndarray, queries: np.ndarray,
                cache: Path) -> dict:
    """Whole image + region proposals searched together, then verified (whole query and, for
    a candidate a region brought, that region too; the larger inlier count counts)."""
    import pickle

    from copytrace.verify import LocalVerifier, verified_score
    from copytrace.verify.regions import RegionConfig, merge_region_hits

    rcfg = RegionConfig()
    qpaths = [q.path for q in image_set.queries]
    f = cache / f"regions-{files_key(qpaths)[:16]}-{hashlib.sha256(repr(rcfg).encode()).hexdigest()[:8]}.pkl"
    t0 = time.perf_counter()
    if f.is_file():
        rdesc, rboxes = pickle.loads(f.read_bytes())
    else:
        rdesc, rboxes = describe_regions(encoder, spec, qpaths, rcfg)
        f.write_bytes(pickle.dumps((rdesc, rboxes)))
    describe_s = time.perf_counter() - t0
    k = args.top_k
    wsims, widx = exact_topk(queries, refs, k)
    sims = np.full((len(qpaths), k), -1.0, np.float32)
    idx = np.zeros((len(qpaths), k), np.int64)
    reg = np.full((len(qpaths), k), -1, np.int64)
    for i in range(len(qpaths)):
        if len(rdesc[i]):
            rs, ri = exact_topk(rdesc[i], refs, k)
        else:
            rs, ri = np.zeros((0, k), np.float32), np.zeros((0, k), np.int64)
        s, j, r = merge_region_hits(wsims[i], widx[i], rs, ri, k)
        sims[i, :len(s)], idx[i, :len(j)], reg[i, :len(r)] = s, j, r
    vcfg = verify_config(args)
    ver = LocalVerifier(vcfg)
    top = min(args.verify_top, k)
    needed = sorted({int(j) for j in idx[:, :top].ravel()})
    needed = sorted(set(needed) | {int(j) for j in widx[:, :top].ravel()})
    with ThreadPoolExecutor(args.workers) as ex:
        ref_feats = dict(zip(needed, ex.map(lambda j: ver.features(image_set.refs[j]), needed)))

    def one(i: int):
        """Whole-image inliers of the whole image's top candidates (the plain verified row)
        and, for the merged list, the larger of whole-image and region inliers."""
        from copytrace.media.image import load_image

        t = time.perf_counter()
        qf = ver.features(qpaths[i], query=True)
        whole = {int(j): ver.verify_features(qf, ref_feats[int(j)]).inliers for j in widx[i, :top]}
        t_whole = time.perf_counter() - t
        im = None
        crops: dict[int, object] = {}
        counts = []
        for c in range(top):
            j, r = int(idx[i, c]), int(reg[i, c])
            if j not in whole:
                whole[j] = ver.verify_features(qf, ref_feats[j]).inliers
            n = whole[j]
            if r >= 0:
                if r not in crops:
                    if im is None:
                        im = load_image(qpaths[i], draft_size=1024)
                    crops[r] = ver.features(im.crop(rboxes[i][r][0]), query=True)
                n = max(n, ver.verify_features(crops[r], ref_feats[j]).inliers)
            counts.append(n)
        return i, counts, [whole[int(j)] for j in widx[i, :top]], t_whole, time.perf_counter() - t

    inliers = np.zeros((len(qpaths), k), np.int32)
    whole_inl = np.zeros((len(qpaths), k), np.int32)
    query_s = np.zeros(len(qpaths))
    whole_s = np.zeros(len(qpaths))
    with ThreadPoolExecutor(args.workers) as ex:
        for n, (i, counts, wcounts, tw, dt) in enumerate(ex.map(one, range(len(qpaths)))):
            inliers[i, :top] = counts
            whole_inl[i, :top] = wcounts
            query_s[i], whole_s[i] = dt, tw
            if n % 200 == 0:
                log.info("region-verified %d / %d", n + 1, len(qpaths))
    wscores = verified_score(wsims, whole_inl, vcfg).astype(np.float32)
    wpred = Predictions.from_topk(wscores, widx)
    whole_result = {
        "top": args.verify_top, "config": asdict(vcfg), "threshold_score": vcfg.threshold_score,
        "median_added_ms_per_query": round(1000 * float(np.median(whole_s)), 1),
        "p90_added_ms_per_query": round(1000 * float(np.percentile(whole_s, 90)), 1),
        "reference_features_ms_per_image": None,
        **score_predictions(image_set, wpred, vcfg.threshold_score),
        "false_positive_sources_at_threshold": false_positive_sources(
            image_set, wpred, vcfg.threshold_score,
            source_labels([args.eval_dir] + ([args.distract_dir] if args.distract_dir else []))),
    }
    scores = verified_score(sims, inliers, vcfg).astype(np.float32)
    scores[sims <= -1.0] = -np.inf
    pred = Predictions.from_topk(scores, idx)
    n_boxes = [len(b) for b in rboxes]
    return {
        "top": args.verify_top, "region_config": asdict(rcfg), "threshold_score": vcfg.threshold_score,
        "boxes_per_query_median": float(np.median(n_boxes)),
        "region_describe_s": round(describe_s, 1),
        "median_added_ms_per_query_verify": round(1000 * float(np.median(query_s)), 1),
        "top1_from_region": round(float(np.mean(reg[:, 0] >= 0)), 4),
        **score_predictions(image_set, pred, vcfg.threshold_score),
        "false_positive_sources_at_threshold": false_positive_sources(
            image_set, pred, vcfg.threshold_score,
            source_labels([args.eval_dir] + ([args.distract_dir] if args.distract_dir else []))),
        "_scores": (scores, idx, inliers, sims, reg, wscores, widx, whole_inl, wsims),
        "_whole": whole_result,
    }


def run_hash_baselines(args, image_set: ImageSet, out: Path) -> dict:
    venv_py = Path(args.hash_venv) / "bin" / "python"
    if not venv_py.is_file():
        log.warning("no hash venv at %s (run bench/baselines/setup.sh): skipping PDQ/pHash", venv_py)
        return {}
    lists = out / "lists"
    image_set.write_lists(lists)
    bdir = out / "baselines"
    stamp = bdir / "done.json"
    key = files_key(list(image_set.refs) + [q.path for q in image_set.queries])
    if not (stamp.is_file() and json.loads(stamp.read_text()).get("key") == key):
        cmd = [str(venv_py), str(ROOT / "bench" / "baselines" / "hashes.py"),
               "--refs", str(lists / "refs.txt"), "--queries", str(lists / "queries.txt"),
               "--out", str(bdir), "--top-k", str(args.top_k)]
        log.info("running %s", " ".join(cmd))
        subprocess.run(cmd, check=True)
        stamp.write_text(json.dumps({"key": key}))
    results = {}
    for method in ("pdq", "pdq_dihedral", "phash"):
        d = np.load(bdir / f"{method}.npz")
        info = json.loads((bdir / f"{method}.json").read_text())
        # The usual PDQ match cut is Hamming distance <= 31 of 256 bits.
        thr = 1 - 31 / 256 if method.startswith("pdq") else 1 - 10 / 64
        results[method] = {**info, "threshold_similarity": round(thr, 6),
                           "raw": score_predictions(image_set, Predictions.from_topk(d["sims"], d["idx"]), thr)}
    return results


def _row(name: str, r: dict) -> str:
    o = r["overall"]
    at = r.get("at_threshold")
    tail = f"{at['precision']:.3f} | {at['unregistered_above']:.3f}" if at else "– | –"
    return f"| {name} | {o['micro_ap']:.3f} | {o['recall_at_p90']:.3f} | {o['rank1']:.3f} | {tail} |"


def write_markdown(results: dict, path: Path) -> None:
    c = results["set"]["counts"]
    lines = [
        (f"Set: {c['refs']} references ({c['eval_refs']} eval + {c['distractor_refs']} "
         f"distractors), {c['queries']} queries ({c['copies']} copies, {c['unregistered']} "
         f"unregistered), background {c['background']}. Machine: {results['machine']}."),
        "",
        "| method | µAP | recall@P90 | rank-1 (copies) | precision@thr | unregistered ≥ thr |",
        "|---|---|---|---|---|---|",
    ]
    methods: list[tuple[str, dict]] = []
    d = results.get("descriptor")
    if d:
        methods.append((f"{d['model']} ({d['backend']}, {d['precision']})", d["raw"]))
        if "verified" in d:
            v = d["verified"]
            name = f"{d['model']} + local verification (top {v['top']}, {v['config']['detector']})"
            methods.append((name, v))
        if "regions" in d:
            v = d["regions"]
            methods.append((f"{d['model']} + regions + local verification (top {v['top']})", v))
        if "normalised" in d:
            n = d["normalised"]
            methods.append((f"{d['model']} + score norm (k={n['k']}, β={n['beta']})", n))
    for name, b in results.get("baselines", {}).items():
        methods.append((name, b["raw"]))
    lines += [_row(n, r) for n, r in methods]
    fams = sorted(methods[0][1]["families"]) if methods else []
    lines += ["", "Per edit family: recall@P90 within the family / rank-1", "",
              "| family | " + " | ".join(n for n, _ in methods) + " |",
              "|---|" + "---|" * len(methods)]
    for f in fams:
        cells = []
        for _, r in methods:
            x = r["families"].get(f)
            cells.append(f"{x['recall_at_p90']:.2f} / {x['rank1']:.2f}" if x else "–")
        lines.append(f"| {f} | " + " | ".join(cells) + " |")
    if d and d.get("false_positive_sources_at_threshold"):
        lines += ["", (f"Where {d['model']}'s false positives at cosine ≥ {d['threshold_similarity']} "
                       "come from (query source → reference, count):"), ""]
        lines += [f"- {x['query_source']} → {x['reference']}: {x['false_positives']}"
                  for x in d["false_positive_sources_at_threshold"][:5]]
    if d and "verified" in d:
        v = d["verified"]
        lines += ["", (f"Local verification (threshold {v['threshold_score']} on the combined score): "
                       f"adds {v['median_added_ms_per_query']} ms per query (median; p90 "
                       f"{v['p90_added_ms_per_query']} ms, 2 queries at once on the machine's cores), "
                       f"plus {v['reference_features_ms_per_image']} ms per reference image once "
                       "(its keypoints, storable at registration). False positives at its threshold:"), ""]
        lines += [f"- {x['query_source']} → {x['reference']}: {x['false_positives']}"
                  for x in v["false_positive_sources_at_threshold"][:5]] or ["- none"]
    if d:
        lines += ["", (f"Descriptor speed ({d['backend']}, {d['precision']}, "
                       f"input {d['input_size'][0]}×{d['input_size'][1]}): {d['speed']}")]
    path.write_text("\n".join(lines) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description="DISC21-style image copy-detection benchmark")
    ap.add_argument("--eval-dir", required=True)
    ap.add_argument("--distract-dir", default=None)
    ap.add_argument("--out", default="out/bench_images")
    ap.add_argument("--model", default="ct-image-r18s", help="registry name or path to its .json")
    ap.add_argument("--backend", default="openvino", choices=["openvino", "onnxruntime"])
    ap.add_argument("--precision", default="fp32", choices=["fp32", "int8"])
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n-copies", type=int, default=600)
    ap.add_argument("--n-unregistered", type=int, default=600)
    ap.add_argument("--min-refs", type=int, default=1500)
    ap.add_argument("--n-background", type=int, default=1000)
    ap.add_argument("--top-k", type=int, default=10)
    ap.add_argument("--norm-k", type=int, default=1)
    ap.add_argument("--norm-beta", type=float, default=1.0)
    ap.add_argument("--background-dir", default=None,
                    help="images for score normalisation (train/distractor pool, never eval); "
                         "default: distractors left over after the references")
    ap.add_argument("--verify-top", type=int, default=0,
                    help="also re-score each query's top K candidates by local-feature "
                         "verification (copytrace.verify, extra [verify]); 0 = off")
    ap.add_argument("--verify-detector", default="sift", choices=["sift", "orb"])
    ap.add_argument("--regions", action="store_true",
                    help="also search query-side region proposals (copytrace.verify.regions) "
                         "alongside the whole image, verified locally")
    ap.add_argument("--hash-venv", default=str(ROOT / ".stage" / "venvs" / "hashes"))
    ap.add_argument("--skip", action="append", default=[], choices=["descriptor", "hashes"])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--families", default="default",
                    help="edit families of the queries: 'default' (the eval benchmark's, "
                         "copytrace.eval.edits.FAMILIES), 'photo' (the photograph eval's, "
                         "PHOTO_FAMILIES) or a comma-separated list")
    ap.add_argument("--exclude-source", default=None,
                    help="diagnostics: regex on 'package/dir' of eval images to leave out")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from copytrace.eval.edits import FAMILIES, PHOTO_FAMILIES

    families = {"default": FAMILIES, "photo": PHOTO_FAMILIES}.get(args.families) or tuple(
        f.strip() for f in args.families.split(",") if f.strip())
    cfg = ImageSetConfig(n_copies=args.n_copies, n_unregistered=args.n_unregistered,
                         min_refs=args.min_refs, n_background=args.n_background, seed=args.seed,
                         families=families)
    distract = list_images(args.distract_dir) if args.distract_dir else []
    t0 = time.perf_counter()
    groups = work_groups_from_manifest(args.eval_dir)
    eval_paths = list_images(args.eval_dir)
    if args.exclude_source:
        # Diagnostic only: leave out eval images whose package/dir label matches the pattern.
        labels = source_labels([args.eval_dir])
        pat = re.compile(args.exclude_source)
        eval_paths = [p for p in eval_paths if not pat.search(labels.get(p, ""))]
    image_set = build_image_set(eval_paths, distract, out / "set", cfg, args.workers,
                                groups)
    log.info("set ready in %.1f s: %s", time.perf_counter() - t0, image_set.manifest["counts"])

    results: dict = {
        "command": " ".join([Path(sys.executable).name] + sys.argv),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, {platform.platform()}",
        # Other jobs on the machine slow the encoder: the load says how far to trust the speed.
        "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()],
        "set": {"counts": image_set.manifest["counts"], "seed": args.seed, "families": list(families),
                "exclude_source": args.exclude_source,
                "eval_dir": args.eval_dir, "distract_dir": args.distract_dir},
    }
    if "descriptor" not in args.skip:
        results["descriptor"] = run_descriptor(args, image_set, out)
    if "hashes" not in args.skip:
        results["baselines"] = run_hash_baselines(args, image_set, out)
    (out / "results.json").write_text(json.dumps(results, indent=1))
    write_markdown(results, out / "results.md")
    # A copy per backend/precision, so FP32 and INT8 runs sit side by side.
    tag = f"{args.backend}-{args.precision}" + (f"-verify{args.verify_top}-{args.verify_detector}" if args.verify_top else "") + ("-regions" if args.regions else "")
    (out / f"results-{tag}.json").write_text(json.dumps(results, indent=1))
    write_markdown(results, out / f"results-{tag}.md")
    print((out / "results.md").read_text())


if __name__ == "__main__":
    main()

"""Video copy-localisation benchmark on the *eval* videos (scripts/stage_videos.py).

1. ``make``: references are one video per content family (half of the families); the other
   half is filler and negatives, never indexed. Each query cuts 2–60 s of a reference, edits it
   (crop, pad/letterbox, hflip, text and logo overlays, blur, brightness/contrast, noise,
   picture-in-picture, speed change, frame-rate change, low-bitrate re-encode) with PyAV and
   Pillow and splices it into filler at a known offset; some queries hold two copies (from one
   or two references), some are whole-reference copies, some are filler only (negatives).
2. ``run``: decode at ``--fps`` → describe (the frame descriptor, or framewise dHash/pHash) →
   similarity matrix against every reference → aligner (TN/DP/HV) → optional boundary
   refinement at the native rate. Metrics: VCSL P/R/F, VSC segment AP, median |Δstart|,
   |Δend| (query and reference axes), ingest speed in multiples of real time.

    python bench/video.py make --out data/bench/video
    python bench/video.py run --data data/bench/video --descriptor hash-dhash --aligner tn
    python bench/video.py run --data data/bench/video --descriptor model --model ct-image-r18s
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont, ImageOps

log = logging.getLogger("bench.video")

CANVAS_MAX_SIDE = 480
MIN_REF_S = 4.0
QUERY_FPS = (25.0, 29.97, 30.0, 24.0, 15.0)
HASH_MIN_SIM = 0.625


# --------------------------------------------------------------------------------- editing


@dataclass
class Edit:
    """Per-frame picture edits of one copy, drawn once per query (seeded)."""

    crop: tuple[float, float, float, float] | None = None  # left, top, right, bottom fractions
    hflip: bool = False
    pad: int = 0  # border in pixels of the canvas
    text: str = ""
    logo: bool = False
    blur: float = 0.0
    brightness: float = 1.0
    contrast: float = 1.0
    noise: float = 0.0
    pip: float = 0.0  # > 0: the copy fills this fraction of the canvas width over the filler
    speed: float = 1.0
    names: list[str] = field(default_factory=list)


def draw_edit(rng: random.Random, strength: str) -> Edit:
    families = ["crop", "pad", "hflip", "text", "logo", "blur", "color", "noise", "pip", "speed"]
    n = {"light": 1, "medium": 2, "strong": 3}[strength]
    e = Edit()
    for name in rng.sample(families, n):
        e.names.append(name)
        if name == "crop":
            m = rng.uniform(0.05, 0.2)
            e.crop = (rng.uniform(0, m), rng.uniform(0, m), rng.uniform(0, m), rng.uniform(0, m))
        elif name == "pad":
            e.pad = rng.randint(16, 60)
        elif name == "hflip":
            e.hflip = True
        elif name == "text":
            e.text = rng.choice(["EXCLUSIVE", "copytrace bench", "LIVE 24/7", "www.example.org"])
        elif name == "logo":
            e.logo = True
        elif name == "blur":
            e.blur = rng.uniform(1.0, 3.0)
        elif name == "color":
            e.brightness, e.contrast = rng.uniform(0.6, 1.4), rng.uniform(0.6, 1.4)
        elif name == "noise":
            e.noise = rng.uniform(6, 20)
        elif name == "pip":
            e.pip = rng.uniform(0.4, 0.7)
        elif name == "speed":
            e.speed = rng.choice([0.8, 0.9, 1.1, 1.25])
    return e


def fit(im: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Letterbox ``im`` into ``size`` (aspect kept, black bars)."""
    return ImageOps.pad(im.convert("RGB"), size, color=(0, 0, 0))


def apply_edit(im: Image.Image, e: Edit, canvas: Image.Image, rng_np: np.random.Generator):
    w, h = canvas.size
    if e.crop:
        l, t, r, b = e.crop
        W, H = im.size
        im = im.crop((int(l * W), int(t * H), int(W - r * W), int(H - b * H)))
    if e.hflip:
        im = ImageOps.mirror(im)
    if e.brightness != 1.0:
        im = ImageEnhance.Brightness(im).enhance(e.brightness)
    if e.contrast != 1.0:
        im = ImageEnhance.Contrast(im).enhance(e.contrast)
    if e.blur:
        im = im.filter(ImageFilter.GaussianBlur(e.blur))
    if e.pip:
        pw = int(w * e.pip)
        ph = int(pw * im.height / im.width)
        small = im.resize((pw, min(ph, h)))
        out = canvas.copy()
        out.paste(small, (w - pw - 8, 8))
    elif e.pad:
        out = fit(im, (w - 2 * e.pad, h - 2 * e.pad))
        out = ImageOps.expand(out, e.pad, fill=(40, 90, 160))
    else:
        out = fit(im, (w, h))
    if e.noise:
        a = np.asarray(out, dtype=np.float32)
        a += rng_np.normal(0, e.noise, a.shape)
        out = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))
    if e.text or e.logo:
        d = ImageDraw.Draw(out)
        if e.text:
            font = ImageFont.load_default(size=max(12, h // 10))
            d.text((w // 12, h - h // 5), e.text, fill=(255, 255, 0), font=font, stroke_width=2,
                   stroke_fill=(0, 0, 0))
        if e.logo:
            r = max(10, h // 9)
            d.ellipse((w - 3 * r, h - 3 * r, w - r, h - r), fill=(220, 30, 30), outline="white",
                      width=3)
            d.rectangle((r, r, 3 * r, 2 * r), fill=(255, 255, 255))
    return out


class FrameAt:
    """Streaming "frame on screen at time t" over a video, for increasing t."""

    def __init__(self, path: str, start_s: float, end_s: float) -> None:
        from copytrace.media.video import iter_frames_between

        self.it = iter_frames_between(path, max(0.0, start_s - 0.5), end_s + 0.5, max_side=640)
        self.cur = None
        self.nxt = next(self.it, None)

    def at(self, t: float) -> Image.Image:
        while self.nxt is not None and self.nxt[0] <= t + 1e-6:
            self.cur, self.nxt = self.nxt, next(self.it, None)
        return (self.cur or self.nxt)[1]


# ------------------------------------------------------------------------------ query making


@dataclass
class Piece:
    kind: str  # "filler" or "copy"
    path: str
    src_start_s: float
    duration_s: float  # in query time
    ref_id: str = ""
    edit: Edit | None = None


def write_query(pieces: list[Piece], out: Path, fps: float, size: tuple[int, int], crf: int,
                seed: int) -> list[dict]:
    """Render pieces back to back; returns ground-truth boxes of the copies."""
    import av

    rng_np = np.random.default_rng(seed)
    truth = []
    rate = {25.0: 25, 30.0: 30, 24.0: 24, 15.0: 15}.get(fps)
    from fractions import Fraction

    frac = Fraction(rate) if rate else Fraction(30000, 1001)
    step = float(1 / frac)
    n_done = 0
    with av.open(str(out), "w") as c:
        st = c.add_stream("libx264", rate=frac)
        st.width, st.height, st.pix_fmt = size[0], size[1], "yuv420p"
        st.options = {"crf": str(crf), "preset": "veryfast"}
        for p in pieces:
            speed = p.edit.speed if p.edit else 1.0
            n = round(p.duration_s / step)
            src = FrameAt(p.path, p.src_start_s, p.src_start_s + p.duration_s * speed)
            # Picture-in-picture plays the copy over the query's filler footage.
            bg = None
            if p.kind == "copy" and p.edit and p.edit.pip:
                bg = FrameAt(pieces[0].path, 0.0, p.duration_s)
            q_start = n_done * step
            blank = Image.new("RGB", size)
            for i in range(n):
                im = src.at(p.src_start_s + i * step * speed)
                if p.kind == "copy":
                    canvas = fit(bg.at(i * step), size) if bg is not None else blank
                    im = apply_edit(im, p.edit, canvas, rng_np)
                else:
                    im = fit(im, size)
                for pkt in st.encode(av.VideoFrame.from_image(im)):
                    c.mux(pkt)
                n_done += 1
            if p.kind == "copy":
                dur = n * step
                truth.append({"ref": p.ref_id, "box": [q_start, q_start + dur, p.src_start_s,
                                                       p.src_start_s + dur * speed],
                              "edits": p.edit.names if p.edit else []})
        for pkt in st.encode():
            c.mux(pkt)
    return truth


# Kinds of the negatives corpus (scripts/stage_negatives.py) that carry content: a copy of a
# flat, faded or dark clip is no evidence of anything, so those kinds are not references.
CONTENT_KINDS = ("slideshow", "screen", "game", "reference-flat", "reference-title",
                 "reference-dark", "reference-lowdetail")


def negatives_manifest(root: Path, kinds: tuple[str, ...] = CONTENT_KINDS) -> list[dict]:
    """The held-out and reference videos of the negatives corpus as a video manifest: media
    from other packages than the eval videos, for a second set of planted copies."""
    from copytrace.media.video import probe_video

    items = [it for it in json.loads((root / "manifest.json").read_text())["items"]
             if it["signal"] == "visual" and it["split"] in ("heldout", "reference")
             and it["kind"] in kinds]
    # Videos made from a shared source picture are one family (make() keeps one per family):
    # a reference and a filler showing the same picture would make true matches count false.
    parent = list(range(len(items)))

    def root_of(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first: dict[str, int] = {}
    for i, it in enumerate(items):
        for src in it.get("sources", []):
            parent[root_of(i)] = root_of(first.setdefault(src, i))
    rows = []
    for i, it in enumerate(items):
        info = probe_video(str(root / it["path"]))
        rows.append({"file": it["path"], "family": Path(items[root_of(i)]["path"]).stem,
                     "duration_s": info.duration_s, "width": info.width, "height": info.height})
    return rows


def make(args: argparse.Namespace) -> None:
    if args.from_negatives:
        args.videos = args.from_negatives
        man = negatives_manifest(args.videos, tuple(args.kinds))
    else:
        man = json.loads((args.videos / "manifest.json").read_text())["videos"]
    rng = random.Random(args.seed)
    fams: dict[str, dict] = {}
    for v in sorted(man, key=lambda v: -v["duration_s"]):
        if v["duration_s"] >= MIN_REF_S and v["family"] not in fams:
            fams[v["family"]] = v
    names = sorted(fams)
    rng.shuffle(names)
    refs = [fams[n] for n in names[: len(names) // 2]]
    fillers = [fams[n] for n in names[len(names) // 2:]]
    out = args.out
    (out / "queries").mkdir(parents=True, exist_ok=True)
    ref_list = [{"id": Path(v["file"]).stem, "path": str(args.videos / v["file"]),
                 "duration_s": v["duration_s"]} for v in refs]
    queries = []
    strengths = ["light", "medium", "strong"]
    for qn in range(args.queries + args.negatives):
        qid = f"q{qn:03d}"
        filler = rng.choice(fillers)
        fw, fh = filler["width"], filler["height"]
        k = CANVAS_MAX_SIDE / max(fw, fh)
        size = (int(fw * k) // 2 * 2, int(fh * k) // 2 * 2)
        fps = rng.choice(QUERY_FPS)
        crf = 38 if rng.random() < 0.2 else 23  # low-bitrate re-encode for a fifth
        pieces: list[Piece] = []
        negative = qn >= args.queries
        kind = "negative" if negative else rng.choice(["clip", "clip", "clip", "two", "whole"])
        fpath = str(args.videos / filler["file"])
        fdur = filler["duration_s"]
        if kind == "negative":
            a = rng.uniform(0, max(0.0, fdur - 20))
            pieces.append(Piece("filler", fpath, a, min(20.0, fdur - a - 0.2)))
        else:
            n_copies = 2 if kind == "two" else 1
            chosen = [rng.choice(ref_list) for _ in range(n_copies)]
            lead = rng.uniform(1.0, min(8.0, fdur / 3))
            pieces.append(Piece("filler", fpath, 0.0, lead))
            for ci, ref in enumerate(chosen):
                e = draw_edit(rng, rng.choice(strengths))
                if kind == "whole":
                    e.speed = 1.0
                    e.names = [x for x in e.names if x != "speed"]
                    a, L = 0.0, ref["duration_s"] - 0.2
                else:
                    max_len = min(60.0, (ref["duration_s"] - 0.3) / e.speed)
                    L = rng.uniform(2.0, max(2.0, max_len)) if max_len > 2 else max_len
                    a = rng.uniform(0, max(0.0, ref["duration_s"] - 0.2 - L * e.speed))
                pieces.append(Piece("copy", ref["path"], a, L, ref["id"], e))
                gap = rng.uniform(1.0, min(6.0, fdur / 3))
                b = rng.uniform(lead, max(lead, fdur - gap - 0.2))
                pieces.append(Piece("filler", fpath, b, gap))
            kind = kind if kind != "two" else ("two-same" if chosen[0] is chosen[1] else "two")
        truth = write_query(pieces, out / "queries" / f"{qid}.mp4", fps, size, crf,
                            args.seed + qn)
        queries.append({"id": qid, "path": str(out / "queries" / f"{qid}.mp4"), "kind": kind,
                        "fps": fps, "crf": crf, "filler": filler["file"], "truth": truth})
        log.info("%s %s %s", qid, kind, [t["edits"] for t in truth])
    (out / "bench.json").write_text(json.dumps(
        {"references": ref_list, "queries": queries, "fillers": [f["file"] for f in fillers],
         "seed": args.seed}, indent=1))
    log.info("%d references, %d queries in %s", len(ref_list), len(queries), out)


# ------------------------------------------------------------------------------ descriptors


def dct_matrix(n: int) -> np.ndarray:
    k = np.arange(n)
    m = np.cos(np.pi * (2 * k[None, :] + 1) * k[:, None] / (2 * n))
    m[0] /= np.sqrt(2)
    return m * np.sqrt(2 / n)


_DCT32 = dct_matrix(32)


def hash_bits(images: list[Image.Image], kind: str) -> np.ndarray:
    """64-bit dHash or pHash per image, as 0/1 uint8 [N, 64] (own numpy implementation)."""
    out = np.zeros((len(images), 64), dtype=np.uint8)
    for i, im in enumerate(images):
        g = im.convert("L")
        if kind == "dhash":
            a = np.asarray(g.resize((9, 8), Image.BILINEAR), dtype=np.float32)
            out[i] = (a[:, 1:] > a[:, :-1]).reshape(-1)
        else:
            a = np.asarray(g.resize((32, 32), Image.BILINEAR), dtype=np.float32)
            d = (_DCT32 @ a @ _DCT32.T)[:8, :8].reshape(-1)
            out[i] = d > np.median(d[1:])
    return out


def hash_embed(kind: str):
    """Hashes as ±1/8 vectors: cosine = 1 - 2·hamming/64, so aligners see a similarity."""

    def embed(images: list[Image.Image]) -> np.ndarray:
        return (hash_bits(images, kind).astype(np.float32) * 2 - 1) / 8.0

    return embed


def random_model_spec(tmp: Path):
    """A randomly initialised DescriptorNet, for developing before trained weights exist."""
    import torch

    from copytrace.models.registry import DescriptorSpec
    from copytrace.models.resnet import DescriptorNet, export_onnx

    torch.manual_seed(0)
    export_onnx(DescriptorNet(), str(tmp / "random.onnx"), (160, 160))
    spec = {"name": "random-r18s", "version": "0", "media": "image", "file": "random.onnx",
            "input_size": [160, 160], "resize": "squash", "mean": [0.485, 0.456, 0.406],
            "std": [0.229, 0.224, 0.225], "dims": 256}
    (tmp / "random-r18s.json").write_text(json.dumps(spec))
    return DescriptorSpec.from_file(tmp / "random-r18s.json")


def model_embed(name: str, precision: str, backend: str, tmp: Path):
    from copytrace.runtime import load_encoder

    if name == "random":
        spec = random_model_spec(tmp)
    else:
        from copytrace.models import get_spec

        spec = get_spec(name)
    enc = load_encoder(spec, backend=backend, precision=precision)
    return enc.encode_images, spec


def describe(path: str, embed, dims: int, fps: float, crop_borders: bool = True,
             views: tuple[float, float] = (0.0, 0.0)):
    """The engine's frame description (``copytrace.engine.describe_video_frames``) with any
    embedding: used for the hash baselines, which the engine's model registry does not hold."""
    from copytrace.engine import describe_video_frames

    d, _ = describe_video_frames(path, embed, "bench", dims, fps=fps, max_side=320,
                                 crop_borders=crop_borders, view_fractions=views)
    return d


# ------------------------------------------------------------------------------ evaluation


def boundary_errors(preds: dict, truth: dict) -> dict[str, list[float]]:
    """For each true copy, the predicted segment of its pair overlapping it most (query axis)."""
    errs: dict[str, list[float]] = {"q_start": [], "q_end": [], "r_start": [], "r_end": []}
    for key, boxes in truth.items():
        for tb in boxes:
            best, best_ov = None, 0.0
            for pb in preds.get(key, []):
                ov = min(pb[1], tb[1]) - max(pb[0], tb[0])
                if ov > best_ov:
                    best, best_ov = pb, ov
            if best is None:
                continue
            for i, k in enumerate(("q_start", "q_end", "r_start", "r_end")):
                errs[k].append(abs(best[i] - tb[i]))
    return errs


def engine_config(args: argparse.Namespace):
    from copytrace.engine import EngineConfig

    return EngineConfig(
        image_model=args.model, backend=args.backend, precision=args.precision,
        video_fps=args.fps, aligner=args.aligner, audio=False, refine_boundaries=args.refine,
        query_corner_views=args.corner_views, query_centre_view=args.centre_view,
        query_views_all_frames=args.views_all_frames,
        video_max_query_overlap=args.max_query_overlap,
        video_frame_cohort=getattr(args, "frame_cohort", True),
    )


def predict_engine(args: argparse.Namespace, bench: dict, tmp: Path):
    """The product's path: register the references in a fresh Library, ``Library.query`` each
    query (ANN candidates, views, alignment, refinement). Yields (query, [(ref, Segment)], wall)."""
    from copytrace.engine import Library

    cfg = engine_config(args)
    with Library.open(tmp / "library", cfg) as lib:
        t0 = time.perf_counter()
        for r in bench["references"]:
            lib.add(r["path"], title=r["id"])
        yield "ingest", time.perf_counter() - t0
        for q in bench["queries"]:
            res = lib.query(q["path"], top_k=10)
            found = [(m.title, s) for m in res.matches if m.signal == "visual" for s in m.segments]
            yield q, (found, res.elapsed_s, res.query.duration_s or 0.0)


def predict_framewise(args: argparse.Namespace, bench: dict):
    """Baselines with a perceptual hash: every query against every reference (no ANN), through
    the engine's frame description, view similarity, aligners, overlap suppression and
    refinement."""
    from copytrace.align import get_aligner
    from copytrace.align.base import best_view_similarity
    from copytrace.align.dp import DPConfig
    from copytrace.align.hv import HVConfig
    from copytrace.align.refine import RefineConfig, refine_boundaries
    from copytrace.align.tn import TNConfig
    from copytrace.engine import suppress_query_overlaps
    from copytrace.media.video import crop_uniform_borders, read_frames_between

    embed = hash_embed(args.descriptor.split("-", 1)[1])
    min_sim = HASH_MIN_SIM if args.min_sim is None else args.min_sim
    cfg = {"tn": TNConfig(min_sim=min_sim, top_k=args.top_k),
           "dp": DPConfig(bias=min_sim), "hv": HVConfig(min_sim=min_sim)}[args.aligner]
    aligner = get_aligner(args.aligner, cfg)
    views = (args.corner_views, args.centre_view)
    t0 = time.perf_counter()
    refs = {r["id"]: (describe(r["path"], embed, 64, args.fps, args.crop_borders), r["path"])
            for r in bench["references"]}
    yield "ingest", time.perf_counter() - t0

    def refine_embed(images):
        # Boundary frames are described exactly as the sampled ones were.
        return embed([crop_uniform_borders(im) for im in images] if args.crop_borders else images)

    for q in bench["queries"]:
        t1 = time.perf_counter()
        qd = describe(q["path"], embed, 64, args.fps, args.crop_borders, views)
        found = []
        for rid, (rd, rpath) in refs.items():
            if len(qd) == 0 or len(rd) == 0:
                continue
            segs = aligner.align(best_view_similarity(qd.vectors, qd.views, rd.vectors),
                                 qd.starts_s, rd.starts_s)
            segs = suppress_query_overlaps(segs, args.max_query_overlap)
            if args.refine:
                segs = [refine_boundaries(s, partial(read_frames_between, q["path"]),
                                          partial(read_frames_between, rpath), refine_embed,
                                          RefineConfig())
                        for s in segs]
            found += [(rid, s) for s in segs]
        yield q, (found, time.perf_counter() - t1, float(qd.ends_s[-1]) if len(qd) else 0.0)


def run(args: argparse.Namespace) -> None:
    from copytrace.eval.metrics import micro_average_precision, precision_recall
    from copytrace.eval.segments import ScoredBox, pair_precision_recall, vcsl_prf, vsc_segment_ap

    bench = json.loads((args.data / "bench.json").read_text())
    tmp = Path(tempfile.mkdtemp(prefix="ct-bench-video-"))
    engine = not args.descriptor.startswith("hash-")
    stream = predict_engine(args, bench, tmp) if engine else predict_framewise(args, bench)
    truth: dict[tuple[str, str], list] = {}
    preds: dict[tuple[str, str], list] = {}
    scored: list[ScoredBox] = []
    q_wall, q_media, ingest_s = [], 0.0, math.nan
    for q, out in stream:
        if q == "ingest":
            ingest_s = out
            continue
        for t in q["truth"]:
            truth.setdefault((q["id"], t["ref"]), []).append(tuple(t["box"]))
        found, wall, media_s = out
        for rid, s in found:
            box = (s.query_start_s, s.query_end_s, s.ref_start_s, s.ref_end_s)
            preds.setdefault((q["id"], rid), []).append(box)
            scored.append(ScoredBox(q["id"], rid, box, s.score))
        q_wall.append(wall)
        q_media += media_s
        log.info("%s %s: %d segments, %.2f s", q["id"], q["kind"], len(found), wall)
    ref_s = sum(r["duration_s"] for r in bench["references"])
    for k in truth:
        preds.setdefault(k, [])
    v = vcsl_prf(preds, truth)
    ap = vsc_segment_ap(scored, truth)
    errs = boundary_errors(preds, truth)
    med = {k: (statistics.median(x) if x else math.nan) for k, x in errs.items()}
    # Video-level detection: each (query, reference) pair ranked by its best segment's score.
    pr = precision_recall([b.query for b in scored], [b.ref for b in scored],
                          [b.score for b in scored], [k for k, v in truth.items() if v])
    pair_uap = micro_average_precision(pr)
    neg = [q["id"] for q in bench["queries"] if not q["truth"]]
    neg_hits = sum(1 for q in neg if any(k[0] == q and b for k, b in preds.items()))
    result = {
        "data": str(args.data),
        "descriptor": f"{args.model}/{args.precision}/{args.backend}" if engine else
        args.descriptor,
        "path": "Library.query" if engine else "framewise, every reference",
        "aligner": args.aligner, "fps": args.fps, "refine": args.refine,
        "corner_views": args.corner_views, "centre_view": args.centre_view,
        "views_all_frames": args.views_all_frames, "max_query_overlap": args.max_query_overlap,
        "engine_config": repr(engine_config(args)) if engine else None,
        "vcsl_precision": v.precision, "vcsl_recall": v.recall, "vcsl_f1": v.f1,
        "segment_ap": ap, "pair_uap": pair_uap, "median_abs_err_s": med,
        "median_abs_err_query_s": statistics.median(errs["q_start"] + errs["q_end"])
        if errs["q_start"] else math.nan,
        "median_abs_err_ref_s": statistics.median(errs["r_start"] + errs["r_end"])
        if errs["r_start"] else math.nan,
        "true_pairs": v.n_true_pairs, "false_pair_rate": v.false_pair_rate,
        "negatives_with_a_match": f"{neg_hits}/{len(neg)}",
        "ingest_x_realtime": ref_s / ingest_s, "reference_s": ref_s,
        "query_median_s": statistics.median(q_wall), "query_x_realtime": q_media / sum(q_wall),
        "load_average": os.getloadavg(),
    }
    per_pair = []
    for q in bench["queries"]:
        for rid in sorted({t["ref"] for t in q["truth"]}):
            p, r = pair_precision_recall(preds.get((q["id"], rid), []), truth[(q["id"], rid)])
            edits = [e for t in q["truth"] if t["ref"] == rid for e in t["edits"]]
            per_pair.append({"query": q["id"], "ref": rid, "kind": q["kind"], "crf": q["crf"],
                             "fps": q["fps"], "edits": edits, "precision": p, "recall": r})
    by_edit = {}
    for e in sorted({e for x in per_pair for e in x["edits"]}):
        rs = [x["recall"] for x in per_pair if e in x["edits"]]
        by_edit[e] = {"pairs": len(rs), "mean_recall": float(np.mean(rs))}
    result["recall_by_edit"] = by_edit
    print(json.dumps(result, indent=1))
    result["pairs"] = per_pair
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(result, indent=1))


def innocent(args: argparse.Namespace) -> None:
    """Innocent uploads (scripts/stage_negatives.py) against a library of the eval bench's
    references plus low-detail reference animations: how many innocent videos of each kind get
    any visual match at the default 0.5. The library is built once; each variant (``cohort``:
    the shipped frame cohort and video threshold, ``plain``: cosines and the image threshold,
    as before issue 19) queries it in turn. ``--calibrate`` (calibration split only) fits the
    video threshold on the cohort variant's innocent best similarities and writes it into the
    frame-cohort entry beside the weights."""
    from dataclasses import replace

    from copytrace.engine import Library
    from copytrace.models.frame_cohort import entry_path, fit_threshold, load_frame_cohort

    if args.calibrate and args.split != "calibration":
        raise SystemExit("--calibrate fits on the calibration split only (--split calibration)")
    bench = json.loads((args.data / "bench.json").read_text())
    man = json.loads((args.negatives / "manifest.json").read_text())["items"]
    refs = [(r["id"], r["path"]) for r in bench["references"]]
    refs += [(Path(it["path"]).stem, str(args.negatives / it["path"])) for it in man
             if it["signal"] == "visual" and it["split"] == "reference"]
    queries = [it for it in man if it["signal"] == "visual" and it["split"] == args.split]
    tmp = Path(tempfile.mkdtemp(prefix="ct-bench-innocent-"))
    t0 = time.perf_counter()
    with Library.open(tmp / "library", engine_config(args)) as lib:
        for rid, path in refs:
            lib.add(path, title=rid)
    log.info("%d references registered in %.0f s", len(refs), time.perf_counter() - t0)
    result: dict = {"split": args.split, "references": len(refs), "queries": len(queries),
                    "load_average": os.getloadavg(), "variants": {}}
    for variant in args.variants:
        args.frame_cohort = variant == "cohort"
        rows = []
        with Library.open(tmp / "library", engine_config(args)) as lib:
            for it in queries:
                res = lib.query(str(args.negatives / it["path"]), top_k=5, min_score=0.0)
                vis = [m for m in res.matches if m.signal == "visual"]
                top = max(vis, key=lambda m: m.score, default=None)
                rows.append({"path": it["path"], "kind": it["kind"], "elapsed_s": res.elapsed_s,
                             "best": top.title if top else None,
                             "score": top.score if top else 0.0,
                             "similarity": top.similarity if top else None})
                log.info("%s %s: %s %.3f", variant, it["path"], rows[-1]["best"],
                         rows[-1]["score"])
            cohort = load_frame_cohort(lib.image_spec) if variant == "cohort" else None
        kinds = {}
        for k in sorted({r["kind"] for r in rows}):
            rs = [r for r in rows if r["kind"] == k]
            hit = [r for r in rs if r["score"] >= 0.5]
            kinds[k] = {"videos": len(rs), "with_a_match": len(hit),
                        "matched_to": sorted({r["best"] for r in hit})}
        n_hit = sum(r["score"] >= 0.5 for r in rows)
        summary = {"with_a_match": n_hit, "rate": n_hit / max(1, len(rows)), "per_kind": kinds,
                   "query_median_s": statistics.median(r["elapsed_s"] for r in rows)}
        if cohort is not None and args.calibrate:
            best = [r["similarity"] for r in rows if r["similarity"] is not None]
            floor = lib.image_spec.threshold_similarity
            thr = fit_threshold(best, args.target_rate, floor)
            entry = replace(cohort.spec, threshold_similarity=round(thr, 5), calibration=(
                f"bench/video.py innocent --calibrate: {len(rows)} innocent videos "
                f"(calibration split of scripts/stage_negatives.py) against {len(refs)} "
                f"references; at most {args.target_rate:g} of them may reach it, never below "
                f"the image threshold {floor}"))
            entry_path(Path(cohort.spec.directory), lib.image_spec.name).write_text(
                json.dumps(entry.to_json(), indent=1) + "\n")
            summary["fitted_threshold"] = entry.threshold_similarity
            log.info("video threshold %.5f written", entry.threshold_similarity)
        result["variants"][variant] = summary
        result.setdefault("rows", {})[variant] = rows
    out = {k: v for k, v in result.items() if k != "rows"}
    print(json.dumps(out, indent=1))
    if args.json_out:
        Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json_out).write_text(json.dumps(result, indent=1))


def distinct(args: argparse.Namespace) -> None:
    """Fit the frame cohort's ``verify_min_inliers`` where the engine uses it, on innocent
    pairs only: the content-kind videos (slideshow, screen, game) of the negatives corpus's
    ``--split`` (calibration) are registered in a fresh Library, every video of the split is
    queried, and every keypoint check the engine makes (``VisualSignal._inliers``, run to the
    end) is recorded; checks of a video against itself or against one sharing a source picture
    (a real copy) are left out. The fit is the most inliers an innocent check reached, plus one.
    ``--write`` stores it in the entry."""
    from dataclasses import replace

    from copytrace.engine import Library
    from copytrace.models import get_spec
    from copytrace.models.frame_cohort import entry_path, read_frame_cohort_spec
    from copytrace.models.registry import WEIGHTS_DIR
    from copytrace.signals import visual

    items = [it for it in json.loads((args.data / "manifest.json").read_text())["items"]
             if it["signal"] == "visual" and it["split"] == args.split]
    sources = {os.path.realpath(args.data / it["path"]): set(it.get("sources", []))
               for it in items}
    checks: list[dict] = []
    real = visual.VisualSignal._inliers

    def recorded(self, query, a, seg, enough):
        n = real(self, query, a, seg, 1 << 30)  # every pair tried: the most an innocent reaches
        checks.append({"query": os.path.realpath(query.media.path),
                       "ref": os.path.realpath(a.work.path), "inliers": n,
                       "query_s": [seg.query_start_s, seg.query_end_s]})
        return n

    visual.VisualSignal._inliers = recorded
    tmp = Path(tempfile.mkdtemp(prefix="ct-bench-distinct-"))
    try:
        with Library.open(tmp / "library", engine_config(args)) as lib:
            for it in items:
                if it["kind"] in CONTENT_KINDS:
                    lib.add(str(args.data / it["path"]), title=Path(it["path"]).stem)
            for it in items:
                lib.query(str(args.data / it["path"]), top_k=10)
    finally:
        visual.VisualSignal._inliers = real
    innocent = [c for c in checks if c["query"] != c["ref"]
                and not sources[c["query"]] & sources.get(c["ref"], set())]
    fit = max([c["inliers"] for c in innocent], default=0) + 1
    out = {"split": args.split, "videos": len(items), "checks": len(checks),
           "innocent_checks": len(innocent), "fit": fit,
           "top": sorted(innocent, key=lambda c: -c["inliers"])[:8],
           "load_average": os.getloadavg()}
    print(json.dumps(out, indent=1))
    if args.write:
        spec = get_spec(args.model)
        entry = read_frame_cohort_spec(WEIGHTS_DIR, spec.name)
        entry = replace(entry, verify_min_inliers=fit)
        entry_path(WEIGHTS_DIR, spec.name).write_text(json.dumps(entry.to_json(), indent=1) + "\n")
        log.info("verify_min_inliers %d written", fit)
    if args.json_out:
        Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json_out).write_text(json.dumps({**out, "checks": checks}, indent=1))


# Where a query's time goes: the engine functions whose cumulative time is reported.
LATENCY_STAGES = {
    "describe (decode + sample + views + encode)": ("signals/visual.py", "describe"),
    "candidate search": ("signals/base.py", "candidates"),
    "alignment + scoring": ("signals/visual.py", "_align"),
    "keypoint checks (decode + features + RANSAC)": ("signals/visual.py", "_inliers"),
    "boundary refinement": ("align/refine.py", "refine_boundaries"),
    "decoding windows (refinement and checks)": ("media/video.py", "__call__"),  # WindowReader
    "  describing refinement frames": ("align/refine.py", "get"),
}


def latency(args: argparse.Namespace) -> None:
    """Wall time of ``Library.query`` for the eval queries of ``--min-s``..``--max-s`` seconds
    against the eval references: median and p90 over ``--repeat`` rounds, and a profile of the
    stages (cProfile's cumulative time of the functions in LATENCY_STAGES, one extra round)."""
    import cProfile
    import pstats

    from copytrace.engine import Library

    bench = json.loads((args.data / "bench.json").read_text())
    tmp = Path(tempfile.mkdtemp(prefix="ct-bench-latency-"))
    from copytrace.media.video import probe_video

    queries = [q for q in bench["queries"]
               if args.min_s <= probe_video(q["path"]).duration_s <= args.max_s]
    with Library.open(tmp / "library", engine_config(args)) as lib:
        for r in bench["references"]:
            lib.add(r["path"], title=r["id"])
        lib.query(queries[0]["path"])  # warm-up: model load and first inference
        walls = []
        for _ in range(args.repeat):
            for q in queries:
                t0 = time.perf_counter()
                lib.query(q["path"], top_k=10)
                walls.append(time.perf_counter() - t0)
        prof = cProfile.Profile()
        prof.enable()
        for q in queries:
            lib.query(q["path"], top_k=10)
        prof.disable()
    stats = pstats.Stats(prof).stats
    total = sum(v[3] for k, v in stats.items() if k[2] == "query" and k[0].endswith("engine.py"))
    stages = {}
    for label, (file, fn) in LATENCY_STAGES.items():
        stages[label] = round(sum(v[3] for k, v in stats.items()
                                  if k[0].endswith(file) and k[2] == fn) / len(queries), 4)
    walls.sort()
    out = {"data": str(args.data), "queries": len(queries), "rounds": args.repeat,
           "query_s": [args.min_s, args.max_s], "references": len(bench["references"]),
           "median_s": statistics.median(walls),
           "p90_s": walls[min(len(walls) - 1, int(0.9 * len(walls)))],
           "profiled_s_per_query": round(total / len(queries), 4),
           "stage_s_per_query": stages, "load_average": os.getloadavg(),
           "machine": f"{platform.machine()}, {os.cpu_count()} cpus"}
    print(json.dumps(out, indent=1))
    if args.json_out:
        Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json_out).write_text(json.dumps(out, indent=1))


def speed(args: argparse.Namespace) -> None:
    """Ingest speed (decode + describe) on the 720p H.264 eval files, and TN time for a 60 s
    query against a long reference (its descriptors tiled to ``--ref-hours``)."""
    from copytrace.align import get_aligner
    from copytrace.align.base import similarity_matrix
    from copytrace.align.tn import TNConfig
    from copytrace.media.video import probe_video

    man = json.loads((args.videos / "manifest.json").read_text())["videos"]
    files = [v for v in man if v["height"] == 720 and v["file"].endswith(".mp4")]
    tmp = Path(tempfile.mkdtemp(prefix="ct-bench-video-"))
    if args.descriptor.startswith("hash-"):
        embed = hash_embed(args.descriptor.split("-", 1)[1])
    else:
        embed, _ = model_embed(args.model, args.precision, args.backend, tmp)
    dims = embed([Image.new("RGB", (64, 64))]).shape[-1]  # warm-up: first inference compiles
    rows = []
    for v in files:
        path = str(args.videos / v["file"])
        d = probe_video(path).duration_s
        walls = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            describe(path, embed, dims, args.fps)
            walls.append(time.perf_counter() - t0)
        rows.append({"file": v["file"], "duration_s": d, "codec": "h264 720p",
                     "median_wall_s": statistics.median(walls),
                     "x_realtime": d / statistics.median(walls)})
    total = sum(r["duration_s"] for r in rows) / sum(r["median_wall_s"] for r in rows)
    rng = np.random.default_rng(0)
    n_ref = int(args.ref_hours * 3600 * args.fps)
    ref = rng.normal(size=(n_ref, dims)).astype(np.float32)
    ref /= np.linalg.norm(ref, axis=1, keepdims=True)
    noise = rng.normal(size=(int(60 * args.fps), dims)) / np.sqrt(dims)
    q = ref[1000:1000 + int(60 * args.fps)] + noise
    q = (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32)
    qt, rt = np.arange(len(q)) / args.fps, np.arange(n_ref) / args.fps
    aligner = get_aligner("tn", TNConfig(min_sim=args.min_sim))
    t0 = time.perf_counter()
    segs = aligner.align(similarity_matrix(q, ref), qt, rt)
    align_s = time.perf_counter() - t0
    out = {"files": rows, "ingest_x_realtime_720p_h264": total, "fps": args.fps,
           "tn_align_60s_query_vs_hours": args.ref_hours, "tn_align_s": align_s,
           "tn_found": [s.to_dict() for s in segs][:2]}
    print(json.dumps(out, indent=1))


# ------------------------------------------------------------------------------ TMK+PDQF

def tmk(args: argparse.Namespace) -> None:
    """Video-level detection with TMK+PDQF (Facebook ThreatExchange, via ``tmkpy``): every
    (query, reference) pair scored by TMK's level-2 score (level 1, the cosine of the mean PDQF
    frame features, as a second ranking); µAP of true pairs (a pair holds a copy) over the
    pooled ranking, as ``run`` reports ``pair_uap`` for copytrace. tmkpy decodes with a system
    ``ffmpeg`` (given by ``--ffmpeg``), which copytrace itself never needs."""
    from copytrace.eval.metrics import micro_average_precision, precision_recall

    try:
        import tmkpy
    except ModuleNotFoundError as e:
        raise ModuleNotFoundError("the TMK baseline needs tmkpy: apt-get install swig, then "
                                  "pip install tmkpy") from e
    bench = json.loads((args.data / "bench.json").read_text())

    def hash_file(path: str):
        # tmkpy runs ffmpeg, whose progress lines on fd 2 would flood the log.
        with open(os.devnull, "w") as null:
            fd = os.dup(2)
            os.dup2(null.fileno(), 2)
            try:
                return tmkpy.hashVideo(path, args.ffmpeg)
            finally:
                os.dup2(fd, 2)
                os.close(fd)

    t0 = time.perf_counter()
    refs = {r["id"]: hash_file(r["path"]) for r in bench["references"]}
    qs = {q["id"]: hash_file(q["path"]) for q in bench["queries"]}
    hash_s = time.perf_counter() - t0
    truth = {(q["id"], t["ref"]) for q in bench["queries"] for t in q["truth"]}
    rows = [(qid, rid, tmkpy.TMKFeatureVectors_computeLevel1Score(qv, rv),
             tmkpy.TMKFeatureVectors_computeLevel2Score(qv, rv))
            for qid, qv in qs.items() for rid, rv in refs.items()]
    out = {"baseline": "TMK+PDQF (tmkpy 0.1.1)", "pairs": len(rows), "true_pairs": len(truth),
           "hash_s": hash_s, "load_average": os.getloadavg()}
    for level, col in (("level2", 3), ("level1", 2)):
        pr = precision_recall([r[0] for r in rows], [r[1] for r in rows],
                              [r[col] for r in rows], truth)
        out[f"pair_uap_{level}"] = micro_average_precision(pr)
    print(json.dumps(out, indent=1))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(out, indent=1))


# ------------------------------------------------------------------------------ 10 h library

def _shift_colour(im: Image.Image, rng: random.Random) -> Image.Image:
    im = ImageEnhance.Brightness(im).enhance(rng.uniform(0.7, 1.3))
    im = ImageEnhance.Contrast(im).enhance(rng.uniform(0.7, 1.3))
    im = ImageEnhance.Color(im).enhance(rng.uniform(0.5, 1.5))
    return im


def edited_version(frames: list[list[Image.Image]], rng: random.Random, minutes: float):
    """One synthetic work: runs of consecutive 1 fps frames from random clips, re-ordered and
    concatenated, each run with its own crop / flip / colour shift / blur."""
    out: list[Image.Image] = []
    while len(out) < minutes * 60:
        clip = frames[rng.randrange(len(frames))]
        n = min(len(clip), rng.randint(5, 40))
        a = rng.randint(0, len(clip) - n)
        crop = [rng.uniform(0, 0.15) for _ in range(4)] if rng.random() < 0.5 else None
        flip, colour, blur = rng.random() < 0.3, rng.random() < 0.6, rng.random() < 0.2
        for im in clip[a:a + n]:
            if crop:
                w, h = im.size
                im = im.crop((int(crop[0] * w), int(crop[1] * h), int(w - crop[2] * w),
                              int(h - crop[3] * h)))
            if flip:
                im = ImageOps.mirror(im)
            if colour:
                im = _shift_colour(im, random.Random(a))
            if blur:
                im = im.filter(ImageFilter.GaussianBlur(1.5))
            out.append(im)
    return out


def build_scale_library(args: argparse.Namespace) -> Path:
    """``--hours`` of reference video in a Library: the eval bench's references from their
    files (``Library.add``: decoded, described, boundary refinement possible), then synthetic
    works made by editing and re-ordering the frames of the other eval clips (not of the
    references' families, so each copied reference is matched, and refined, against its own
    file), described with the real model and registered with ``Library.add_descriptors`` (they
    have no file)."""
    from copytrace.engine import Library
    from copytrace.errors import MediaError
    from copytrace.media.video import crop_uniform_borders, is_flat_frame, iter_frames
    from copytrace.types import Descriptors

    root = args.out / "library"
    if (root / "built.json").exists():
        return root
    bench = json.loads((args.data / "bench.json").read_text())
    man = json.loads((args.videos / "manifest.json").read_text())["videos"]
    rng = random.Random(args.seed)
    with Library.open(root, engine_config(args)) as lib:
        t0 = time.perf_counter()
        for r in bench["references"]:
            lib.add(r["path"], title=r["id"])
        real_s = sum(w.duration_s or 0 for w in lib.works())
        ref_files = {Path(r["path"]).name for r in bench["references"]}
        ref_families = {v["family"] for v in man if v["file"] in ref_files}
        frames = []
        for v in man:
            if v["family"] in ref_families:
                continue
            ims = []
            try:
                for _, im in iter_frames(str(args.videos / v["file"]), fps=1.0, max_side=320):
                    ims.append(crop_uniform_borders(im))
            except MediaError as e:  # a damaged file: keep the frames that decoded
                log.info("%s", e)
            ims = [im for im in ims if not is_flat_frame(im)]
            if len(ims) >= 5:
                frames.append(ims)
        spec = lib.image_spec
        total_s, n = real_s, 0
        while total_s < args.hours * 3600:
            ims = edited_version(frames, rng, rng.uniform(2.0, 6.0))
            vectors = np.concatenate([lib.encoder.encode_images(ims[i:i + 64])
                                      for i in range(0, len(ims), 64)])
            starts = np.arange(len(ims), dtype=np.float64)
            d = Descriptors(vectors, starts, starts + 1.0, spec.model_id, "visual")
            lib.add_descriptors(d, title=f"edited-{n:04d}", duration_s=float(len(ims)),
                                flush=False)
            total_s += len(ims)
            n += 1
            if n % 20 == 0:
                log.info("%d synthetic works, %.2f h", n, total_s / 3600)
        lib.flush()
        built = {"works": len(lib.works()), "real_files_s": real_s, "hours": total_s / 3600,
                 "synthetic_works": n, "build_s": time.perf_counter() - t0}
    (root / "built.json").write_text(json.dumps(built, indent=1))
    return root


def make_long_queries(args: argparse.Namespace) -> list[Path]:
    """``--queries`` queries of 60 s: two edited copies of bench references in filler footage."""
    bench = json.loads((args.data / "bench.json").read_text())
    refs = bench["references"]
    fillers = [str(args.videos / f) for f in bench["fillers"]]
    rng = random.Random(args.seed + 1)
    out = []
    (args.out / "queries").mkdir(parents=True, exist_ok=True)
    for i in range(args.queries):
        path = args.out / "queries" / f"long{i:02d}.mp4"
        out.append(path)
        if path.exists():
            continue
        filler = rng.choice(fillers)
        pieces, used = [], 0.0
        while used < 59.0:
            if len(pieces) % 2:
                ref = rng.choice(refs)
                L = min(20.0, ref["duration_s"] - 0.5, 60.0 - used)
                a = rng.uniform(0, ref["duration_s"] - 0.3 - L)
                pieces.append(Piece("copy", ref["path"], a, L, ref["id"], draw_edit(rng, "light")))
                pieces[-1].edit.speed = 1.0
            else:
                L = min(rng.uniform(5.0, 10.0), 60.0 - used)
                pieces.append(Piece("filler", filler, rng.uniform(0, 5.0), L))
            used += L
        write_query(pieces, path, 25.0, (480, 270), 23, args.seed + i)
    return out


def scale(args: argparse.Namespace) -> None:
    """Latency of ``Library.query`` on 60 s queries against a >= ``--hours`` library."""
    from copytrace.engine import Library
    from copytrace.media.video import probe_video

    root = build_scale_library(args)
    queries = make_long_queries(args)
    built = json.loads((root / "built.json").read_text())
    with Library.open(root, engine_config(args)) as lib:
        t0 = time.perf_counter()
        lib.query(str(queries[0]))  # loads the model and the index: not part of a query's time
        load_s = time.perf_counter() - t0
        walls, rows = [], []
        for _ in range(args.repeat):
            for q in queries:
                res = lib.query(str(q))
                walls.append(res.elapsed_s)
                rows.append({"query": q.name, "duration_s": probe_video(str(q)).duration_s,
                             "elapsed_s": res.elapsed_s,
                             "matches": [(m.title, m.score, len(m.segments))
                                         for m in res.matches[:3]]})
                log.info("%s %.2f s %s", q.name, res.elapsed_s, rows[-1]["matches"])
    index_bytes = sum(f.stat().st_size for f in root.glob("index-visual.faiss"))
    catalog_bytes = (root / "catalog.sqlite").stat().st_size
    out = {"library": built, "load_s": load_s, "query_median_s": statistics.median(walls),
           "query_max_s": max(walls), "n_timed": len(walls),
           "index_bytes_per_hour": index_bytes / built["hours"],
           "catalog_bytes_per_hour": catalog_bytes / built["hours"],
           "load_average": os.getloadavg(), "engine_config": repr(engine_config(args)),
           "queries": rows}
    print(json.dumps(out, indent=1))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(out, indent=1))


def main(argv: list[str] | None = None) -> None:
    from copytrace.engine import EngineConfig

    defaults = EngineConfig()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("make", help="build edited and spliced queries")
    m.add_argument("--videos", type=Path, default=Path("data/videos/eval"))
    m.add_argument("--out", type=Path, default=Path("data/bench/video"))
    m.add_argument("--queries", type=int, default=48)
    m.add_argument("--negatives", type=int, default=16)
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--from-negatives", type=Path, default=None, metavar="DIR",
                   help="take references and fillers from the negatives corpus's held-out and "
                        "reference videos (content-bearing kinds) instead of --videos")
    m.add_argument("--kinds", nargs="+", default=list(CONTENT_KINDS), choices=CONTENT_KINDS,
                   help="with --from-negatives: the kinds taken (default: all content kinds)")
    r = sub.add_parser("run", help="describe, align and score")
    r.add_argument("--data", type=Path, default=Path("data/bench/video"))
    r.add_argument("--descriptor", default="model", choices=["model", "hash-dhash", "hash-phash"],
                   help="model: the product's path (Library.add / Library.query); hash-*: "
                   "framewise perceptual-hash baselines")
    r.add_argument("--model", default="ct-image-r18s", help="registry name")
    r.add_argument("--precision", default="auto", choices=["auto", "fp32", "int8"])
    r.add_argument("--backend", default="openvino")
    r.add_argument("--aligner", default="tn", choices=["tn", "dp", "hv"])
    r.add_argument("--min-sim", type=float, default=None,
                   help=f"hash baselines: aligner similarity floor (default {HASH_MIN_SIM}: at "
                   "most 12 of 64 bits differ); the model uses its calibrated threshold")
    r.add_argument("--top-k", type=int, default=5, help="hash baselines: TN top_k")
    r.add_argument("--fps", type=float, default=1.0)
    r.add_argument("--refine", action=argparse.BooleanOptionalAction, default=True,
                   help="frame-accurate boundary refinement (default on, as in the engine)")
    r.add_argument("--corner-views", type=float, default=defaults.query_corner_views,
                   help="also describe each query frame's four corners at this fraction of its "
                   "sides (0: off) and keep the best view: finds picture-in-picture copies")
    r.add_argument("--centre-view", type=float, default=defaults.query_centre_view,
                   help="also describe each query frame's centre at this fraction (0: off)")
    r.add_argument("--views-all-frames", action="store_true",
                   help="views for every query frame, not only frames without a match")
    r.add_argument("--max-query-overlap", type=float, default=defaults.video_max_query_overlap,
                   help="drop a pair's segment whose query span is more than this fraction "
                   "covered by better segments of the pair (1: keep all)")
    r.add_argument("--no-crop-borders", dest="crop_borders", action="store_false",
                   help="hash baselines: describe frames with their letterbox/padding bars")
    r.add_argument("--frame-cohort", action=argparse.BooleanOptionalAction,
                   default=defaults.video_frame_cohort,
                   help="typicality-normalised, informative-only frame evidence and the video "
                   "threshold (models/frame_cohort.py; --no-frame-cohort: plain cosines)")
    r.add_argument("--json-out", default="")
    inn = sub.add_parser("innocent", help="innocent uploads (stage_negatives.py): any match?")
    inn.add_argument("--data", type=Path, default=Path("data/bench/video"),
                     help="the bench whose references are registered")
    inn.add_argument("--negatives", type=Path, default=Path("data/negatives"))
    inn.add_argument("--split", default="heldout", choices=["calibration", "heldout"])
    inn.add_argument("--variants", nargs="+", default=["cohort", "plain"],
                     choices=["cohort", "plain"])
    inn.add_argument("--calibrate", action="store_true")
    inn.add_argument("--target-rate", type=float, default=0.01)
    inn.add_argument("--json-out", default="")
    sp = sub.add_parser("speed", help="ingest speed on 720p H.264, align time on long refs")
    sp.add_argument("--videos", type=Path, default=Path("data/videos/eval"))
    sp.add_argument("--descriptor", default="model", choices=["model", "hash-dhash", "hash-phash"])
    sp.add_argument("--model", default="ct-image-r18s")
    sp.add_argument("--precision", default="fp32", choices=["fp32", "int8"])
    sp.add_argument("--backend", default="openvino")
    sp.add_argument("--fps", type=float, default=1.0)
    sp.add_argument("--min-sim", type=float, default=0.5)
    sp.add_argument("--ref-hours", type=float, default=10.0)
    sp.add_argument("--repeat", type=int, default=3)
    sc = sub.add_parser("scale", help="60 s query latency against a >= 10 h Library")
    sc.add_argument("--data", type=Path, default=Path("data/bench/video"))
    sc.add_argument("--videos", type=Path, default=Path("data/videos/eval"))
    sc.add_argument("--out", type=Path, default=Path("data/bench/video-10h"))
    sc.add_argument("--hours", type=float, default=10.0)
    sc.add_argument("--queries", type=int, default=5)
    sc.add_argument("--repeat", type=int, default=2)
    sc.add_argument("--seed", type=int, default=0)
    sc.add_argument("--json-out", default="")
    for name in ("model", "backend", "precision", "fps", "aligner", "refine", "corner_views",
                 "centre_view", "views_all_frames", "max_query_overlap", "frame_cohort"):
        sc.set_defaults(**{name: r.get_default(name)})
        inn.set_defaults(**{name: r.get_default(name)})
    la = sub.add_parser("latency", help="query wall time (median, p90) and where it goes")
    la.add_argument("--data", type=Path, default=Path("data/bench/video"))
    la.add_argument("--min-s", type=float, default=15.0)
    la.add_argument("--max-s", type=float, default=25.0)
    la.add_argument("--repeat", type=int, default=3)
    la.add_argument("--json-out", default="")
    for name in ("model", "backend", "precision", "fps", "aligner", "refine", "corner_views",
                 "centre_view", "views_all_frames", "max_query_overlap", "frame_cohort",
                 "min_sim"):
        la.set_defaults(**{name: r.get_default(name)})
    di = sub.add_parser("distinct", help="fit verify_min_inliers on innocent video pairs")
    di.add_argument("--data", type=Path, default=Path("data/negatives"))
    di.add_argument("--split", default="calibration")
    di.add_argument("--write", action="store_true")
    di.add_argument("--json-out", default="")
    for name in ("model", "backend", "precision", "fps", "aligner", "refine", "corner_views",
                 "centre_view", "views_all_frames", "max_query_overlap", "frame_cohort"):
        di.set_defaults(**{name: r.get_default(name)})
    tk = sub.add_parser("tmk", help="TMK+PDQF video-level detection baseline (tmkpy)")
    tk.add_argument("--data", type=Path, default=Path("data/bench/video"))
    tk.add_argument("--ffmpeg", default="/usr/bin/ffmpeg")
    tk.add_argument("--json-out", default="")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    {"make": make, "run": run, "speed": speed, "scale": scale, "innocent": innocent,
     "tmk": tmk, "latency": latency, "distinct": distinct}[args.cmd](args)


if __name__ == "__main__":
    main()

"""Build the image model's frame cohort (models/frame_cohort.py) from *train* images.

    python -m copytrace.train.frame_cohort --images .stage/images/pkgs/stellarium-data ... \\
        [--weights-dir DIR] [--n 6144] [--k 16]

Each cohort frame is a random frame-shaped crop (16:9 or 4:3, 35-100 % of the picture's side)
of a train-package picture, resized as the engine samples video (longest side 320), and in
about half the draws made duller the way video is: darkened, blurred, faded towards a flat
colour or desaturated. Crops the engine would skip (near-uniform frames) are skipped here too;
borders are cut as the engine cuts them. They are described with the shipped image model
(``precision='auto'``, OpenVINO, as the engine describes frames). The file goes beside the weights
as ``<name>.frame-cohort.npy`` (float16) with its entry ``<name>.frame-cohort.json``; ``level``
is the mean typicality of another draw of such crops. The threshold fields are kept from an
existing entry (``bench/video.py innocent --calibrate`` fits them) or start at the image model's.
Eval media never enters.
"""
from __future__ import annotations

import argparse
import json
import logging
import random
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

log = logging.getLogger("copytrace.train.frame_cohort")
IMAGE_EXT = (".png", ".jpg", ".jpeg")
SKIP = ("icon", "cursor", "font", "normal", "_nm", "spec", "mask", "button", "thumb")


def picture_paths(roots: list[Path]) -> list[Path]:
    out = []
    for r in roots:
        for p in sorted(Path(r).rglob("*")):
            if p.suffix.lower() in IMAGE_EXT and not any(s in str(p).lower() for s in SKIP):
                out.append(p)
    return out


def frame_crop(im: Image.Image, rng: random.Random) -> Image.Image:
    ar = rng.choice([16 / 9, 4 / 3])
    w, h = im.size
    frac = rng.uniform(0.35, 1.0)
    cw = min(w, h * ar) * frac
    ch = cw / ar
    x0, y0 = rng.uniform(0, w - cw), rng.uniform(0, h - ch)
    out = im.resize((320, int(320 / ar)), Image.BILINEAR, box=(x0, y0, x0 + cw, y0 + ch))
    what = rng.random()
    if what < 0.12:
        out = ImageEnhance.Brightness(out).enhance(rng.uniform(0.08, 0.4))
    elif what < 0.24:
        out = out.filter(ImageFilter.GaussianBlur(rng.uniform(2, 8)))
    elif what < 0.36:
        flat = Image.new("RGB", out.size, tuple(rng.randrange(256) for _ in range(3)))
        out = Image.blend(out, flat, rng.uniform(0.3, 0.75))
    elif what < 0.48:
        out = ImageEnhance.Color(out).enhance(rng.uniform(0.0, 0.4))
    return out


def crops(paths: list[Path], n: int, seed: int) -> list[Image.Image]:
    from copytrace.media.video import crop_uniform_borders, is_flat_frame

    rng = random.Random(seed)
    out: list[Image.Image] = []
    tries = 0
    while len(out) < n and tries < 20 * n:
        tries += 1
        p = rng.choice(paths)
        try:
            with Image.open(p) as im:
                im.draft("RGB", (640, 640))
                im = im.convert("RGBA")
                bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
                im = Image.alpha_composite(bg, im).convert("RGB")
        except Exception:  # noqa: BLE001 - unreadable package pictures are skipped
            continue
        if min(im.size) < 96:
            continue
        c = crop_uniform_borders(frame_crop(im, rng))
        if not is_flat_frame(c):
            out.append(c)
    return out


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", nargs="+", type=Path, required=True,
                    help="folders of *train* package pictures (DATA.md's train list)")
    ap.add_argument("--weights-dir", type=Path, default=None)
    ap.add_argument("--model", default="ct-image-r18s")
    ap.add_argument("--n", type=int, default=6144)
    ap.add_argument("--n-level", type=int, default=1024)
    ap.add_argument("--k", type=int, default=16)
    ap.add_argument("--weights", type=float, nargs=2, default=(0.5, 0.5))
    ap.add_argument("--informative-typicality", type=float, default=1.0)
    ap.add_argument("--min-informative-frames", type=int, default=2)
    ap.add_argument("--min-detail", type=float, default=3.5,
                    help="frames with less picture detail (frame_detail) carry no evidence")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()

    from copytrace.models.frame_cohort import (
        FrameCohort, FrameCohortSpec, entry_path, read_frame_cohort_spec,
    )
    from copytrace.models.registry import WEIGHTS_DIR, get_spec
    from copytrace.runtime import load_encoder

    spec = get_spec(a.model, a.weights_dir)
    out_dir = Path(a.weights_dir or WEIGHTS_DIR)
    enc = load_encoder(spec, "openvino", "int8" if spec.int8_file else "fp32", 0)
    paths = picture_paths(a.images)
    log.info("%d train pictures", len(paths))
    ims = crops(paths, a.n + a.n_level, a.seed)
    vecs = np.concatenate([enc.encode_images(ims[i:i + 64]) for i in range(0, len(ims), 64)])
    cohort, held = vecs[: a.n], vecs[a.n:]
    old = read_frame_cohort_spec(out_dir, spec.name)
    name = f"{spec.name}.frame-cohort.npy"
    np.save(out_dir / name, cohort.astype(np.float16))
    probe = FrameCohortSpec(spec.model_id, name, a.k, 0.0, tuple(a.weights),
                            a.informative_typicality, a.min_informative_frames,
                            spec.threshold_similarity, spec.score_slope, a.min_detail)
    typ = FrameCohort(probe, cohort.astype(np.float16).astype(np.float32), "").typicality(held)
    entry = FrameCohortSpec(
        spec.model_id, name, a.k, round(float(typ.mean()), 5), tuple(a.weights),
        a.informative_typicality, a.min_informative_frames,
        old.threshold_similarity if old else spec.threshold_similarity,
        old.score_slope if old else spec.score_slope,
        a.min_detail,
        old.calibration if old else "image model's threshold (not yet fitted on video)",
    )
    entry_path(out_dir, spec.name).write_text(json.dumps(entry.to_json(), indent=1) + "\n")
    log.info("cohort %s: %d frames, level %.4f (typicality of %d other crops: p10 %.3f, "
             "p50 %.3f, p90 %.3f)", out_dir / name, len(cohort), entry.level, len(held),
             *np.percentile(typ, [10, 50, 90]))


if __name__ == "__main__":
    main()

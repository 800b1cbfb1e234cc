"""Perceptual-hash baselines (PDQ, PDQ with dihedral query variants, pHash) for the image bench.

Runs inside its own venv (bench/baselines/setup.sh: pdqhash 0.2.8 needs numpy<2), so it imports
nothing from copytrace. Reads the benchmark's path lists, hashes every image, and writes for each
method the top-k references per query with similarity = 1 - hamming / bits:

    .stage/venvs/hashes/bin/python bench/baselines/hashes.py \
        --refs out/bench_images/lists/refs.txt --queries out/bench_images/lists/queries.txt \
        --out out/bench_images/baselines

Output: <out>/<method>.npz with ``sims`` [Nq, k] float32 and ``idx`` [Nq, k] int64 (best first),
plus <out>/<method>.json with timing.
"""
from __future__ import annotations

import argparse
import json
import time
from multiprocessing import Pool
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

# Decode at most this size: both hashes downsample far below it, and JPEG draft mode makes
# decoding large wallpapers several times faster.
DECODE_SIDE = 1024


def load_rgb(path: str) -> Image.Image:
    with Image.open(path) as im:
        if getattr(im, "n_frames", 1) > 1:
            im.seek(0)
        if im.format == "JPEG":
            im.draft("RGB", (DECODE_SIDE, DECODE_SIDE))
        im.load()
        im = ImageOps.exif_transpose(im)
        if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
            rgba = im.convert("RGBA")
            return Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba).convert("RGB")
        return im.convert("RGB")


def _bits_to_bytes(bits: np.ndarray) -> np.ndarray:
    return np.packbits(np.asarray(bits, dtype=np.uint8).reshape(-1))


def hash_ref(path: str) -> dict[str, np.ndarray]:
    import imagehash
    import pdqhash

    im = load_rgb(path)
    arr = np.ascontiguousarray(np.asarray(im, dtype=np.uint8))
    pdq, _quality = pdqhash.compute(arr)
    return {"pdq": _bits_to_bytes(pdq)[None], "phash": _bits_to_bytes(imagehash.phash(im).hash)[None]}


def hash_query(path: str) -> dict[str, np.ndarray]:
    """Queries also get PDQ's eight dihedral variants (flips and 90° rotations), matched by the
    best variant: the standard way PDQ users catch flipped and rotated copies."""
    import imagehash
    import pdqhash

    im = load_rgb(path)
    arr = np.ascontiguousarray(np.asarray(im, dtype=np.uint8))
    dihedral, _quality = pdqhash.compute_dihedral(arr)
    pdq, _quality = pdqhash.compute(arr)
    return {
        "pdq": _bits_to_bytes(pdq)[None],
        "pdq_dihedral": np.stack([_bits_to_bytes(h) for h in dihedral]),
        "phash": _bits_to_bytes(imagehash.phash(im).hash)[None],
    }


_POPCOUNT = np.array([i.bit_count() for i in range(256)], dtype=np.uint16)


def hamming_topk(q: np.ndarray, r: np.ndarray, bits: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """q [Nq, V, B] (V hash variants per query, the best one counts), r [Nr, B] packed bytes."""
    k = min(k, r.shape[0])
    sims_out = np.empty((q.shape[0], k), np.float32)
    idx_out = np.empty((q.shape[0], k), np.int64)
    for s in range(0, q.shape[0], 32):
        x = q[s : s + 32, :, None, :] ^ r[None, None, :, :]  # [b, V, Nr, B]
        d = _POPCOUNT[x].sum(-1).min(1)  # [b, Nr]
        sims = 1.0 - d.astype(np.float32) / bits
        order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
        idx_out[s : s + 32] = order
        sims_out[s : s + 32] = np.take_along_axis(sims, order, axis=1)
    return sims_out, idx_out


def main() -> None:
    ap = argparse.ArgumentParser(description="PDQ / pHash baselines for bench/images.py")
    ap.add_argument("--refs", required=True)
    ap.add_argument("--queries", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--top-k", type=int, default=10)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()

    refs = Path(args.refs).read_text().split("\n")[:-1]
    queries = Path(args.queries).read_text().split("\n")[:-1]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with Pool(args.workers) as pool:
        ref_h = pool.map(hash_ref, refs, chunksize=16)
        qry_h = pool.map(hash_query, queries, chunksize=16)
    hash_s = time.perf_counter() - t0
    n_images = len(refs) + len(queries)
    methods = {"pdq": ("pdq", 256), "pdq_dihedral": ("pdq", 256), "phash": ("phash", 64)}
    for method, (ref_key, bits) in methods.items():
        r = np.concatenate([h[ref_key] for h in ref_h])
        q = np.stack([h[method] for h in qry_h])
        t1 = time.perf_counter()
        sims, idx = hamming_topk(q, r, bits, args.top_k)
        np.savez(out / f"{method}.npz", sims=sims, idx=idx)
        (out / f"{method}.json").write_text(json.dumps({
            "method": method, "bits": bits, "images": n_images, "workers": args.workers,
            "hash_all_methods_images_per_s": round(n_images / hash_s, 2),
            "search_s": round(time.perf_counter() - t1, 3),
        }))
        print(f"{method}: {len(queries)} queries x {len(refs)} refs")


if __name__ == "__main__":
    main()

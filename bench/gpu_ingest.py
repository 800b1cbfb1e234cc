"""Video ingest with decoding worker processes feeding one encoder in large batches (issue 26).

    python bench/gpu_ingest.py --videos data/videos/eval --workers 4 --backend cuda \
        --batch 1024 --copies 4 --json out/gpu_ingest.json

Worker processes decode files at ``--fps`` exactly as the engine samples them
(``media.video.iter_frames``, letterbox crop, flat frames left out) and resize each frame to the
descriptor's input; the main process stacks the frames into batches of ``--batch`` and
describes them with ``--backend`` (``cuda``: the GPU 8-bit backend; ``openvino``: the CPU).
Three timed phases, each over the same files: decode alone (all workers), describe alone (the
frames of the decode phase, re-batched), and the pipeline (both at once). Reported: hours of
video per hour of wall time for each, which one bounds the pipeline, and the machine.
``--copies`` lists every file that many times, so short clips give the workers enough to do.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from multiprocessing import get_context
from pathlib import Path

import numpy as np


def _decode(job):
    """One file -> (uint8 frames [N, H, W, 3] at the descriptor input, seconds of video)."""
    from copytrace.errors import MediaError
    from copytrace.media.video import crop_uniform_borders, is_flat_frame, iter_frames, probe_video
    from copytrace.runtime.base import resize_pixels

    path, fps, size = job
    frames = []
    try:
        info = probe_video(path)
        for _, im in iter_frames(path, fps=fps, max_side=2 * max(size), info=info):
            im = crop_uniform_borders(im)
            if not is_flat_frame(im):
                frames.append(im)
    except MediaError:  # a damaged file: the engine stores nothing of it, neither do we
        return resize_pixels([], size), 0.0
    return resize_pixels(frames, size), info.duration_s


def main() -> None:
    from copytrace.models.registry import get_spec
    from copytrace.runtime import load_encoder, resolve_precision
    from copytrace.runtime.base import normalise_pixels

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--videos", type=Path, default=Path("data/videos/eval"))
    ap.add_argument("--model", default="ct-image-r18s")
    ap.add_argument("--backend", default="openvino")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--fps", type=float, default=1.0)
    ap.add_argument("--copies", type=int, default=1)
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    spec = get_spec(a.model)
    enc = load_encoder(spec, a.backend, resolve_precision(spec, "auto", a.backend))
    man = json.loads((a.videos / "manifest.json").read_text())["videos"]
    jobs = [(str(a.videos / v["file"]), a.fps, tuple(spec.input_size)) for v in man] * a.copies
    enc.encode(normalise_pixels(np.zeros((2, *spec.input_size, 3), np.uint8), spec))  # warm-up
    ctx = get_context("spawn")

    with ctx.Pool(a.workers) as pool:
        list(pool.imap_unordered(_decode, jobs[: a.workers]))  # start the workers' imports
        t0 = time.perf_counter()
        decoded = list(pool.imap_unordered(_decode, jobs))
        decode_s = time.perf_counter() - t0
    video_s = sum(d for _, d in decoded)
    frames = np.concatenate([f for f, _ in decoded])

    def describe(stream) -> int:
        """Frames arriving in blocks, described in batches of ``--batch`` (the rest last)."""
        held, n = frames[:0], 0
        for f in stream:
            held = np.concatenate([held, f])
            while len(held) >= a.batch:
                enc.encode(normalise_pixels(held[:a.batch], spec))
                held, n = held[a.batch:], n + a.batch
        if len(held):
            enc.encode(normalise_pixels(held, spec))
        return n + len(held)

    t0 = time.perf_counter()
    n_frames = describe(frames[i:i + 64] for i in range(0, len(frames), 64))
    describe_s = time.perf_counter() - t0
    with ctx.Pool(a.workers) as pool:
        list(pool.imap_unordered(_decode, jobs[: a.workers]))
        t0 = time.perf_counter()
        describe(f for f, _ in pool.imap_unordered(_decode, jobs))
        pipeline_s = time.perf_counter() - t0
    rates = {"decode": video_s / decode_s, "describe": video_s / describe_s,
             "pipeline": video_s / pipeline_s}
    out = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cpus, load {os.getloadavg()}",
        "backend": a.backend, "workers": a.workers, "batch": a.batch, "fps": a.fps,
        "files": len(jobs), "video_hours": video_s / 3600, "frames": n_frames,
        "wall_s": {"decode": decode_s, "describe": describe_s, "pipeline": pipeline_s},
        "video_hours_per_hour": rates,
        "frames_per_s": {"decode": len(frames) / decode_s, "describe": n_frames / describe_s},
        "bound_by": min(("decode", "describe"), key=lambda k: rates[k]),
        "median_file_s": statistics.median(d for _, d in decoded),
    }
    if a.backend.startswith("cuda"):
        import torch

        out["gpu"] = torch.cuda.get_device_name()
    print(json.dumps(out, indent=1))
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()

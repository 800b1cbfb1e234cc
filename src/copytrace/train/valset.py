"""The validation copy-detection task used while training and for score calibration.

Half of the held-out images are references; every held-out image yields a few edited queries
(fixed seed, edits drawn on the CPU so the set is identical on any device, then a real Pillow
JPEG round trip for half of them), so half the queries are copies and half are edited
non-copies: being edited is no cue. Metrics follow ISC 2021 (µAP over one pooled ranking).
"""
from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from copytrace.train.augment import EditConfig, Editor, normalise

# Validation edits: the training families without mixing (a mixed query has no single truth).
VAL_EDITS = EditConfig(p_mixup=0.0, p_cutmix=0.0, min_area=0.25)


@dataclass(frozen=True)
class ValSet:
    refs: torch.Tensor      # uint8 [R, 3, H, W]
    queries: torch.Tensor   # uint8 [Q, 3, H, W]
    truth: torch.Tensor     # int64 [Q]: index into refs, or -1 for a non-copy

    def to(self, device) -> "ValSet":
        return ValSet(self.refs.to(device), self.queries.to(device), self.truth.to(device))


def build_val_set(images: np.ndarray, editor: Editor, queries_per_image: int, seed: int) -> ValSet:
    """images uint8 [N, 3, H, W] (square); editor must live on the CPU."""
    n, size = images.shape[0], images.shape[-1]
    if n < 4:
        raise ValueError(f"validation needs at least 4 images, got {n}")
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(n, generator=gen)
    all_images = torch.from_numpy(images)[order]
    n_refs = n // 2
    idx = torch.arange(n).repeat(queries_per_image)
    views, _ = editor.views(all_images, idx, size, VAL_EDITS, gen)
    queries = (views * 255).round().clamp(0, 255).to(torch.uint8)
    rng = np.random.default_rng(seed)
    for i in range(queries.shape[0]):
        if rng.random() < 0.5:
            queries[i] = _jpeg_round_trip(queries[i], int(rng.integers(25, 90)))
    truth = torch.where(idx < n_refs, idx, torch.full_like(idx, -1))
    return ValSet(all_images[:n_refs].contiguous(), queries, truth)


def _jpeg_round_trip(img: torch.Tensor, quality: int) -> torch.Tensor:
    buf = io.BytesIO()
    Image.fromarray(img.permute(1, 2, 0).numpy()).save(buf, "JPEG", quality=quality)
    arr = np.asarray(Image.open(buf).convert("RGB"), dtype=np.uint8)
    return torch.from_numpy(arr.copy()).permute(2, 0, 1)


@torch.no_grad()
def embed(model, images: torch.Tensor, size: int, batch: int = 256) -> torch.Tensor:
    """uint8 [N, 3, H, W] -> L2-normalised fp32 descriptors, images squashed to ``size``."""
    out = []
    for i in range(0, images.shape[0], batch):
        x = images[i : i + batch].float() / 255.0
        if x.shape[-1] != size or x.shape[-2] != size:
            x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True,
                              align_corners=False)
        x = normalise(x).contiguous(memory_format=torch.channels_last)
        out.append(F.normalize(model.embed(x).float(), dim=1))
    return torch.cat(out)


def micro_ap(scores: np.ndarray, correct: np.ndarray, n_true: int) -> float:
    """ISC µAP: one ranking of all predictions; sum of precision times recall increments."""
    if n_true == 0:
        return 0.0
    order = np.argsort(-scores, kind="stable")
    tp = np.cumsum(correct[order])
    precision = tp / np.arange(1, len(tp) + 1)
    recall_step = correct[order] / n_true
    return float((precision * recall_step).sum())


def recall_at_precision(scores: np.ndarray, correct: np.ndarray, n_true: int,
                        precision: float) -> tuple[float, float]:
    """(best recall with precision >= target, the score threshold that gives it)."""
    order = np.argsort(-scores, kind="stable")
    tp = np.cumsum(correct[order])
    prec = tp / np.arange(1, len(tp) + 1)
    ok = np.nonzero(prec >= precision)[0]
    if len(ok) == 0 or n_true == 0:
        return 0.0, float("inf")
    last = ok[-1]
    return float(tp[last] / n_true), float(scores[order][last])


@torch.no_grad()
def evaluate(model, val: ValSet, size: int, top_k: int = 10) -> dict:
    """µAP, recall at 90% precision, rank-1 accuracy and a score calibration on ``val``."""
    was_training = model.training
    model.eval()
    r = embed(model, val.refs, size)
    q = embed(model, val.queries, size)
    model.train(was_training)
    sim = q @ r.T
    k = min(top_k, r.shape[0])
    top_sim, top_idx = sim.topk(k, dim=1)
    truth = val.truth[:, None]
    correct = (top_idx == truth).cpu().numpy().ravel().astype(np.float64)
    scores = top_sim.cpu().numpy().ravel()
    n_true = int((val.truth >= 0).sum())
    uap = micro_ap(scores, correct, n_true)
    r90, _ = recall_at_precision(scores, correct, n_true, 0.90)
    top1_ok = (top_idx[:, 0] == val.truth).cpu().numpy()
    rank1 = float(top1_ok[val.truth.cpu().numpy() >= 0].mean())
    return {"size": size, "uap": uap, "recall_at_p90": r90, "rank1": rank1,
            **calibrate(top_sim[:, 0].cpu().numpy(), top1_ok, n_true)}


def calibrate(top1_sim: np.ndarray, top1_ok: np.ndarray, n_true: int,
              target_precision: float = 0.99) -> dict:
    """Threshold on the top-1 cosine giving ~``target_precision``, and a sigmoid slope that
    maps the median top-1 cosine of non-matching queries to a score of 0.05."""
    recall, threshold = recall_at_precision(top1_sim, top1_ok.astype(np.float64), n_true,
                                            target_precision)
    if not math.isfinite(threshold):  # nothing reaches the target: use the top similarity
        threshold = float(top1_sim.max())
    above = top1_sim >= threshold
    precision = float(top1_ok[above].mean()) if above.any() else float("nan")
    neg = top1_sim[~top1_ok]
    neg_median = float(np.median(neg)) if len(neg) else threshold - 0.3
    gap = max(threshold - neg_median, 0.02)
    slope = math.log(19.0) / gap
    return {"threshold_similarity": float(threshold), "threshold_precision": precision,
            "threshold_recall": recall, "score_slope": float(slope),
            "negative_median_similarity": neg_median}

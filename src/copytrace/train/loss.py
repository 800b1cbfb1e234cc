"""Contrastive loss for copy detection: InfoNCE over two views with soft targets (so mixed
views count as partial positives of both sources) plus SSCD's KoLeo entropy regulariser."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def soft_info_nce(z: torch.Tensor, content: torch.Tensor, temperature: float) -> torch.Tensor:
    """z [2B, D] L2-normalised; content [2B, B] source weights of each view (rows sum to 1).

    The target of anchor a over candidate b != a is proportional to the content they share,
    which reduces to plain two-view InfoNCE when nothing is mixed.
    """
    n = z.shape[0]
    eye = torch.eye(n, dtype=torch.bool, device=z.device)
    logits = (z @ z.T / temperature).masked_fill(eye, float("-inf"))
    target = (content @ content.T).masked_fill(eye, 0.0)
    target = target / target.sum(1, keepdim=True).clamp_min(1e-8)
    logp = F.log_softmax(logits, dim=1).masked_fill(eye, 0.0)
    return -(target * logp).sum(1).mean()


def koleo(z: torch.Tensor, content: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Kozachenko-Leonenko differential-entropy estimate (negated): pushes each descriptor away
    from its nearest neighbour among views of *other* images, spreading the batch over the
    sphere (SSCD). Views sharing content are excluded: they are meant to be close."""
    shared = (content @ content.T) > 0
    d2 = (2 - 2 * z @ z.T).clamp_min(0).masked_fill(shared, float("inf"))
    nearest = d2.min(dim=1).values
    return -torch.log(nearest.sqrt() + eps).mean()

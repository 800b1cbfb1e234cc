"""Quantization-aware fine-tuning: a short, low-LR cosine schedule with frozen scales.

Scales (``amax``) are buffers, so the optimizer never sees them: they stay at their calibrated
values and the weights learn to live with INT8 rounding (straight-through estimator inside
``torch.fake_quantize_*``). The loss comes from a callback, so QAT reuses whatever loss the
original training used (copytrace.train's InfoNCE + KoLeo on GPU-augmented views).
"""
from __future__ import annotations

import logging
import math
from collections.abc import Callable

import torch
from torch import nn

from copytrace.quant.config import FinetuneConfig

log = logging.getLogger(__name__)


def cosine_lr_factor(step: int, config: FinetuneConfig) -> float:
    if step < config.warmup_steps:
        return (step + 1) / (config.warmup_steps + 1)
    t = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * min(t, 1.0)))


def finetune(
    model: nn.Module,
    loss_fn: Callable[[nn.Module, int], torch.Tensor],
    config: FinetuneConfig | None = None,
) -> list[float]:
    """Fine-tune a prepared, calibrated model in place; returns the loss per step.

    ``loss_fn(model, step)`` draws its own batch and returns a scalar loss.
    """
    config = config or FinetuneConfig()
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("model has no trainable parameters")
    opt = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: cosine_lr_factor(s, config))
    model.train()
    history: list[float] = []
    for step in range(config.steps):
        loss = loss_fn(model, step)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"QAT loss is {float(loss)} at step {step}: lower the lr")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(params, config.grad_clip)
        opt.step()
        sched.step()
        history.append(float(loss.detach()))
        if config.log_every and (step % config.log_every == 0 or step == config.steps - 1):
            log.info("qat step %d/%d loss %.4f lr %.2e", step, config.steps, history[-1],
                     sched.get_last_lr()[0])
    model.eval()
    return history

"""Fold BatchNorm into the preceding convolution: what every runtime does at load time, done
once in torch (by quantization before Q/DQ placement, and by the CUDA backend)."""
from __future__ import annotations

from itertools import pairwise

import torch
from torch import nn


@torch.no_grad()
def fold_batchnorm(model: nn.Module) -> nn.Module:
    """Fold every BatchNorm2d that directly follows a Conv2d inside a Sequential (in place)."""
    for seq in [m for m in model.modules() if isinstance(m, nn.Sequential)]:
        names = list(seq._modules)
        for a, b in pairwise(names):
            conv, bn = seq._modules[a], seq._modules[b]
            if not (isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d)):
                continue
            std = (bn.running_var + bn.eps).sqrt()
            gamma = bn.weight if bn.affine else torch.ones_like(std)
            beta = bn.bias if bn.affine else torch.zeros_like(std)
            factor = gamma / std
            bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
            conv.weight.mul_(factor.reshape(-1, 1, 1, 1))
            conv.bias = nn.Parameter(beta + (bias - bn.running_mean) * factor)
            seq._modules[b] = nn.Identity()
    return model

"""The image/frame descriptor network (torch; extra ``[train]``).

A compact ResNet (BasicBlocks 2-2-2-2) with GeM pooling, a linear projection and L2
normalisation. Residual additions are explicit modules so quantization can put a quantizer on
their skip input, as TensorRT's placement rules ask.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class NetConfig:
    widths: tuple[int, int, int, int] = (48, 96, 192, 320)
    blocks: tuple[int, int, int, int] = (2, 2, 2, 2)
    stem_width: int = 24
    dims: int = 256
    gem_p: float = 3.0

    def __post_init__(self) -> None:
        if len(self.widths) != 4 or len(self.blocks) != 4:
            raise ValueError("widths and blocks need four stages each")
        if self.dims <= 0 or self.gem_p < 1:
            raise ValueError("dims must be positive and gem_p >= 1")


class ResidualAdd(nn.Module):
    """``out = x + skip``; a module so quantizers can wrap the skip input."""

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return x + skip


def _conv_bn(cin: int, cout: int, k: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, bias=False), nn.BatchNorm2d(cout)
    )


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = _conv_bn(cin, cout, 3, stride)
        self.conv2 = _conv_bn(cout, cout, 3, 1)
        self.down = _conv_bn(cin, cout, 1, stride) if (stride != 1 or cin != cout) else None
        self.add = ResidualAdd()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = x if self.down is None else self.down(x)
        y = F.relu(self.conv1(x))
        y = self.conv2(y)
        return F.relu(self.add(y, skip))


class GeM(nn.Module):
    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float().clamp(min=1e-6).pow(self.p)
        return x.mean(dim=(2, 3)).pow(1.0 / self.p)


class DescriptorNet(nn.Module):
    """images [N, 3, H, W] (normalised float) -> descriptors [N, dims], unit L2 norm."""

    def __init__(self, cfg: NetConfig = NetConfig()) -> None:
        super().__init__()
        self.cfg = cfg
        s = cfg.stem_width
        self.stem = nn.Sequential(
            _conv_bn(3, s, 3, 2), nn.ReLU(inplace=True),
            _conv_bn(s, cfg.widths[0], 3, 1), nn.ReLU(inplace=True),
            nn.MaxPool2d(3, stride=2, padding=1),
        )
        stages = []
        cin = cfg.widths[0]
        for i, (w, n) in enumerate(zip(cfg.widths, cfg.blocks)):
            blocks = []
            for j in range(n):
                blocks.append(BasicBlock(cin, w, 2 if (j == 0 and i > 0) else 1))
                cin = w
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.pool = GeM(cfg.gem_p)
        self.proj = nn.Linear(cin, cfg.dims)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        for m in self.modules():
            if isinstance(m, BasicBlock):
                nn.init.zeros_(m.conv2[1].weight)  # each block starts as identity

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Unnormalised projection (what the contrastive loss and KoLeo see before norm)."""
        return self.proj(self.pool(self.stages(self.stem(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.embed(x), dim=1)


def export_onnx(model: DescriptorNet, path: str, size: tuple[int, int], opset: int = 17) -> None:
    """Export FP32 ONNX with dynamic batch, input ``images`` and output ``descriptors``."""
    model = model.eval().float().cpu()
    dummy = torch.randn(2, 3, size[0], size[1])
    torch.onnx.export(
        model, (dummy,), path, input_names=["images"], output_names=["descriptors"],
        dynamic_axes={"images": {0: "batch"}, "descriptors": {0: "batch"}},
        opset_version=opset, dynamo=False,
    )

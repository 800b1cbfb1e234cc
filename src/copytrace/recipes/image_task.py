"""The image descriptor's quantization task: calibration data, validation µAP and QAT loss,
all borrowed from ``copytrace.train`` so QAT optimises exactly what training optimised and
decisions are made on the same seeded validation set (train-package images, never eval ones).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

VAL_SEED = 1234       # the training run's validation seed (train/image.py)
VAL_SPRITE_SEED = 4321


@dataclass
class ImageTask:
    """Everything quantization needs from the image descriptor's training setup."""

    trainer: object          # copytrace.train.image.Trainer (views, sampling)
    val: object              # copytrace.train.valset.ValSet on the device
    size: int                # evaluation / export input size
    calib_batches: list[torch.Tensor]
    temperature: float
    koleo_weight: float
    device: torch.device

    def evaluate(self, model: nn.Module) -> float:
        """Validation µAP of ``model`` (fp32 math, no autocast)."""
        from copytrace.train.valset import evaluate

        return float(evaluate(model, self.val, self.size)["uap"])

    def forward_loop(self, model: nn.Module) -> None:
        with torch.no_grad():
            for x in self.calib_batches:
                model.embed(x)

    def qat_loss(self, model: nn.Module, step: int) -> torch.Tensor:
        """The training loss (soft InfoNCE + KoLeo) on freshly edited views, in fp32."""
        from copytrace.train.loss import koleo, soft_info_nce

        tr = self.trainer
        with torch.no_grad():
            views, content = tr.make_views(tr._next_batch())
        z = F.normalize(model.embed(views).float(), dim=1)
        return soft_info_nce(z, content, self.temperature) + self.koleo_weight * koleo(z, content)


def load_image_task(
    data: Path, size: int, device: str, config: str = "h100", qat_batch: int = 256,
    calib_images: int = 1024, val_queries_per_image: int | None = None, seed: int = 0,
) -> ImageTask:
    """``data`` holds ``train/`` and ``val/`` as written for ``copytrace.train.image``."""
    from copytrace.train.augment import Editor
    from copytrace.train.config import CONFIGS
    from copytrace.train.image import Trainer
    from copytrace.train.shards import load_images
    from copytrace.train.sprites import render_sprites
    from copytrace.train.valset import build_val_set

    cfg = CONFIGS[config]
    cfg = replace(cfg, device=device, batch=qat_batch, compile=False, bf16=False)
    train_images, _ = load_images(data / "train", cfg.data_size)
    val_images, _ = load_images(data / "val", cfg.data_size)
    texts, shapes = render_sprites(cfg.n_text_sprites, cfg.n_shape_sprites, VAL_SPRITE_SEED)
    val = build_val_set(val_images, Editor(torch.from_numpy(texts), torch.from_numpy(shapes)),
                        val_queries_per_image or cfg.val_queries_per_image, seed=VAL_SEED)
    trainer = Trainer(cfg, train_images, val, seed + 17)  # not the training seed: fresh views
    # Calibration: half clean train images (resized), half edited views: both kinds of input
    # the descriptor meets (references and queries).
    rng = np.random.default_rng(seed)
    idx = torch.from_numpy(rng.choice(len(train_images), size=min(calib_images // 2,
                                                                  len(train_images)), replace=False))
    batches = []
    with torch.no_grad():
        for part in idx.split(128):
            part = part.to(trainer.device)
            views, _ = trainer.make_views(part)  # [2B]: light/strong first views + second views
            batches.append(_resize(views, size))
    return ImageTask(trainer, trainer.val, size, batches, cfg.temperature, cfg.koleo_weight,
                     trainer.device)


def _resize(x: torch.Tensor, size: int) -> torch.Tensor:
    if x.shape[-1] == size:
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", antialias=True,
                         align_corners=False)


def load_fp32_model(weights: Path, net: dict | None = None) -> nn.Module:
    """DescriptorNet from a training state_dict; ``net`` is the spec's ``training.net``."""
    from copytrace.models.resnet import DescriptorNet, NetConfig

    cfg = NetConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in (net or {}).items()})
    model = DescriptorNet(cfg)
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return model.eval()


def load_val_set(data: Path, config: str = "h100"):
    """Only the seeded validation set (CPU), as the training run builds it."""
    from copytrace.train.augment import Editor
    from copytrace.train.config import CONFIGS
    from copytrace.train.shards import load_images
    from copytrace.train.sprites import render_sprites
    from copytrace.train.valset import build_val_set

    cfg = CONFIGS[config]
    val_images, _ = load_images(Path(data) / "val", cfg.data_size)
    texts, shapes = render_sprites(cfg.n_text_sprites, cfg.n_shape_sprites, VAL_SPRITE_SEED)
    return build_val_set(val_images, Editor(torch.from_numpy(texts), torch.from_numpy(shapes)),
                         cfg.val_queries_per_image, seed=VAL_SEED)


def preprocess(images: torch.Tensor, size: int) -> np.ndarray:
    """uint8 [N, 3, H, W] -> normalised float32 NCHW, exactly as validation feeds torch."""
    from copytrace.train.augment import normalise

    return normalise(_resize(images.float() / 255.0, size)).contiguous().numpy()


def uap_from_descriptors(q: np.ndarray, r: np.ndarray, truth: np.ndarray, top_k: int = 10) -> float:
    """The validation µAP (train.valset.evaluate) from precomputed descriptors."""
    from copytrace.train.valset import micro_ap

    sim = torch.from_numpy(q) @ torch.from_numpy(r).T
    top_sim, top_idx = sim.topk(min(top_k, r.shape[0]), dim=1)
    correct = (top_idx == torch.from_numpy(truth)[:, None]).numpy().ravel().astype(np.float64)
    return micro_ap(top_sim.numpy().ravel(), correct, int((truth >= 0).sum()))

"""Shared pieces of the quantization tests: a small DescriptorNet with non-trivial BN
statistics, real photos from tests/data as inputs, and a calibrated fake-quant twin."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

SIZE = 64
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)[:, None, None]
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)[:, None, None]


def small_net(seed: int = 0):
    import torch

    from copytrace.models.resnet import DescriptorNet, NetConfig

    torch.manual_seed(seed)
    net = DescriptorNet(NetConfig(widths=(8, 16, 16, 32), blocks=(1, 1, 1, 1), stem_width=8,
                                  dims=32)).eval()
    return random_bn_stats(net)


def random_bn_stats(net):
    """Random BN statistics, as a trained net has (a fresh one folds to identity/zero convs)."""
    import torch

    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.normal_(0, 0.1)
            m.running_mean.normal_(0, 0.1)
            m.running_var.uniform_(0.5, 2.0)
    return net


def to_batch(images: list[Image.Image]) -> np.ndarray:
    arr = [np.asarray(im.convert("RGB").resize((SIZE, SIZE), Image.BILINEAR), dtype=np.float32)
           .transpose(2, 0, 1) / 255.0 for im in images]
    return ((np.stack(arr) - MEAN) / STD).astype(np.float32)


def retrieval_set(photo_paths: list[Path], seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(refs, queries, truth): each photo, and two edited copies of it (crop, JPEG, flip)."""
    import io

    rng = np.random.default_rng(seed)
    refs, queries, truth = [], [], []
    for i, p in enumerate(photo_paths):
        im = Image.open(p).convert("RGB")
        refs.append(im)
        w, h = im.size
        for _ in range(2):
            cw, ch = int(w * rng.uniform(0.6, 0.9)), int(h * rng.uniform(0.6, 0.9))
            x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
            q = im.crop((x, y, x + cw, y + ch))
            buf = io.BytesIO()
            q.save(buf, "JPEG", quality=int(rng.integers(30, 80)))
            q = Image.open(buf).convert("RGB")
            if rng.random() < 0.5:
                q = q.transpose(Image.FLIP_LEFT_RIGHT)
            queries.append(q)
            truth.append(i)
    return to_batch(refs), to_batch(queries), np.array(truth)


def centre_projection(net, batch: np.ndarray):
    """Make a random net's descriptors discriminative: subtract the mean pooled feature
    (through the projection bias), the component every image shares."""
    import torch

    with torch.no_grad():
        x = torch.from_numpy(batch)
        feats = net.pool(net.stages(net.stem(x)))
        net.proj.bias.copy_(-(feats.mean(0) @ net.proj.weight.T))
    return net


def trained_small_net(photo_paths: list[Path], steps: int = 80, seed: int = 0):
    """small_net after a few seconds of contrastive training on crops of the test photos, so
    its descriptors separate the photos the way a real descriptor does (a random net maps
    every image to nearly the same direction, which makes top-1 comparisons meaningless)."""
    import torch
    import torch.nn.functional as F

    net = small_net(seed)
    base = torch.from_numpy(np.stack([
        np.asarray(Image.open(p).convert("RGB").resize((96, 96), Image.BILINEAR), np.float32)
        .transpose(2, 0, 1) / 255.0 for p in photo_paths]))
    mean, std = torch.from_numpy(MEAN), torch.from_numpy(STD)
    gen = torch.Generator().manual_seed(seed)

    def views() -> torch.Tensor:
        out = []
        for img in base:
            s = int(torch.randint(56, 97, (1,), generator=gen))
            y, x = (int(v) for v in torch.randint(0, 97 - s, (2,), generator=gen))
            v = F.interpolate(img[None, :, y:y + s, x:x + s], size=(SIZE, SIZE), mode="bilinear",
                              align_corners=False)[0]
            if torch.rand(1, generator=gen) < 0.5:
                v = v.flip(-1)
            out.append(v * (0.8 + 0.4 * torch.rand(1, generator=gen)))
        return (torch.stack(out) - mean) / std

    net.train()
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    labels = torch.arange(len(base))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny ops: extra threads only spin, badly so on a busy machine
    try:
        for _ in range(steps):
            a, b = net(views()), net(views())
            loss = F.cross_entropy(a @ b.T / 0.1, labels) + F.cross_entropy(b @ a.T / 0.1, labels)
            opt.zero_grad()
            loss.backward()
            opt.step()
    finally:
        torch.set_num_threads(threads)
    return net.eval()


def ort_options():
    """The options the engine's ONNX Runtime sessions use (exact U8S8 kernels on any CPU)."""
    import onnxruntime as ort

    from copytrace.runtime.onnxruntime import EXACT_U8S8

    so = ort.SessionOptions()
    so.add_session_config_entry(*EXACT_U8S8)
    return so

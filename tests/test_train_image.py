"""Tests of copytrace.train (extra [train]): edits, loss, val metrics, and the tiny CPU run."""
from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

torch = pytest.importorskip("torch")

from copytrace.models.registry import DescriptorSpec  # noqa: E402
from copytrace.train.augment import EditConfig, Editor  # noqa: E402
from copytrace.train.loss import koleo, soft_info_nce  # noqa: E402
from copytrace.train.sprites import render_sprites  # noqa: E402
from copytrace.train.valset import micro_ap, recall_at_precision  # noqa: E402

DATA = Path(__file__).parent / "data"
NO_EDITS = EditConfig(min_area=1.0, aspect=1.0, p_crop=0, p_hflip=0, p_vflip=0, p_rot90=0,
                      p_rotate=0, p_pad=0, p_pip=0, p_overlay_image=0, p_screenshot=0, p_text=0,
                      p_emoji=0, p_colour=0, p_gray=0, p_blur=0, p_noise=0, p_jpeg=0, p_mixup=0,
                      p_cutmix=0)


def _photos(size: int) -> list[Image.Image]:
    paths = sorted(DATA.glob("*.jpg"))
    assert len(paths) >= 2, "tests/data needs a few photos"
    return [Image.open(p).convert("RGB").resize((size, size), Image.BILINEAR) for p in paths]


def _batch(size: int) -> torch.Tensor:
    arrs = [np.asarray(im, dtype=np.uint8).transpose(2, 0, 1) for im in _photos(size)]
    return torch.from_numpy(np.stack(arrs).copy())


@pytest.fixture(scope="module")
def editor() -> Editor:
    texts, shapes = render_sprites(8, 8, seed=0)
    return Editor(torch.from_numpy(texts), torch.from_numpy(shapes))


def test_no_edits_is_identity_and_hflip_mirrors(editor):
    images = _batch(64)
    idx = torch.arange(images.shape[0])
    gen = torch.Generator().manual_seed(0)
    same, content = editor.views(images, idx, 64, NO_EDITS, gen)
    assert torch.allclose(same, images.float() / 255, atol=1e-4)
    assert torch.equal(content, torch.eye(len(idx)))
    flip = NO_EDITS.__class__(**{**NO_EDITS.__dict__, "p_hflip": 1.0})
    mirrored, _ = editor.views(images, idx, 64, flip, gen)
    assert torch.allclose(mirrored, images.float().flip(-1) / 255, atol=1e-4)


def test_mixed_views_keep_their_content_weights(editor):
    images = _batch(48)
    idx = torch.arange(images.shape[0])
    cfg = NO_EDITS.__class__(**{**NO_EDITS.__dict__, "p_mixup": 0.5, "p_cutmix": 0.5})
    views, content = editor.views(images, idx, 48, cfg, torch.Generator().manual_seed(1))
    assert views.shape == (len(idx), 3, 48, 48)
    assert torch.allclose(content.sum(1), torch.ones(len(idx)))
    own = content.diagonal()
    assert bool((own >= 0.5).all()) and bool((own < 1).all())  # every view mixed, own dominant


def test_downscale_loses_detail_and_pip_scale_is_validated(editor):
    images = _batch(96)
    idx = torch.arange(images.shape[0])
    cfg = NO_EDITS.__class__(**{**NO_EDITS.__dict__, "p_downscale": 1.0})
    views, _ = editor.views(images, idx, 96, cfg, torch.Generator().manual_seed(2))
    x = images.float() / 255
    # resolution loss: the views stay close to the originals but lose high-frequency detail
    def detail(t):
        return (t[..., 1:] - t[..., :-1]).abs().mean().item()
    assert detail(views) < 0.8 * detail(x)
    assert (views - x).abs().mean().item() < 0.1
    with pytest.raises(ValueError, match="pip_scale"):
        EditConfig(pip_scale=(0.6, 0.2))
    with pytest.raises(ValueError, match="pip_scale"):
        EditConfig(pip_scale=(0.01, 0.5))


def test_jpeg_simulation_matches_pillow(editor):
    im = _photos(160)[0]
    x = torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1)[None].float() / 255
    for quality in (15, 60):
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=quality)
        pil = np.asarray(Image.open(buf), dtype=np.float32).transpose(2, 0, 1)[None] / 255
        ours = editor.jpeg(x, torch.tensor([float(quality)])).numpy()
        err_pil = ((pil - x.numpy()) ** 2).mean()
        # the simulation loses as much as real JPEG, and lands close to Pillow's output
        assert abs(((ours - x.numpy()) ** 2).mean() - err_pil) < 0.25 * err_pil
        assert ((ours - pil) ** 2).mean() < 0.2 * err_pil


def test_soft_info_nce_reduces_to_two_view_cross_entropy():
    gen = torch.Generator().manual_seed(0)
    b = 6
    z = torch.nn.functional.normalize(torch.randn(2 * b, 8, generator=gen), dim=1)
    content = torch.cat([torch.eye(b), torch.eye(b)])
    logits = (z @ z.T / 0.1).fill_diagonal_(float("-inf"))
    target = torch.cat([torch.arange(b, 2 * b), torch.arange(b)])
    expected = torch.nn.functional.cross_entropy(logits, target)
    assert torch.allclose(soft_info_nce(z, content, 0.1), expected, atol=1e-5)
    # KoLeo ignores the positive pair: it only sees distances to other images
    assert torch.isfinite(koleo(z, content))


def test_micro_ap_hand_computed():
    # ranking: TP, FP, TP, FP with 3 true pairs -> (1/1 + 2/3) / 3
    scores = np.array([0.9, 0.8, 0.7, 0.6])
    correct = np.array([1.0, 0.0, 1.0, 0.0])
    assert micro_ap(scores, correct, 3) == pytest.approx((1 + 2 / 3) / 3)
    recall, threshold = recall_at_precision(scores, correct, 3, 0.9)
    assert recall == pytest.approx(1 / 3) and threshold == pytest.approx(0.9)


def _write_data(root: Path) -> None:
    """A tiny train set (tar shard + manifest) and val folder from tests/data photos."""
    tiles = []
    for im in _photos(128):
        for i in range(2):
            for j in range(2):
                tiles.append(im.crop((i * 64, j * 64, i * 64 + 64, j * 64 + 64)))
    (root / "train").mkdir(parents=True)
    (root / "val").mkdir()
    n_train = len(tiles) - 8
    with tarfile.open(root / "train" / "shard-000.tar", "w") as tar:
        for k, tile in enumerate(tiles[:n_train]):
            buf = io.BytesIO()
            tile.save(buf, "JPEG", quality=90)
            info = tarfile.TarInfo(f"{k:05d}.jpg")
            info.size = buf.tell()
            buf.seek(0)
            tar.addfile(info, buf)
    (root / "train" / "manifest.json").write_text(json.dumps({"images": n_train}))
    for k, tile in enumerate(tiles[n_train:]):
        tile.save(root / "val" / f"{k:03d}.jpg", quality=90)


@pytest.mark.slow
def test_tiny_config_trains_and_exports_matching_onnx(tmp_path):
    from copytrace.train.image import main

    _write_data(tmp_path / "data")
    out = tmp_path / "out"
    assert main(["--config", "tiny", "--data", str(tmp_path / "data"), "--out", str(out),
                 "--seed", "0", "--onnx"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    losses = summary["losses"]
    assert np.mean(losses[-2:]) < np.mean(losses[:2]), losses
    spec = DescriptorSpec.from_file(out / "ct-image-r18s.json")
    assert spec.resize == "squash" and spec.dims == 32
    assert spec.training["seed"] == 0 and spec.training["data_manifest"].startswith("sha256:")
    # the exported ONNX reproduces the torch model through the runtime's own preprocessing
    import onnxruntime as ort

    from copytrace.models.resnet import DescriptorNet
    from copytrace.runtime import prepare_images
    from copytrace.train.config import CONFIGS

    model = DescriptorNet(CONFIGS["tiny"].net)
    model.load_state_dict(torch.load(out / "ct-image-r18s.pt", weights_only=True))
    batch = prepare_images(_photos(96)[:3], spec)
    with torch.no_grad():
        expected = model.eval()(torch.from_numpy(batch)).numpy()
    sess = ort.InferenceSession(str(out / spec.file), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"images": batch})[0]
    assert np.abs(got - expected).max() < 1e-4

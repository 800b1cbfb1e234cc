"""Copy edits: deterministic by seed, RGB out, each family doing what its name says.

Images: two small photos from Debian's opencv-doc (Apache-2.0 / BSD-3-Clause), an eval package.
"""
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from copytrace.eval import edits
from copytrace.eval.edits import FAMILIES, apply_edit

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    return Image.open(DATA / "eval_fruits.jpg").convert("RGB")


@pytest.fixture(scope="module")
def other() -> Image.Image:
    return Image.open(DATA / "eval_baboon.jpg").convert("RGB")


def _arr(im: Image.Image) -> np.ndarray:
    return np.asarray(im, dtype=np.int16)


def test_registry_covers_disc21_families():
    need = {"crop", "resize", "pad", "hflip", "vflip", "rot90", "rotate", "text", "emoji",
            "overlay", "pip", "screenshot", "colour", "grayscale", "blur", "noise", "jpeg", "combo"}
    assert need <= set(FAMILIES)
    with pytest.raises(ValueError, match="unknown edit family"):
        apply_edit("sepia", Image.new("RGB", (64, 64)), np.random.default_rng(0))


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_is_deterministic_and_changes_the_image(family, photo, other):
    a = apply_edit(family, photo, np.random.default_rng(7), other)
    b = apply_edit(family, photo, np.random.default_rng(7), other)
    assert a.mode == "RGB" and min(a.size) >= 8
    assert a.size == b.size and np.array_equal(_arr(a), _arr(b))
    same_shape = a.size == photo.size
    assert not (same_shape and np.array_equal(_arr(a), _arr(photo)))
    # Without ``other`` the two-image families still work (a synthetic picture stands in).
    c = apply_edit(family, photo.convert("L"), np.random.default_rng(3))
    assert c.mode == "RGB"


def test_seeds_differ(photo, other):
    a = apply_edit("combo", photo, np.random.default_rng(1), other)
    b = apply_edit("combo", photo, np.random.default_rng(2), other)
    assert a.size != b.size or not np.array_equal(_arr(a), _arr(b))


def test_crop_keeps_the_requested_area(photo):
    w, h = photo.size
    for seed in range(20):
        c = edits.crop(photo, np.random.default_rng(seed))
        frac = c.size[0] * c.size[1] / (w * h)
        assert 0.17 <= frac <= 0.65, frac
        mild = edits.crop(photo, np.random.default_rng(seed), min_area=0.6, max_area=0.9)
        assert mild.size[0] * mild.size[1] / (w * h) >= 0.57


def test_crop_is_a_window_of_the_original(photo):
    c = edits.crop(photo, np.random.default_rng(5))
    src, win = _arr(photo), _arr(c)
    hits = [
        (x, y) for y in range(src.shape[0] - win.shape[0] + 1)
        for x in range(src.shape[1] - win.shape[1] + 1)
        if np.array_equal(src[y, x], win[0, 0]) and np.array_equal(src[y : y + win.shape[0], x : x + win.shape[1]], win)
    ]
    assert hits


def test_flips_and_rotations_are_exact(photo):
    rng = np.random.default_rng(0)
    assert np.array_equal(_arr(edits.hflip(photo, rng)), _arr(photo)[:, ::-1])
    assert np.array_equal(_arr(edits.vflip(photo, rng)), _arr(photo)[::-1])
    r = _arr(edits.rot90(photo, rng))
    assert any(np.array_equal(r, np.rot90(_arr(photo), k)) for k in (1, 2, 3))


def test_pad_keeps_the_image_inside(photo):
    p = _arr(edits.pad(photo, np.random.default_rng(4)))
    src = _arr(photo)
    assert p.shape[0] > src.shape[0] and p.shape[1] > src.shape[1]
    ys, xs = np.nonzero((p[:, :, None] == src[0, 0][None, None, None]).all(-1)[..., 0])
    assert any(np.array_equal(p[y : y + src.shape[0], x : x + src.shape[1]], src) for y, x in zip(ys, xs))


def test_pip_shrinks_the_copy_into_the_other_image(photo, other):
    out = edits.picture_in_picture(photo, np.random.default_rng(0), other)
    assert max(out.size) == max(photo.size)
    # Most of the canvas is the background: its colour histogram is closer to ``other``'s.
    o = np.asarray(out, np.float32).reshape(-1, 3).mean(0)
    assert np.abs(o - np.asarray(other, np.float32).reshape(-1, 3).mean(0)).sum() < np.abs(
        o - np.asarray(photo, np.float32).reshape(-1, 3).mean(0)
    ).sum()


def test_jpeg_quality_bounds(photo):
    low = edits.jpeg(photo, np.random.default_rng(0), min_quality=10, max_quality=10)
    high = edits.jpeg(photo, np.random.default_rng(0), min_quality=95, max_quality=95)
    err = lambda im: np.abs(_arr(im) - _arr(photo)).mean()
    assert err(low) > err(high) > 0


def test_grayscale_has_equal_channels(photo):
    g = _arr(edits.grayscale(photo, np.random.default_rng(0)))
    assert np.array_equal(g[..., 0], g[..., 1]) and np.array_equal(g[..., 1], g[..., 2])


@pytest.mark.parametrize("family", edits.PHOTO_FAMILIES)
def test_photo_families_are_deterministic_and_change_the_image(family, photo, other):
    a = apply_edit(family, photo, np.random.default_rng(11), other)
    b = apply_edit(family, photo, np.random.default_rng(11), other)
    assert a.mode == "RGB" and min(a.size) >= 16
    assert a.size == b.size and np.array_equal(_arr(a), _arr(b))
    assert not (a.size == photo.size and np.array_equal(_arr(a), _arr(photo)))
    assert apply_edit(family, photo.convert("L"), np.random.default_rng(3)).mode == "RGB"


def test_photo_families_leave_the_default_set_alone():
    # The eval benchmark's default families (and so its cached sets) do not include them.
    assert "pip_small" not in FAMILIES and "meme" not in FAMILIES
    assert set(edits.PHOTO_FAMILIES) <= set(edits.ALL_FAMILIES)


def test_pip_small_pastes_at_the_asked_width(photo, other):
    # The pasted copy is found back in the background at 20-60% of its width: locate it by
    # comparing the edit with the background (the pixels that changed form the pasted box).
    for seed in range(6):
        out = edits.picture_in_picture_width(photo, np.random.default_rng(seed), other)
        bg = other.copy()
        k = max(1.0, max(photo.size[0] / bg.size[0], photo.size[1] / bg.size[1]))
        if k > 1.0:
            bg = bg.resize((round(bg.size[0] * k), round(bg.size[1] * k)), Image.BILINEAR)
        assert out.size == bg.size
        diff = np.abs(_arr(out) - _arr(bg)).sum(axis=2) > 30
        per_col = diff.sum(axis=0)
        cols = np.flatnonzero(per_col > 0.5 * per_col.max())
        frac = (cols.max() - cols.min() + 1) / out.size[0]
        assert 0.15 <= frac <= 0.65, (seed, frac)


def test_rotate_small_stays_within_twenty_degrees(photo):
    # Cropped variant keeps the original aspect within a few percent.
    sizes = [edits.rotate_small(photo, np.random.default_rng(s)).size for s in range(12)]
    w, h = photo.size
    cropped = [sz for sz in sizes if sz[0] <= w and sz[1] <= h]
    assert cropped and all(abs(sz[0] / sz[1] - w / h) < 0.05 for sz in cropped)
    # Expanded variant: no wider than a 20° turn allows.
    a = np.radians(20)
    assert all(sz[0] <= w * np.cos(a) + h * np.sin(a) + 3 for sz in sizes)

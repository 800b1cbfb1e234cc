"""Local verification: planted copies verify, different photos do not, configs validate."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("cv2", reason="local verification needs the [verify] extra (opencv-python-headless)")

from copytrace.eval.edits import crop, picture_in_picture
from copytrace.verify import LocalVerifier, VerifyConfig, verified_score

DATA = Path(__file__).parent / "data"
PHOTOS = ["building_temple", "nature_flower", "animal_cat", "object_coffee", "face_astronaut", "face_hopper"]


def photo(name: str) -> Image.Image:
    return Image.open(DATA / f"{name}.jpg").convert("RGB")


@pytest.fixture(scope="module", params=["sift", "orb"])
def verifier(request) -> LocalVerifier:
    return LocalVerifier(VerifyConfig(detector=request.param))


def test_planted_crop_verifies_with_many_inliers(verifier):
    ref = photo("building_temple")
    query = crop(ref, np.random.default_rng(3), min_area=0.25, max_area=0.3)
    res = verifier.verify(query, ref)
    assert res.inliers >= 40 and res.inlier_ratio > 0.5
    # The transform maps query pixels into the reference: scale ~1 (both under 512 px).
    scale = np.sqrt(abs(np.linalg.det(res.transform[:2, :2])))
    assert 0.8 < scale < 1.25


def test_planted_picture_in_picture_verifies(verifier):
    ref = photo("nature_flower")
    query = picture_in_picture(ref, np.random.default_rng(5), photo("animal_cat"), 0.4, 0.5)
    assert verifier.verify(query, ref).inliers >= 25


def test_mirrored_copy_verifies_only_with_mirror():
    ref = photo("object_coffee")
    query = ref.transpose(Image.FLIP_LEFT_RIGHT)
    with_mirror = LocalVerifier(VerifyConfig()).verify(query, ref)
    assert with_mirror.mirrored and with_mirror.inliers >= 40
    assert LocalVerifier(VerifyConfig(mirror=False)).verify(query, ref).inliers < 12


def test_different_photos_give_few_inliers(verifier):
    counts = [verifier.verify(photo(a), photo(b)).inliers
              for i, a in enumerate(PHOTOS) for b in PHOTOS[i + 1 :]]
    assert max(counts) < 12, counts


def test_rescore_lifts_the_copy_above_a_lookalike():
    v = LocalVerifier(VerifyConfig())
    ref, other = photo("face_astronaut"), photo("face_hopper")
    query = crop(ref, np.random.default_rng(1), min_area=0.4, max_area=0.5)
    # The look-alike has the higher cosine; geometry must reverse the order.
    copy_score, lookalike_score = v.rescore(query, [(ref, 0.55), (other, 0.6)])
    assert copy_score > lookalike_score
    assert lookalike_score == pytest.approx(0.6)  # no support: the cosine stays


def test_verified_score_is_monotone():
    cfg = VerifyConfig(min_inliers=8, full_inliers=30, bonus=0.5)
    inl = np.arange(0, 60)
    s = verified_score(np.full(60, 0.4), inl, cfg)
    assert np.all(np.diff(s) >= 0) and s[0] == pytest.approx(0.4) and s[-1] == pytest.approx(0.9)
    assert verified_score(0.5, 0, cfg) < verified_score(0.6, 0, cfg)


@pytest.mark.parametrize("bad", [
    {"detector": "surf"}, {"model": "projective"}, {"max_side": 32}, {"ratio": 1.0},
    {"reproj_px": 3.0}, {"min_inliers": 30, "full_inliers": 30}, {"bonus": -0.1},
    {"model": "homography", "min_matches": 3}, {"max_scale": 1.0},
])
def test_config_rejects_bad_values(bad):
    with pytest.raises(ValueError):
        VerifyConfig(**bad)

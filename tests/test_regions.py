"""Query-side region proposals (copytrace.verify.regions): boxes, merging, where a copy sits.

Images: small real photos of tests/data (see tests/data/LICENSES.md)."""
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from copytrace.verify.regions import (
    RegionConfig,
    box_in_query,
    edge_boxes,
    grid_boxes,
    iou,
    merge_region_hits,
    propose_regions,
)

DATA = Path(__file__).parent / "data"


def _img(name: str) -> Image.Image:
    return Image.open(DATA / name).convert("RGB")


def _planted(copy: Image.Image, bg: Image.Image, width: float, xy: tuple[float, float], frame: bool):
    """``copy`` pasted at ``width`` of the background's width, top-left at ``xy`` (shares)."""
    bg = bg.resize((640, round(640 * bg.size[1] / bg.size[0])), Image.BICUBIC)
    pw = round(bg.size[0] * width)
    ph = round(copy.size[1] * pw / copy.size[0])
    small = copy.resize((pw, ph), Image.BICUBIC)
    x0, y0 = round(xy[0] * (bg.size[0] - pw)), round(xy[1] * (bg.size[1] - ph))
    out = bg.copy()
    out.paste(small, (x0, y0))
    if frame:
        ImageDraw.Draw(out).rectangle((x0 - 2, y0 - 2, x0 + pw + 1, y0 + ph + 1), outline=(250, 250, 250), width=2)
    return out, (x0, y0, x0 + pw, y0 + ph)


def test_grid_covers_the_image_at_each_scale():
    boxes = grid_boxes((640, 480), (0.5,))
    assert len(boxes) == 9 and all(b[2] - b[0] == 320 and b[3] - b[1] == 240 for b in boxes)
    assert min(b[0] for b in boxes) == 0 and max(b[2] for b in boxes) == 640
    assert max(b[3] for b in boxes) == 480


@pytest.mark.parametrize("frame", [True, False])
def test_edge_boxes_find_a_pasted_picture(frame):
    q, truth = _planted(_img("face_astronaut.jpg"), _img("building_temple.jpg"), 0.4, (0.7, 0.3), frame)
    found = [b for b, _ in edge_boxes(q)]
    assert found and max(iou(b, truth) for b in found) >= 0.8, (truth, found[:4])


def test_proposals_keep_sizes_and_drop_the_whole_image():
    q = _img("building_temple.jpg")
    boxes = propose_regions(q)
    w, h = q.size
    assert 8 <= len(boxes) <= 30
    assert all(0 <= b[0] < b[2] <= w and 0 <= b[1] < b[3] <= h for b in boxes)
    assert all(iou(b, (0, 0, w, h)) < 0.95 for b in boxes)
    # No two boxes nearly the same.
    assert all(iou(a, b) <= RegionConfig().nms_iou + 1e-9 for i, a in enumerate(boxes) for b in boxes[i + 1:])


def test_config_is_checked():
    with pytest.raises(ValueError, match="grid scales"):
        RegionConfig(grid_scales=(0.5, 1.2))
    with pytest.raises(ValueError, match="min_area"):
        RegionConfig(min_area=0.9, max_area=0.5)


def test_merge_keeps_the_best_cosine_per_reference_and_its_source():
    whole_s, whole_i = np.array([0.5, 0.3]), np.array([4, 7])
    reg_s = np.array([[0.9, 0.2], [0.4, 0.35]])
    reg_i = np.array([[7, 4], [4, 9]])
    s, j, r = merge_region_hits(whole_s, whole_i, reg_s, reg_i, 10)
    assert j.tolist() == [7, 4, 9] and r.tolist() == [0, -1, 1]
    assert np.allclose(s, [0.9, 0.5, 0.35])
    s2, j2, r2 = merge_region_hits(whole_s, whole_i, np.zeros((0, 2)), np.zeros((0, 2), int), 1)
    assert j2.tolist() == [4] and r2.tolist() == [-1]


def test_box_in_query_inverts_a_known_transform():
    # Query -> reference: scale 2 and shift, so the reference (200x100) sits at (30, 40) in
    # the query, 100x50 in size.
    m = np.array([[2.0, 0.0, -60.0], [0.0, 2.0, -80.0]])
    assert box_in_query(m, (200, 100), (400, 300), (400, 300)) == (30, 40, 130, 90)
    # The same map found on a crop at offset (100, 10), the crop verified at half its size.
    assert box_in_query(m, (200, 100), (400, 300), (1000, 1000), offset=(100, 10),
                        crop_size=(800, 600)) == (160, 90, 360, 190)


def test_a_registered_picture_is_found_inside_a_larger_one_with_its_box():
    pytest.importorskip("cv2")
    from copytrace.verify import LocalVerifier

    copy = _img("object_coffee.jpg")
    q, truth = _planted(copy, _img("nature_flower.jpg"), 0.35, (0.2, 0.8), False)
    v = LocalVerifier()
    ref = v.features(copy)
    best = None
    for b in propose_regions(q):
        crop = q.crop(b)
        qf = v.features(crop, query=True)
        res = v.verify_features(qf, ref)
        if res.transform is not None and (best is None or res.inliers > best[0].inliers):
            best = (res, b, qf)
    assert best is not None and best[0].inliers >= 20
    res, b, qf = best
    box = box_in_query(res.transform, ref.size, qf.size, q.size, res.mirrored, offset=b[:2],
                       crop_size=(b[2] - b[0], b[3] - b[1]))
    assert box is not None and iou(box, truth) >= 0.85, (box, truth)


def test_library_finds_a_pasted_picture_and_reports_its_box(tmp_path):
    # At 40% of the width the whole image's cosine is 0.17 (not found); a region finds it.
    pytest.importorskip("cv2")
    import copytrace

    copy = _img("object_coffee.jpg")
    q, truth = _planted(copy, _img("nature_flower.jpg"), 0.4, (0.85, 0.15), False)
    qpath = tmp_path / "pip.jpg"
    q.save(qpath, quality=90)
    with copytrace.open(str(tmp_path / "db")) as lib:
        ids = {n: lib.add(str(DATA / n)).work.work_id
               for n in ("object_coffee.jpg", "animal_cat.jpg", "building_temple.jpg")}
        res = lib.query(str(qpath))
        assert res.matches and res.matches[0].work_id == ids["object_coffee.jpg"]
        m = res.matches[0]
        assert m.score >= 0.5 and m.box is not None
        assert iou(tuple(m.box), truth) >= 0.7, (m.box, truth)
        assert m.to_dict()["box"] == list(m.box)
        # The registered image itself: found whole, its box the whole picture.
        whole = lib.query(str(DATA / "object_coffee.jpg")).matches[0]
        w, h = copy.size
        assert whole.work_id == ids["object_coffee.jpg"] and iou(tuple(whole.box), (0, 0, w, h)) >= 0.9
        # An unrelated photo finds nothing at the default threshold, regions or not.
        assert lib.query(str(DATA / "nature_flower.jpg")).matches == ()


def test_a_box_its_verification_does_not_confirm_keeps_the_whole_image_score(tmp_path):
    """Score fusion (signals/_verify.py): a strong crop's own reference, found by the whole
    image, is not outranked by another reference that a box merely resembles; the same box
    cosine, confirmed by the box's inliers, does count."""
    pytest.importorskip("cv2")
    from copytrace.config import EngineConfig
    from copytrace.models.registry import get_spec
    from copytrace.signals._verify import ImageVerifier
    from copytrace.types import Match

    cat = _img("animal_cat.jpg")
    w, h = cat.size
    query = cat.crop((w // 5, h // 5, 4 * w // 5, 4 * h // 5))
    qpath = tmp_path / "crop.jpg"
    query.save(qpath, quality=90)
    refs = {n: str(DATA / n) for n in ("animal_cat.jpg", "building_temple.jpg")}
    spec = get_spec("ct-image-r18s")
    ver = ImageVerifier(spec, EngineConfig().image_limits, verify_top=10)

    def match(name, cos):
        return Match(work_id=name, title=name, path=refs[name], media_type="image", score=0.0,
                     similarity=cos)

    qw, qh = query.size
    box = (0, 0, qw // 2, qh // 2)
    own = ver.rescore(str(qpath), [match("animal_cat.jpg", 0.55)])[0]
    other = ver.rescore(str(qpath), [match("building_temple.jpg", 0.9)], {"building_temple.jpg": box},
                        whole_similarity={"building_temple.jpg": 0.2})[0]
    assert other.similarity < 0.3 and other.box is None
    assert own.score > other.score
    # The crop's own reference brought by a box that holds part of it: confirmed, it counts.
    boxed = ver.rescore(str(qpath), [match("animal_cat.jpg", 0.8)], {"animal_cat.jpg": box},
                        whole_similarity={"animal_cat.jpg": 0.55})[0]
    assert boxed.similarity > own.similarity

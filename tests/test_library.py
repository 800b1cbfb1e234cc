"""End to end with the shipped descriptor: planted copies of real photos are found at rank 1,
innocent photos stay below the default threshold, and the API behaves as documented."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import copytrace
from copytrace.errors import MediaError, UnknownWorkError
from copytrace.eval.edits import apply_edit, crop

COPY_EDITS = ("crop", "resize", "jpeg", "hflip", "text")


def moderate_crop(image, rng, other=None):
    """The acceptance's crop: keeps at least 60% of the area."""
    return crop(image, rng, other, min_area=0.6, max_area=0.9)


@pytest.fixture(scope="module")
def registered(tmp_path_factory, photo_paths):
    """Library with all but the last two photos registered; those two stay innocent."""
    db = tmp_path_factory.mktemp("lib")
    refs, innocent = photo_paths[:-2], photo_paths[-2:]
    assert len(refs) >= 4, "tests/data should hold at least 6 photos"
    lib = copytrace.open(str(db))
    ids = {}
    for p in refs:
        res = lib.add(str(p))
        assert res.created
        ids[p] = res.work.work_id
    yield lib, ids, innocent
    lib.close()


def test_planted_copies_rank_first(registered, tmp_path):
    """Every planted copy ranks its source first; all but the harsh crops (20-60% of the area
    kept) also clear the default threshold."""
    lib, ids, _ = registered
    rng = np.random.default_rng(7)
    misses = []
    for path, work_id in ids.items():
        src = Image.open(path).convert("RGB")
        for family in (*COPY_EDITS, "moderate_crop"):
            q = tmp_path / f"{path.stem}-{family}.png"
            edit = moderate_crop(src, rng) if family == "moderate_crop" else apply_edit(
                family, src, rng)
            edit.save(q)
            top = lib.query(str(q), top_k=3, min_score=0).matches[0]
            if top.work_id != work_id or (family != "crop" and top.score < 0.5):
                misses.append((path.name, family, top.work_id == work_id, round(top.score, 3)))
    assert not misses, misses


def test_innocent_photos_below_threshold(registered):
    lib, _, innocent = registered
    for p in innocent:
        assert lib.query(str(p)).matches == ()  # default min_score hides below-threshold
        best = lib.query(str(p), top_k=1, min_score=0).matches[0]
        assert best.score < 0.5


def test_add_is_idempotent_by_content(registered, tmp_path):
    lib, ids, _ = registered
    path, work_id = next(iter(ids.items()))
    copy = tmp_path / "same-bytes-other-name.bin"
    copy.write_bytes(path.read_bytes())
    again = lib.add(str(copy))
    assert not again.created and again.work.work_id == work_id
    assert len(lib.works()) == len(ids)


def test_scores_and_schema(registered, photo_paths):
    lib, ids, _ = registered
    res = lib.query(str(photo_paths[0]), top_k=len(ids), min_score=0).to_dict()
    assert set(res) >= {"query", "elapsed_s", "matches"}
    assert set(res["query"]) >= {"path", "media_type", "duration_s", "sha256"}
    assert res["query"]["media_type"] == "image" and res["query"]["duration_s"] is None
    assert len(res["matches"]) == len(ids)
    scores = [m["score"] for m in res["matches"]]
    assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in scores)
    for m in res["matches"]:
        assert set(m) >= {"work_id", "title", "path", "media_type", "score", "segments"}
        assert m["segments"] == []


def test_remove_and_unknown_ids(tmp_path, photo_paths):
    with copytrace.open(str(tmp_path / "db")) as lib:
        w = lib.add(str(photo_paths[0])).work
        assert lib.query(str(photo_paths[0])).matches[0].work_id == w.work_id
        lib.remove(w.work_id)
        assert lib.query(str(photo_paths[0]), min_score=0).matches == ()
        with pytest.raises(UnknownWorkError, match="nope"):
            lib.get("nope")
        with pytest.raises(UnknownWorkError):
            lib.remove(w.work_id)


def test_bad_query_names_the_file(tmp_path):
    p = tmp_path / "broken.jpg"
    p.write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 20)
    with copytrace.open(str(tmp_path / "db")) as lib, pytest.raises(MediaError, match="broken.jpg"):
        lib.query(str(p))

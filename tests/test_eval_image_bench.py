"""The DISC21-style benchmark builder and scorer, on tiles of two real photos."""
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from copytrace.eval.image_bench import (
    ImageSetConfig,
    Predictions,
    background_similarity,
    build_image_set,
    exact_topk,
    list_images,
    load_image_set,
    score_predictions,
)

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def pools(tmp_path_factory) -> tuple[list[str], list[str]]:
    """12 'eval' and 6 'distractor' images: distinct tiles and flips of two real photos."""
    root = tmp_path_factory.mktemp("pools")
    srcs = [Image.open(DATA / n).convert("RGB") for n in ("eval_fruits.jpg", "eval_baboon.jpg")]
    for sub in ("eval", "distract"):
        (root / sub).mkdir()
    k = 0
    for src in srcs:
        w, h = src.size
        for x0, y0 in [(0, 0), (w // 3, 0), (0, h // 3), (w // 3, h // 3)]:
            tile = src.crop((x0, y0, x0 + 2 * w // 3, y0 + 2 * h // 3))
            for flip in (False, True):
                t = tile.transpose(Image.Transpose.FLIP_TOP_BOTTOM) if flip else tile
                sub = "eval" if k % 3 else "distract"
                t.save(root / sub / f"img{k:02d}.png")
                k += 1
    return list_images(root / "eval"), list_images(root / "distract")


CFG = ImageSetConfig(n_copies=8, n_unregistered=4, min_refs=10, n_background=2, seed=3,
                     max_side=96, families=("crop", "hflip", "pip", "text"))


def test_set_is_built_as_specified(pools, tmp_path):
    eval_paths, distract = pools
    s = build_image_set(eval_paths, distract, tmp_path / "set", CFG, workers=1)
    c = s.manifest["counts"]
    assert len(s.refs) == 10 and c["eval_refs"] + c["distractor_refs"] == 10
    assert len(s.queries) == 12 and sum(q.ref is None for q in s.queries) == 4
    assert set(s.background).isdisjoint(s.refs)
    refs = set(s.refs)
    for q in s.queries:
        assert Path(q.path).is_file() and q.family in CFG.families
        # Copies point at their source; unregistered sources and mixed-in images never are refs.
        if q.ref is not None:
            assert s.refs[q.ref] == q.source and q.source in eval_paths
        else:
            assert q.source not in refs
        assert q.other not in refs and q.other != q.source
    assert len(s.gt_pairs()) == 8


def test_set_is_deterministic_and_cached(pools, tmp_path):
    eval_paths, distract = pools
    a = build_image_set(eval_paths, distract, tmp_path / "a", CFG, workers=1)
    b = build_image_set(eval_paths, distract, tmp_path / "b", CFG, workers=2)
    assert a.refs == b.refs
    for qa, qb in zip(a.queries, b.queries):
        assert (qa.family, qa.ref, qa.source) == (qb.family, qb.ref, qb.source)
        assert Path(qa.path).read_bytes() == Path(qb.path).read_bytes()
    stamp = Path(a.queries[0].path).stat().st_mtime_ns
    again = build_image_set(eval_paths, distract, tmp_path / "a", CFG, workers=1)
    assert Path(again.queries[0].path).stat().st_mtime_ns == stamp  # reused, not rebuilt
    assert load_image_set(tmp_path / "a").manifest == a.manifest


def test_too_few_distractors_is_a_clear_error(pools, tmp_path):
    eval_paths, distract = pools
    cfg = ImageSetConfig(n_copies=4, n_unregistered=2, min_refs=100, n_background=0, max_side=96)
    with pytest.raises(ValueError, match="distract"):
        build_image_set(eval_paths, distract, tmp_path / "s", cfg, workers=1)


def test_exact_topk_matches_brute_force():
    rng = np.random.default_rng(0)
    q = rng.normal(size=(50, 16)).astype(np.float32)
    r = rng.normal(size=(300, 16)).astype(np.float32)
    sims, idx = exact_topk(q, r, 7)
    full = q @ r.T
    assert np.array_equal(idx, np.argsort(-full, axis=1, kind="stable")[:, :7])
    assert np.allclose(sims, np.take_along_axis(full, idx, axis=1))
    kth = background_similarity(q, r, 3)
    assert np.allclose(kth, np.sort(full, axis=1)[:, -3])


def test_scoring_an_oracle_and_a_confused_method(pools, tmp_path):
    eval_paths, distract = pools
    s = build_image_set(eval_paths, distract, tmp_path / "set", CFG, workers=1)
    nq, nr = len(s.queries), len(s.refs)
    sims = np.full((nq, nr), 0.1)
    for i, q in enumerate(s.queries):
        if q.ref is not None:
            sims[i, q.ref] = 0.9
    idx = np.argsort(-sims, axis=1)[:, :3]
    oracle = score_predictions(s, Predictions.from_topk(np.take_along_axis(sims, idx, 1), idx), 0.5)
    assert oracle["overall"]["micro_ap"] == pytest.approx(1.0)
    assert oracle["overall"]["rank1"] == 1.0
    assert oracle["at_threshold"]["precision"] == 1.0
    assert oracle["at_threshold"]["unregistered_above"] == 0.0
    assert all(f["rank1"] == 1.0 for f in oracle["families"].values())
    # Every unregistered query now hits a wrong reference above all true pairs.
    for i, q in enumerate(s.queries):
        if q.ref is None:
            sims[i, 0] = 0.95
    idx = np.argsort(-sims, axis=1)[:, :3]
    bad = score_predictions(s, Predictions.from_topk(np.take_along_axis(sims, idx, 1), idx), 0.5)
    assert bad["at_threshold"]["unregistered_above"] == 1.0
    assert bad["overall"]["rank1"] == 1.0  # copies still rank right...
    assert bad["overall"]["micro_ap"] < 0.8  # ...but the pooled ranking pays for the FPs
    assert bad["at_threshold"]["precision"] == pytest.approx(8 / 12)


def test_versions_of_one_work_stay_together(pools, tmp_path):
    """Files of one wallpaper (several aspect ratios) are one work: never split, all true refs."""
    import json

    from copytrace.eval.image_bench import work_groups_from_manifest

    eval_paths, distract = pools
    d = Path(eval_paths[0]).parent
    recs = [
        {"file": Path(p).name, "package": "plasma-workspace-wallpapers",
         "source_path": f"usr/share/wallpapers/W{k // 3}/contents/images/{k}.jpg"}
        for k, p in enumerate(eval_paths)
    ]
    (d / "manifest.json").write_text(json.dumps({"images": recs}))
    try:
        groups = work_groups_from_manifest(d)
    finally:
        (d / "manifest.json").unlink()
    assert len(set(groups.values())) == 4
    s = build_image_set(eval_paths, distract, tmp_path / "set", CFG, workers=1, groups=groups)
    ref_works = {groups[p] for p in s.refs if p in groups}
    for q in s.queries:
        if q.ref is None:
            assert groups[q.source] not in ref_works
    gt, ignored = s.gt_pairs(), s.ignored_pairs()
    for i, q in enumerate(s.queries):
        if q.ref is not None:
            siblings = {j for j, p in enumerate(s.refs) if groups.get(p) == groups[q.source]}
            assert {j for qi, j in gt if qi == i} == {q.ref}
            assert {j for qi, j in ignored if qi == i} == siblings - {q.ref} and len(siblings) == 3
    # A method that ranks a sibling first loses nothing: the sibling is ignored.
    nq, nr = len(s.queries), len(s.refs)
    sims = np.full((nq, nr), 0.1)
    for i, j in gt:
        sims[i, j] = 0.8
    for i, j in ignored:
        sims[i, j] = 0.9
    idx = np.argsort(-sims, axis=1)[:, :4]
    res = score_predictions(s, Predictions.from_topk(np.take_along_axis(sims, idx, 1), idx), 0.5)
    assert res["overall"]["micro_ap"] == pytest.approx(1.0) and res["overall"]["rank1"] == 1.0

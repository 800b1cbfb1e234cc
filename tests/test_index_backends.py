"""One ReferenceIndex contract, every backend: FAISS flat, FAISS IVF-PQ re-ranked on the
catalogue's floats, and Milvus (Milvus Lite, the same code as a cluster). Each runs the same
cases through a real Store: search against brute force, remove, reopen, rebuild."""
from __future__ import annotations

import numpy as np
import pytest

from copytrace.index.base import IndexConfig
from copytrace.store import Store
from copytrace.types import Descriptors, Work

DIMS, WORKS, PER_WORK = 32, 30, 400


def _config(kind: str, tmp_path) -> IndexConfig:
    if kind == "milvus":
        pytest.importorskip("pymilvus")
        return IndexConfig(backend="milvus", milvus_uri=str(tmp_path / "milvus.db"))
    return IndexConfig(approximate_from=1000 if kind == "faiss-ivfpq" else 2_000_000)


@pytest.fixture(params=["faiss", "faiss-ivfpq", "milvus"])
def store(request, tmp_path):
    config = _config(request.param, tmp_path)
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(WORKS, PER_WORK, DIMS)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=2, keepdims=True)
    s = Store(tmp_path / "lib", index=config)
    for i in range(WORKS):
        work = Work(work_id=f"w{i:03d}", title=f"w{i}", path="", media_type="video",
                    sha256=f"{i:064x}", duration_s=float(PER_WORK), added_at=float(i),
                    model="m@1", n_descriptors=PER_WORK)
        t = np.arange(PER_WORK, dtype=np.float64)
        s.add(work, [Descriptors(vectors[i], t, t + 1, "m@1", "visual")])
    s.flush()
    yield request.param, s, config, vectors
    s.close()


def _queries(vectors, n=60, seed=1):
    rng = np.random.default_rng(seed)
    w, r = rng.integers(0, WORKS, n), rng.integers(0, PER_WORK, n)
    q = vectors[w, r] + 0.3 * rng.normal(size=(n, DIMS)).astype(np.float32) / np.sqrt(DIMS)
    return (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32), w, r


def _check_search(kind, s, vectors, removed=()):
    q, w, _ = _queries(vectors)
    keep = ~np.isin(w, [int(x[1:]) for x in removed])
    sims, works, offsets = s.search("visual", q, 5)
    flat = vectors.reshape(-1, DIMS)
    brute = q @ flat.T
    for wid in removed:
        brute[:, int(wid[1:]) * PER_WORK:(int(wid[1:]) + 1) * PER_WORK] = -np.inf
    best = brute.argmax(1)
    got = np.array([int(x[1:]) * PER_WORK + o if x is not None else -1
                    for x, o in zip(works[:, 0], offsets[:, 0])])
    hit = got == best
    # exact backends are exact; IVF-PQ finds the true nearest for nearly all, and the scores it
    # returns are the exact cosines (re-ranked on the stored floats)
    assert hit[keep].mean() >= (0.95 if kind == "faiss-ivfpq" else 1.0)
    np.testing.assert_allclose(sims[:, 0][hit], brute.max(1)[hit], atol=1e-4)
    assert not set(works.reshape(-1)) & set(removed)


def test_search_matches_brute_force(store):
    kind, s, _, vectors = store
    _check_search(kind, s, vectors)
    if kind == "faiss-ivfpq":
        assert s.index("visual").approximate


def test_remove_then_reopen(store, tmp_path):
    kind, s, config, vectors = store
    s.remove("w007")
    _check_search(kind, s, vectors, removed=("w007",))
    s.close()
    again = Store(tmp_path / "lib", index=config)
    try:
        assert len(again.index("visual")) == (WORKS - 1) * PER_WORK
        assert again.check() == []
        _check_search(kind, again, vectors, removed=("w007",))
    finally:
        again.close()
    store_reopened = Store(tmp_path / "lib", index=config)  # the fixture closes this one
    store[1].__dict__.update(store_reopened.__dict__)


def test_lost_index_is_rebuilt_from_the_catalogue(store, tmp_path):
    kind, s, config, vectors = store
    if kind == "milvus":
        s.backend.drop("visual")
    else:
        (tmp_path / "lib" / "index-visual.faiss").unlink()
    s.close()
    fresh = Store(tmp_path / "lib", index=config)
    try:
        assert any("missing" in p for p in fresh.check())
        fresh.flush()
        assert fresh.check() == []
        _check_search("faiss" if kind == "faiss-ivfpq" else kind, fresh, vectors)
    finally:
        fresh.close()
    store[1].__dict__.update(Store(tmp_path / "lib", index=config).__dict__)


def test_approximate_from_in_the_environment(monkeypatch):
    monkeypatch.setenv("COPYTRACE_INDEX_APPROXIMATE_FROM", "5000")
    assert IndexConfig.from_env().approximate_from == 5000
    monkeypatch.setenv("COPYTRACE_INDEX_APPROXIMATE_FROM", "lots")
    with pytest.raises(ValueError, match="COPYTRACE_INDEX_APPROXIMATE_FROM"):
        IndexConfig.from_env()
    with pytest.raises(ValueError, match=">= 256"):
        IndexConfig(approximate_from=100)


def test_small_and_large_faiss_searches_agree_and_keep_the_thread_count(monkeypatch):
    """A small search runs on one OpenMP thread (index/faiss.py), a large one on all; both
    equal brute force, and the process's thread count is left as it was."""
    faiss = pytest.importorskip("faiss")
    from copytrace.index import faiss as faiss_index

    rng = np.random.default_rng(3)
    x = rng.standard_normal((300, 32)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    index = faiss_index.FaissIndex(32)
    index.add(np.arange(300, dtype=np.int64) + 7, x)
    q = x[:20] + 0.05 * rng.standard_normal((20, 32)).astype(np.float32)
    want = np.argsort(-(q @ x.T), axis=1)[:, :5] + 7
    before = faiss.omp_get_max_threads()
    for work in (1 << 30, 0):  # serial, then parallel
        monkeypatch.setattr(faiss_index, "SERIAL_SEARCH_WORK", work)
        _, ids = index.search(q, 5)
        np.testing.assert_array_equal(ids, want)
        assert faiss.omp_get_max_threads() == before

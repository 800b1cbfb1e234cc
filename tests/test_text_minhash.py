"""MinHash-LSH for whole-document near-duplicates (issue 21): the estimate against the exact
Jaccard similarity, LSH against brute force, and the posting index carrying the signatures."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("opencc")

from copytrace.text.document import FingerprintConfig, TextDocument
from copytrace.text.index import Postings
from copytrace.text.minhash import LshIndex, MinHashConfig, jaccard, near_duplicates, signature
from copytrace.text.search import SearchConfig, candidate_docs, document_near_duplicates

FP = FingerprintConfig()


def _pair(rng, n: int, j: float) -> tuple[np.ndarray, np.ndarray]:
    common = round(2 * j * n / (1 + j))
    a = rng.integers(-2**63, 2**63 - 1, size=n, dtype=np.int64)
    b = np.concatenate([a[:common], rng.integers(-2**63, 2**63 - 1, size=n - common,
                                                 dtype=np.int64)])
    return a, b


def _exact(a: np.ndarray, b: np.ndarray) -> float:
    return len(np.intersect1d(a, b)) / len(np.union1d(a, b))


def test_estimate_tracks_the_exact_jaccard_similarity():
    rng = np.random.default_rng(3)
    errors = []
    for j in (0.0, 0.2, 0.5, 0.8, 1.0):
        for n in (30, 300, 3000):  # small sets leave bins empty: densification fills them
            a, b = _pair(rng, n, j)
            errors.append(jaccard(signature(a, 128), signature(b, 128)) - _exact(a, b))
    errors = np.abs(errors)
    # one estimate's standard deviation is at most sqrt(0.25 / 128) = 0.044
    assert errors.max() < 0.2 and errors.mean() < 0.06


def test_duplicates_order_and_empty_sets():
    rng = np.random.default_rng(4)
    a = rng.integers(-2**63, 2**63 - 1, size=500, dtype=np.int64)
    shuffled = np.concatenate([rng.permutation(a), a[:50]])  # order and repeats do not count
    assert np.array_equal(signature(a, 64), signature(shuffled, 64))
    assert jaccard(signature(a, 64), signature(a, 64)) == 1.0
    empty = signature(np.zeros(0, np.int64), 64)
    assert jaccard(empty, empty) == 0.0 and jaccard(empty, signature(a, 64)) == 0.0


def test_lsh_finds_the_near_duplicates_brute_force_finds():
    rng = np.random.default_rng(5)
    cfg = MinHashConfig(128, 32, 0.5)
    base = rng.integers(-2**63, 2**63 - 1, size=800, dtype=np.int64)
    sets, exact = [], []
    for i in range(300):
        j = [0.0, 0.2, 0.8, 0.95][i % 4]
        m = round(1600 * j / (1 + j))  # |base & s| = m, |s| = 800: J = m / (1600 - m)
        s = np.concatenate([base[:m], rng.integers(-2**63, 2**63 - 1, size=800 - m,
                                                   dtype=np.int64)])
        sets.append(s)
        exact.append(_exact(base, s))
    sigs = np.stack([signature(s, cfg.num_perm) for s in sets])
    q = signature(base, cfg.num_perm)
    found = {d for d, _j in near_duplicates(q, sigs, LshIndex.build(sigs, cfg), cfg)}
    brute = {i for i in range(len(sets)) if jaccard(q, sigs[i]) >= cfg.min_jaccard}
    # r = 4 rows, b = 32 bands: a pair at J = 0.8 shares no band with p = (1 - 0.8**4)**32
    assert found == brute
    assert {i for i, j in enumerate(exact) if j >= 0.75} == found


def _words(rng, n: int) -> str:
    vocab = ["river", "stone", "lamp", "harvest", "winter", "table", "silver", "garden",
             "letter", "window", "orchard", "bridge", "candle", "meadow", "thunder", "valley",
             "copper", "shadow", "market", "lantern", "feather", "harbour", "marble", "pepper"]
    return " ".join(rng.choice(vocab, size=n).tolist())


def test_a_lightly_edited_whole_document_is_a_near_duplicate(tmp_path):
    rng = np.random.default_rng(6)
    texts = [_words(rng, 3000) for _ in range(40)]
    docs = [TextDocument.from_string(t) for t in texts]
    postings = Postings.build([(f"w{i}", *d.fingerprints(FP)) for i, d in enumerate(docs)])
    words = texts[17].split()
    for i in rng.choice(len(words), size=len(words) // 50, replace=False).tolist():
        words[i] = "edited"  # 2 % of the words changed
    query = TextDocument.from_string(" ".join(words))
    cfg = SearchConfig()
    dups = document_near_duplicates(query, postings, FP, cfg.minhash)
    assert [d for d, _j in dups] == [17] and dups[0][1] >= 0.6
    assert candidate_docs(query, postings, FP, cfg)[0][0] == 17
    unrelated = TextDocument.from_string(_words(np.random.default_rng(99), 3000))
    assert document_near_duplicates(unrelated, postings, FP, cfg.minhash) == []
    # the signatures travel with the saved index, and a wrong width asks for a rebuild
    postings.save(tmp_path / "index.npz", "k1")
    loaded = Postings.load(tmp_path / "index.npz", "k1")
    assert np.array_equal(loaded.signatures, postings.signatures)
    assert Postings.load(tmp_path / "index.npz", "k1", num_perm=64) is None

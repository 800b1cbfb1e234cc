"""Typicality normalisation of audio similarities (models/audio_cohort.py): the cohort's top-k
mean, the normalised pair score, the shipped cohort, and building one from a train pack."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from copytrace.errors import ModelError
from copytrace.models.audio_cohort import AudioCohort, load_cohort, normalised_similarity
from copytrace.models.audio_spec import get_audio_spec


def _unit(x):
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def test_typicality_is_the_mean_of_the_k_best_cosines():
    rng = np.random.default_rng(0)
    cohort, x = _unit(rng.standard_normal((300, 16))), _unit(rng.standard_normal((50, 16)))
    got = AudioCohort(cohort, 5).typicality(x)
    want = np.sort(x @ cohort.T, axis=1)[:, -5:].mean(1)
    np.testing.assert_allclose(got, want, atol=1e-6)
    assert AudioCohort(cohort, 5).typicality(x[:0]).shape == (0,)
    with pytest.raises(ValueError):
        AudioCohort(cohort[:3], 5)


def test_a_typical_pair_loses_to_a_distinctive_one():
    """Two query windows meet their references at nearly the same cosine; one of them lies in
    the crowd (near many cohort windows: a loud, generic background), the other apart. After
    normalisation the distinctive pair scores higher."""
    rng = np.random.default_rng(1)
    hub = _unit(rng.standard_normal(32))
    cohort = _unit(hub + 0.6 * rng.standard_normal((400, 32)) / np.sqrt(32))
    generic_q, generic_r = _unit(hub + 0.3 * _unit(rng.standard_normal(32))), _unit(hub + 0.3 * _unit(rng.standard_normal(32)))
    own = _unit(rng.standard_normal(32))
    own -= (own @ hub) * hub
    own = _unit(own)
    distinct_q = own
    distinct_r = _unit(own + 0.55 * _unit(rng.standard_normal(32)))
    q, r = np.stack([generic_q, distinct_q]), np.stack([generic_r, distinct_r])
    sim = np.diag(q @ r.T)
    assert sim[0] > sim[1]  # plain cosine prefers the typical pair
    c = AudioCohort(cohort, 8)
    spec = replace(get_audio_spec(), cohort_weights=(0.5, 0.5), cohort_level=0.3)
    normed = np.diag(normalised_similarity(q @ r.T, spec, c.typicality(q), c.typicality(r)))
    assert normed[1] > normed[0]
    # the formula, and weights of zero leave cosines alone
    tq, tr = c.typicality(q), c.typicality(r)
    np.testing.assert_allclose(normed, sim - 0.5 * (tq - 0.3) - 0.5 * (tr - 0.3), atol=1e-6)
    off = replace(spec, cohort_weights=(0.0, 0.0))
    np.testing.assert_array_equal(normalised_similarity(q @ r.T, off, tq, tr), q @ r.T)


def test_shipped_cohort_matches_the_model_and_bad_files_are_refused(tmp_path):
    spec = get_audio_spec()
    cohort = load_cohort(spec)
    assert cohort is not None and cohort.dims == spec.dims
    assert 0.0 < spec.cohort_level < 1.0
    assert load_cohort(replace(spec, cohort_file=None)) is None
    (tmp_path / "bad.npy").write_bytes(b"not numpy")
    with pytest.raises(ModelError, match="unreadable"):
        load_cohort(replace(spec, cohort_file="bad.npy", directory=str(tmp_path)))
    np.save(tmp_path / "narrow.npy", np.zeros((40, 8), np.float16))
    with pytest.raises(ModelError, match="not"):
        load_cohort(replace(spec, cohort_file="narrow.npy", directory=str(tmp_path)))


def test_cohort_is_built_from_a_train_pack(tmp_path):
    pytest.importorskip("torch")
    from copytrace.train.audio_cohort import build
    from tests.test_audio_model import write_mulaw_pack

    pack = write_mulaw_pack(tmp_path / "pack", seeds=range(20, 23), seconds=8.0)
    spec = get_audio_spec()
    vectors, level = build(spec, [pack], n=48, k=4)
    assert vectors.dtype == np.float16 and vectors.shape[1] == spec.dims and 40 <= len(vectors) <= 48
    np.testing.assert_allclose(np.linalg.norm(vectors.astype(np.float32), axis=1), 1, atol=2e-3)
    assert 0.0 < level < 1.0

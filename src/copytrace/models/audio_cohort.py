"""How *typical* an audio window is: its mean cosine to its nearest windows of a fixed cohort.

Under a loud background (other music, a crowd) a query window's descriptor drifts towards what
much music has in common, and some reference windows (pads, drones, a game's house style) sit
near many queries whatever they contain. Both lift chance similarities, and the plain cosine
cannot tell a weak true match from a typical pair. The cohort is a fixed set of descriptors of
degraded *train* music (``python -m copytrace.train.audio_cohort``, shipped beside the weights,
made with the same model): a window's typicality is the mean of its ``k`` highest cosines to it. The matcher
reads each pair as ``cosine - wq * (typ(query window) - level) - wr * (typ(reference window) -
level)`` (the spirit of CSLS, Conneau et al. 2018, with a fixed cohort in place of the two
neighbourhoods), so a pair stands out only by what it shares beyond the typical. The cohort does
not depend on what is registered, so the calibration holds for a library of any size; a
reference window's typicality is computed once, when it is indexed or first aligned.
"""
from __future__ import annotations

import numpy as np


class AudioCohort:
    """``typicality(vectors)``: mean of each row's ``k`` highest cosines to the cohort (an exact
    faiss inner-product search: ~0.15 s per hour of audio at the 0.5 s hop on this CPU)."""

    def __init__(self, vectors: np.ndarray, k: int, key: str = "") -> None:
        import faiss

        v = np.ascontiguousarray(vectors, np.float32)
        if v.ndim != 2 or len(v) < k or k < 1:
            raise ValueError(f"a cohort of {v.shape} vectors cannot give the top {k}")
        self.k = int(k)
        self.dims = v.shape[1]
        self.key = key  # names the cohort: typicality stored with another key is stale
        self._index = faiss.IndexFlatIP(self.dims)
        self._index.add(v)

    def typicality(self, vectors: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(vectors, np.float32)
        if len(x) == 0:
            return np.zeros(0, np.float32)
        sims, _ = self._index.search(x, self.k)
        return sims.mean(1).astype(np.float32)


def load_cohort(spec) -> AudioCohort | None:
    """The cohort of an audio descriptor entry, or None when it names none (no normalisation)."""
    if not spec.cohort_file:
        return None
    import hashlib
    import io

    from copytrace.errors import ModelError

    path = spec._weights_file(spec.cohort_file)
    try:
        raw = path.read_bytes()  # read once: loaded and hashed (the hash keys stored typicality)
        vectors = np.load(io.BytesIO(raw))
    except (OSError, ValueError) as e:
        raise ModelError(f"{spec.name}: cohort file {path} is unreadable: {e}") from e
    if vectors.ndim != 2 or vectors.shape[1] != spec.dims:
        raise ModelError(f"{spec.name}: cohort {path} holds {vectors.shape}, not [n, {spec.dims}]")
    key = f"{spec.model_id}/{hashlib.sha256(raw).hexdigest()[:16]}/k{spec.cohort_k}"
    return AudioCohort(vectors.astype(np.float32), spec.cohort_k, key=key)


def normalised_similarity(sim: np.ndarray, spec, q_typ: np.ndarray | None,
                          r_typ: np.ndarray | None) -> np.ndarray:
    """``sim`` [query windows, reference windows] less each side's typicality over the level."""
    wq, wr = spec.cohort_weights
    out = sim
    if q_typ is not None and wq:
        out = out - wq * (np.asarray(q_typ, np.float32)[:, None] - spec.cohort_level)
    if r_typ is not None and wr:
        out = out - wr * (np.asarray(r_typ, np.float32)[None, :] - spec.cohort_level)
    return out

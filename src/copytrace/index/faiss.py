"""FAISS-backed index, the embedded default: exact inner product over an id map."""
from __future__ import annotations

import numpy as np

from copytrace.index.base import ReferenceIndex


def _faiss():
    try:
        import faiss
    except ModuleNotFoundError as e:
        raise ModuleNotFoundError("the FAISS index needs 'faiss-cpu': pip install faiss-cpu") from e
    return faiss


class FaissIndex(ReferenceIndex):
    def __init__(self, dims: int, _index=None) -> None:
        faiss = _faiss()
        self.dims = int(dims)
        self._index = _index if _index is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(dims))

    @classmethod
    def load(cls, path: str) -> FaissIndex:
        faiss = _faiss()
        index = faiss.read_index(path)
        return cls(index.d, index)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if vectors.ndim != 2 or vectors.shape[1] != self.dims or len(ids) != len(vectors):
            raise ValueError(f"expected [{len(ids)}, {self.dims}] vectors, got {vectors.shape}")
        if len(ids):
            self._index.add_with_ids(vectors, ids)

    def remove(self, ids: np.ndarray) -> int:
        faiss = _faiss()
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if not len(ids):
            return 0
        return int(self._index.remove_ids(faiss.IDSelectorBatch(ids)))

    def search(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        n = len(self)
        if n == 0 or len(vectors) == 0:
            return (np.zeros((len(vectors), 0), np.float32), np.zeros((len(vectors), 0), np.int64))
        sims, ids = self._index.search(vectors, min(k, n))
        return sims, ids

    def ids(self) -> np.ndarray:
        if len(self) == 0:
            return np.zeros(0, np.int64)
        return _faiss().vector_to_array(self._index.id_map).astype(np.int64)

    def save(self, path: str) -> None:
        _faiss().write_index(self._index, path)

    def __len__(self) -> int:
        return int(self._index.ntotal)

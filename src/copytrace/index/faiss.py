"""FAISS-backed index, the embedded default: exact inner product over an id map, or IVF-PQ
(approximate, re-ranked by the store on the float descriptors) for large libraries; kept as
``index-<signal>.faiss`` files in the library folder."""
from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from copytrace.index.base import IndexBackend, IndexConfig, ReferenceIndex

log = logging.getLogger(__name__)


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
        # IVF-PQ holds its ids itself (an id map over IVF breaks on removal); flat uses one.
        self.approximate = faiss.try_extract_index_ivf(self._index) is not None

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
        faiss = _faiss()
        if len(self) == 0:
            return np.zeros(0, np.int64)
        if not self.approximate:
            return faiss.vector_to_array(self._index.id_map).astype(np.int64)
        lists = faiss.extract_index_ivf(self._index).invlists
        return np.concatenate([
            faiss.rev_swig_ptr(lists.get_ids(i), lists.list_size(i)).astype(np.int64)
            for i in range(lists.nlist)])

    def save(self, path: str) -> None:
        _faiss().write_index(self._index, path)

    def __len__(self) -> int:
        return int(self._index.ntotal)


def new_ivfpq(n: int, d: int, nprobe: int = 32):
    """An empty, untrained IVF-PQ index sized for ``n`` vectors of ``d`` dims: about sqrt(n)
    lists, dims/8 sub-quantizers of 8-bit codes, inner product. Train it on a sample of at
    least 64 vectors per list (``train_size``), then add vectors in chunks of any size."""
    faiss = _faiss()
    nlist = int(np.clip(np.sqrt(n), 16, 65536))
    m = next(m for m in (d // 8, d // 4, d // 2, d) if m and d % m == 0)
    ivf = faiss.IndexIVFPQ(faiss.IndexFlatIP(d), d, nlist, m, 8, faiss.METRIC_INNER_PRODUCT)
    ivf.nprobe = nprobe
    return ivf


def train_size(ivf) -> int:
    return 64 * int(ivf.nlist)


def build_ivfpq(index: FaissIndex, nprobe: int = 32) -> FaissIndex:
    """The same vectors and ids in an IVF-PQ index (``new_ivfpq``), trained on a sample of
    them."""
    faiss = _faiss()
    flat = faiss.downcast_index(index._index.index)
    ids = index.ids()
    vectors = flat.reconstruct_n(0, flat.ntotal)
    n, d = vectors.shape
    ivf = new_ivfpq(n, d, nprobe)
    rng = np.random.default_rng(0)
    sample = vectors[rng.choice(n, min(n, train_size(ivf)), replace=False)]
    ivf.train(np.ascontiguousarray(sample))
    ivf.add_with_ids(vectors, ids)
    return FaissIndex(d, ivf)


class FaissFileBackend(IndexBackend):
    def __init__(self, root: Path, config: IndexConfig) -> None:
        self.root = Path(root)
        self.config = config

    def _path(self, signal: str) -> Path:
        return self.root / f"index-{signal}.faiss"

    def where(self, signal: str) -> str:
        return str(self._path(signal))

    def open(self, signal: str) -> FaissIndex | None:
        path = self._path(signal)
        if not path.exists():
            return None
        try:
            return FaissIndex.load(str(path))
        except (RuntimeError, OSError) as e:  # a damaged cache is rebuilt, never trusted
            log.warning("index file %s unreadable (%s); rebuilding from the catalogue", path, e)
            return None

    def create(self, signal: str, dims: int) -> FaissIndex:
        return FaissIndex(dims)

    def persist(self, signal: str, index: FaissIndex) -> FaissIndex:
        """Write atomically (temporary file, fsync, rename; the caller holds the write lock
        and fsyncs the folder); a flat index past ``approximate_from`` becomes IVF-PQ."""
        if not index.approximate and len(index) >= self.config.approximate_from:
            log.info("index %s: %d vectors, rebuilding as IVF-PQ", signal, len(index))
            index = build_ivfpq(index)
        path = self._path(signal)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        index.save(str(tmp))
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        return index

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


# Below this many query-reference products (a few ms on one core) a search runs on one thread.
SERIAL_SEARCH_WORK = 1 << 24


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
        work = len(vectors) * (n // PROBE_SHARE if self.approximate else n)
        if work > SERIAL_SEARCH_WORK:
            return self._index.search(vectors, min(k, n))
        # A small search on one thread: FAISS splits even a few queries over OpenMP threads,
        # whose start and barrier cost tens of ms on a busy machine (17 region queries
        # against 1,000 vectors: 24 ms on two loaded cores, 0.3 ms on one).
        faiss = _faiss()
        threads = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)
        try:
            return self._index.search(vectors, min(k, n))
        finally:
            faiss.omp_set_num_threads(threads)

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


# IVF-PQ sizing (issue 25; tuned on the development seed of bench/scale.py, see docs/scale.md):
# about 4·sqrt(n) lists, 1/PROBE_SHARE of them probed, so that recall holds as n grows; 4-bit
# "fast-scan" codes (dims/4 of them: 32 bytes a vector at 256 dims, as many as 8-bit codes of
# dims/8) scanned with SIMD lookups, several times faster per probed vector; the store re-ranks
# IndexConfig.rerank_factor × k candidates exactly on the float descriptors.
LISTS_PER_SQRT_N = 4
MIN_LIST_SIZE = 39  # below ~39 training vectors per list FAISS's k-means is unreliable
PROBE_SHARE = 8


def ivfpq_params(n: int, d: int) -> dict:
    """IVF-PQ parameters for ``n`` vectors of ``d`` dims: ``nlist`` lists (about 4·sqrt(n),
    at most n/39 so that each list trains on enough vectors), ``nprobe`` (1/8 of the lists, at
    least 16), ``m`` sub-quantizers of ``nbits``-bit codes (dims/4 of 4 bits)."""
    if n < 1 or d < 1:
        raise ValueError(f"IVF-PQ needs vectors and dims, got n={n}, d={d}")
    nlist = int(np.clip(round(LISTS_PER_SQRT_N * np.sqrt(n)), 16, 65536))
    nlist = max(16, min(nlist, n // MIN_LIST_SIZE))
    nprobe = int(min(nlist, max(16, nlist // PROBE_SHARE)))
    m = next(m for m in (d // 4, d // 2, d) if m and d % m == 0)
    return {"nlist": nlist, "nprobe": nprobe, "m": m, "nbits": 4}


def new_ivfpq(n: int, d: int, nprobe: int | None = None):
    """An empty, untrained IVF-PQ index (fast-scan codes) sized for ``n`` vectors of ``d``
    dims (``ivfpq_params``; ``nprobe`` overrides the sized one), inner product. Train it on a
    sample of ``train_size`` vectors, then add vectors in chunks of any size. The file keeps
    nprobe, so an index built for one size keeps its parameters until it is rebuilt."""
    faiss = _faiss()
    p = ivfpq_params(n, d)
    ivf = faiss.index_factory(d, f"IVF{p['nlist']},PQ{p['m']}x{p['nbits']}fs",
                              faiss.METRIC_INNER_PRODUCT)
    ivf.nprobe = int(nprobe) if nprobe else p["nprobe"]
    return ivf


def train_size(ivf) -> int:
    """Training vectors for ``ivf``: 40 per list (k-means of the lists; the 256 codes of each
    sub-quantizer need far fewer), which bounds the training sample's memory to 40·nlist·d
    floats (0.16 GB at 10^6 vectors of 256 dims)."""
    return max(256, 40 * int(ivf.nlist))


def build_ivfpq(index: FaissIndex, nprobe: int | None = None, chunk: int = 100_000
                ) -> FaissIndex:
    """The same vectors and ids in an IVF-PQ index (``new_ivfpq``), trained on a sample of
    them, filled chunk by chunk from the flat index (no second full float copy)."""
    faiss = _faiss()
    flat = faiss.downcast_index(index._index.index)
    ids = index.ids()
    n, d = int(flat.ntotal), int(flat.d)
    ivf = new_ivfpq(n, d, nprobe)
    rng = np.random.default_rng(0)
    pick = np.sort(rng.choice(n, min(n, train_size(ivf)), replace=False))
    ivf.train(np.ascontiguousarray(np.stack([flat.reconstruct(int(i)) for i in pick])))
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        ivf.add_with_ids(flat.reconstruct_n(start, stop - start), ids[start:stop])
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

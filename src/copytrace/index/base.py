"""The ReferenceIndex interface, the backends that keep one index per signal, and their
configuration."""
from __future__ import annotations

import os
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

BACKENDS = ("faiss", "milvus")


@dataclass(frozen=True)
class IndexConfig:
    """Where a library's vectors are searched.

    ``backend``: ``faiss`` (files in the library folder, the embedded default) or ``milvus``
    (``milvus_uri``: a local file path runs Milvus Lite, ``http://host:19530`` a Milvus
    standalone or cluster; collections are named per library and signal). ``approximate_from``:
    a FAISS index of at least this many vectors is rebuilt as IVF-PQ at the next flush, and its
    candidates re-ranked on the catalogue's float descriptors (``rerank_factor`` × k of them).
    The environment gives the defaults: ``COPYTRACE_INDEX``, ``COPYTRACE_MILVUS_URI``,
    ``COPYTRACE_INDEX_APPROXIMATE_FROM``.
    """

    backend: str = "faiss"
    milvus_uri: str = ""
    approximate_from: int = 2_000_000
    rerank_factor: int = 150  # × k candidates re-ranked; tuned with index/faiss.py ivfpq_params

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"index backend {self.backend!r} unknown: pick one of {BACKENDS}")
        if self.backend == "milvus" and not self.milvus_uri:
            raise ValueError("the milvus index needs milvus_uri (a file path for Milvus Lite, "
                             "or http://host:19530); set COPYTRACE_MILVUS_URI or --milvus-uri")
        if self.approximate_from < 256:
            raise ValueError("approximate_from must be >= 256 (IVF-PQ trains its lists and codes "
                             "on the vectors it holds)")
        if self.rerank_factor < 1:
            raise ValueError("rerank_factor must be >= 1")

    @classmethod
    def from_env(cls) -> IndexConfig:
        raw = os.environ.get("COPYTRACE_INDEX_APPROXIMATE_FROM", "")
        try:
            approximate_from = int(raw) if raw else cls.approximate_from
        except ValueError:
            raise ValueError(f"COPYTRACE_INDEX_APPROXIMATE_FROM must be a whole number of "
                             f"vectors, got {raw!r}") from None
        return cls(backend=os.environ.get("COPYTRACE_INDEX", "faiss"),
                   milvus_uri=os.environ.get("COPYTRACE_MILVUS_URI", ""),
                   approximate_from=approximate_from)


class ReferenceIndex(ABC):
    """Inner-product search over L2-normalised vectors (inner product = cosine)."""

    dims: int
    # True when search returns approximate similarities: the store re-ranks its candidates on
    # the float descriptors of the catalogue.
    approximate: bool = False

    @abstractmethod
    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add float32 [N, dims] vectors under int64 ids (ids must be new)."""

    @abstractmethod
    def remove(self, ids: np.ndarray) -> int:
        """Remove vectors by id; returns how many were removed."""

    @abstractmethod
    def search(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Return (similarities [Nq, k] float32, ids [Nq, k] int64); missing slots have id -1."""

    @abstractmethod
    def ids(self) -> np.ndarray:
        """Every id held, int64."""

    @abstractmethod
    def save(self, path: str) -> None: ...

    @abstractmethod
    def __len__(self) -> int: ...


class IndexBackend(ABC):
    """Keeps one ReferenceIndex per signal of one library, outside the catalogue (which stays
    the source of truth: the store reconciles every index with it when it opens one)."""

    @abstractmethod
    def open(self, signal: str) -> ReferenceIndex | None:
        """The signal's stored index, or None when there is none (or it is unusable)."""

    @abstractmethod
    def create(self, signal: str, dims: int) -> ReferenceIndex: ...

    @abstractmethod
    def persist(self, signal: str, index: ReferenceIndex) -> ReferenceIndex:
        """Make ``index`` durable; returns the index to use from now on (it may be rebuilt)."""

    @abstractmethod
    def where(self, signal: str) -> str:
        """Where the signal's index lives, for messages."""

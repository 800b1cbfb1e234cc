"""The ReferenceIndex interface."""
from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np


class ReferenceIndex(ABC):
    """Inner-product search over L2-normalised vectors (inner product = cosine)."""

    dims: int

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

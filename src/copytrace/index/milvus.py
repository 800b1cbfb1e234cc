"""Milvus-backed index (extra ``[milvus]``): the path past one machine. The same code runs on
Milvus Lite (a local file URI, used by the tests) and on a Milvus standalone or cluster
(``http://host:19530``). One collection per library and signal: ``id`` (int64, the catalogue's
vector id) and ``vector`` (float, inner product, exact FLAT index by default)."""
from __future__ import annotations

import numpy as np

from copytrace.index.base import IndexBackend, IndexConfig, ReferenceIndex

BATCH = 2000  # rows per insert/delete call: Milvus caps a request's size
LIMIT = 16384  # Milvus's largest query/search result


def _client(uri: str):
    import os

    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")  # gRPC's fork notices are not ours to show
    if "://" not in uri:
        import logging

        # Milvus Lite answers a timestamp request pymilvus makes on a first query with
        # "not implemented" (logged as a traceback); pymilvus then uses its own clock.
        logging.getLogger("grpc._server").setLevel(logging.CRITICAL)
    try:
        from pymilvus import MilvusClient
    except ModuleNotFoundError as e:
        raise ModuleNotFoundError(
            "the milvus index needs pymilvus (and milvus-lite for a local file): "
            "pip install 'copytrace[milvus]'") from e
    return MilvusClient(uri)


class MilvusIndex(ReferenceIndex):
    def __init__(self, client, collection: str, dims: int) -> None:
        self._client = client
        self.collection = collection
        self.dims = int(dims)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        ids = np.asarray(ids, dtype=np.int64)
        if vectors.ndim != 2 or vectors.shape[1] != self.dims or len(ids) != len(vectors):
            raise ValueError(f"expected [{len(ids)}, {self.dims}] vectors, got {vectors.shape}")
        for i in range(0, len(ids), BATCH):
            rows = [{"id": int(j), "vector": v.tolist()}
                    for j, v in zip(ids[i:i + BATCH], vectors[i:i + BATCH])]
            self._client.insert(self.collection, rows)

    def remove(self, ids: np.ndarray) -> int:
        ids = [int(i) for i in np.asarray(ids, dtype=np.int64)]
        n = 0
        for i in range(0, len(ids), BATCH):
            res = self._client.delete(self.collection, ids=ids[i:i + BATCH])
            n += len(res) if isinstance(res, list) else int(res.get("delete_count", 0))
        return n

    def search(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        sims = np.zeros((len(vectors), k), np.float32)
        out = np.full((len(vectors), k), -1, np.int64)
        if len(vectors) == 0 or len(self) == 0:
            return sims[:, :0], out[:, :0]
        k = min(k, LIMIT)
        for i in range(0, len(vectors), 256):
            hits = self._client.search(self.collection, data=vectors[i:i + 256].tolist(),
                                       limit=k, output_fields=["id"],
                                       search_params={"metric_type": "IP"})
            for row, found in enumerate(hits):
                for col, h in enumerate(found):
                    sims[i + row, col], out[i + row, col] = h["distance"], h["id"]
        width = int((out >= 0).sum(1).max())
        return sims[:, :width], out[:, :width]

    def ids(self) -> np.ndarray:
        """Every id, read in id ranges (pages of at most LIMIT rows): the store's vector ids
        are dense, so a range that comes back full is halved and asked again."""
        total, found, lo, span = len(self), [], 0, 1 << 16
        while len(found) < total:
            page = self._client.query(self.collection, filter=f"id >= {lo} and id < {lo + span}",
                                      output_fields=["id"], limit=LIMIT)
            if len(page) >= LIMIT and span > 1:
                span //= 2
                continue
            found.extend(r["id"] for r in page)
            lo += span
            if not page:
                span *= 2
        return np.array(sorted(found), dtype=np.int64)

    def save(self, path: str) -> None:
        self._client.flush(self.collection)

    def __len__(self) -> int:
        return int(self._client.get_collection_stats(self.collection)["row_count"])


class MilvusBackend(IndexBackend):
    def __init__(self, config: IndexConfig, library_id: str) -> None:
        self.config = config
        self.prefix = f"ct_{library_id}_"
        self._client = _client(config.milvus_uri)

    def _name(self, signal: str) -> str:
        return self.prefix + signal

    def where(self, signal: str) -> str:
        return f"{self.config.milvus_uri} collection {self._name(signal)}"

    def open(self, signal: str) -> MilvusIndex | None:
        name = self._name(signal)
        if not self._client.has_collection(name):
            return None
        fields = self._client.describe_collection(name)["fields"]
        dims = next(f["params"]["dim"] for f in fields if f["name"] == "vector")
        self._client.load_collection(name)
        return MilvusIndex(self._client, name, int(dims))

    def create(self, signal: str, dims: int) -> MilvusIndex:
        from pymilvus import DataType

        name = self._name(signal)
        schema = self._client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=int(dims))
        params = self._client.prepare_index_params()
        params.add_index(field_name="vector", index_type="FLAT", metric_type="IP")
        self._client.create_collection(name, schema=schema, index_params=params)
        return MilvusIndex(self._client, name, dims)

    def persist(self, signal: str, index: MilvusIndex) -> MilvusIndex:
        index.save("")
        return index

    def drop(self, signal: str) -> None:
        """Delete the signal's collection (a rebuild from the catalogue follows)."""
        self._client.drop_collection(self._name(signal))

    def close(self) -> None:
        self._client.close()

"""Durable storage: the SQLite catalogue (truth) and the FAISS index files derived from it."""
from copytrace.store.catalog import Catalog
from copytrace.store.store import Store

__all__ = ["Catalog", "Store"]

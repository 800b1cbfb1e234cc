"""Reference indexes: ANN search over descriptor vectors, keyed by int64 vector ids."""
from copytrace.index.base import ReferenceIndex

__all__ = ["ReferenceIndex"]

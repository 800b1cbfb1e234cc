"""Typed values that travel between the pipeline stages. Times are float seconds."""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

MEDIA_TYPES = ("image", "video", "audio", "text")


@dataclass(frozen=True)
class Descriptors:
    """Descriptors of one file: row i of ``vectors`` covers ``starts_s[i]``..``ends_s[i]``.

    Still images have one row with start = end = 0.0. Vectors are float32 and L2-normalised.
    A video query may carry ``views`` [N, V, D]: descriptors of parts of each frame (corners,
    centre), all-zero where a frame was not given them. Only queries have views; they are never
    stored. ``detail`` [N] (video frames, when decoded here): each frame's picture detail
    (``models.frame_cohort.frame_detail``); stored beside a work's descriptors, not in them.
    """

    vectors: np.ndarray
    starts_s: np.ndarray
    ends_s: np.ndarray
    model: str
    signal: str = "visual"
    views: np.ndarray | None = None
    detail: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = self.vectors.shape[0]
        if self.detail is not None and np.shape(self.detail) != (n,):
            raise ValueError(f"Descriptors detail {np.shape(self.detail)} should be [{n}]")
        if self.vectors.ndim != 2 or self.starts_s.shape != (n,) or self.ends_s.shape != (n,):
            raise ValueError(
                f"Descriptors shapes disagree: vectors {self.vectors.shape}, "
                f"starts {self.starts_s.shape}, ends {self.ends_s.shape}"
            )
        if self.views is not None and (
            self.views.ndim != 3 or self.views.shape[0] != n
            or self.views.shape[2] != self.vectors.shape[1]
        ):
            raise ValueError(
                f"Descriptors views {self.views.shape} should be [{n}, V, {self.vectors.shape[1]}]"
            )

    def __len__(self) -> int:
        return int(self.vectors.shape[0])


class _JsonMixin:
    def to_json(self) -> str:
        """One line of JSON (the README's schema)."""
        return json.dumps(self.to_dict())  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Segment(_JsonMixin):
    query_start_s: float
    query_end_s: float
    ref_start_s: float
    ref_end_s: float
    score: float

    def to_dict(self) -> dict:
        """The JSON schema's object as a dict (``to_json`` gives the string)."""
        return {
            "query_start_s": round(float(self.query_start_s), 6),
            "query_end_s": round(float(self.query_end_s), 6),
            "ref_start_s": round(float(self.ref_start_s), 6),
            "ref_end_s": round(float(self.ref_end_s), 6),
            "score": round(float(self.score), 6),
        }


@dataclass(frozen=True)
class TextSegment(_JsonMixin):
    """A copied passage of a text: code points of the original files, ends exclusive (for
    HTML, of the decoded markup; for EPUB/DOCX, of the extracted text). ``matched_chars``:
    normalised characters of the query that the aligned runs cover."""

    query_start_char: int
    query_end_char: int
    ref_start_char: int
    ref_end_char: int
    score: float
    matched_chars: int = 0

    def to_dict(self) -> dict:
        """The JSON schema's object as a dict (``to_json`` gives the string)."""
        return {
            "query_start_char": int(self.query_start_char),
            "query_end_char": int(self.query_end_char),
            "ref_start_char": int(self.ref_start_char),
            "ref_end_char": int(self.ref_end_char),
            "score": round(float(self.score), 6),
            "matched_chars": int(self.matched_chars),
        }


@dataclass(frozen=True)
class Work(_JsonMixin):
    work_id: str
    title: str
    path: str
    media_type: str
    sha256: str
    duration_s: float | None
    added_at: float
    model: str
    n_descriptors: int = 0

    def to_dict(self) -> dict:
        """The JSON schema's object as a dict (``to_json`` gives the string)."""
        return {
            "work_id": self.work_id,
            "title": self.title,
            "path": self.path,
            "media_type": self.media_type,
            "sha256": self.sha256,
            "duration_s": self.duration_s,
            "added_at": self.added_at,
            "model": self.model,
            "n_descriptors": self.n_descriptors,
        }


@dataclass(frozen=True)
class Match(_JsonMixin):
    work_id: str
    title: str
    path: str
    media_type: str
    score: float
    similarity: float
    segments: tuple[Segment | TextSegment, ...] = ()
    signal: str = "visual"
    # Still images: where the registered image sits in the query, (x0, y0, x1, y1) in the
    # query's pixels (local verification's transform of the reference outline); None if unknown.
    box: tuple[int, int, int, int] | None = None

    def to_dict(self) -> dict:
        """The JSON schema's object as a dict (``to_json`` gives the string); ``box`` only
        when known."""
        out = {
            "work_id": self.work_id,
            "title": self.title,
            "path": self.path,
            "media_type": self.media_type,
            "score": round(float(self.score), 6),
            "similarity": round(float(self.similarity), 6),
            "signal": self.signal,
            "segments": [s.to_dict() for s in self.segments],
        }
        if self.box is not None:
            out["box"] = [int(v) for v in self.box]
        return out


@dataclass(frozen=True)
class QueryInfo:
    path: str
    media_type: str
    duration_s: float | None
    sha256: str


@dataclass(frozen=True)
class QueryResult(_JsonMixin):
    query: QueryInfo
    elapsed_s: float
    matches: tuple[Match, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict:
        """The JSON schema's object as a dict (``to_json`` gives the string)."""
        return {
            "query": {
                "path": self.query.path,
                "media_type": self.query.media_type,
                "duration_s": self.query.duration_s,
                "sha256": self.query.sha256,
            },
            "elapsed_s": round(float(self.elapsed_s), 6),
            "matches": [m.to_dict() for m in self.matches],
        }

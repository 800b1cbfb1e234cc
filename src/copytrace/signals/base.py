"""The ``Signal`` interface: one room per kind of evidence (visual, audio, text).

A ``Library`` (``copytrace.engine``) keeps registration, the catalogue, the report, and one
``Signal`` object per registered signal; it loops over them and never asks which one it holds.
Every signal-specific decision (how to decode and describe, how to find and match candidates,
which calibrated threshold scores them) lives in the signal's own module:

    signals/visual.py   VisualSignal   still images and video frames (views, aligners, refinement,
                                       local verification of images, the frame cohort)
    signals/audio.py    AudioSignal    recordings and soundtracks (encoder, cohort, offsets)
    signals/text.py     TextSignal     (issue 21)

What a signal implements (``Signal`` below; abstract methods must be written, the rest have
defaults that suit a signal of dense, L2-normalised vectors):

``name``
    The key of its descriptors everywhere: ``Descriptors.signal``, ``Match.signal``, the
    catalogue's ``descriptors.signal`` column and the index file ``index-<name>.faiss``.
``media_types``
    The media types (``types.MEDIA_TYPES``) it may describe: visual ('image', 'video'), audio
    ('audio', 'video'), text ('text').
``describes(media) -> bool``
    Whether a probed file (``media.probe.MediaInfo``) carries this signal. Default: its media
    type is one of ``media_types`` (audio also asks for a soundtrack).
``required(media) -> bool``
    Whether a file of that kind must yield this signal's descriptors (audio for a recording:
    yes; for a video's soundtrack: no, a silent soundtrack leaves the pictures to stand alone).
``spec``
    Its descriptor's registry entry (``models.registry.CalibratedEntry``): ``model_id`` and the
    calibrated ``score(similarity)``. Every calibrated constant a signal applies is read from it.
``describe(media, for_query) -> Descriptors | None``
    Decode and describe for registration (``for_query=False``) or for a query (may add query-only
    rows or ``views``). None: nothing to describe in this file (only where not ``required``);
    otherwise a file it cannot describe raises ``MediaError`` naming the file and the cause.
``window_stats(descriptors) -> list[WindowStats]``
    Per-row numbers stored beside a new work's descriptors (typicality, detail), so no query
    pays for them. Default: none.
``check_descriptors(descriptors)``
    Refuse descriptors made elsewhere (``Library.add_descriptors``) that this signal could not
    search correctly, saying why. Default: model id, dims, L2 norm, sorted times.
``find(query, top_k) -> list[Match]``
    The query's matches for this signal, scored (calibrated, 0.5 = the decision threshold).
    Default: ``candidates`` then ``match`` for each, dropping None.
``candidates(query, top_k) -> list[Candidate]``
    The candidate search hook: which registered works to look at, best first. Default: nearest
    neighbours of every query row in the signal's vector index (``Store.search``), aggregated by
    votes per work (timed queries) or by the best similarity (a single row).
``match(query, work, candidate) -> Match | None``
    Score one candidate work against the query (alignment, verification, ...). None: not a
    candidate after all (no informative evidence).

How descriptors are stored: ``Library`` hands the ``Descriptors`` a signal described (one per
signal per work) and its ``window_stats`` to ``Store.add``, which writes them in one catalogue
transaction (``catalog.sqlite``: ``n``, ``dims``, times, the ``vectors`` bytes); ``catalog.
descriptors(work_id, name)`` gives them back. Signals with ``indexed = True`` (dense vectors) are
also kept in a vector index (FAISS file or Milvus) that ``Store.search(name, vectors, k)``
queries. A signal whose descriptors are not dense vectors (text: winnowing hashes) sets
``indexed = False`` (the store then builds no vector index for it), stores its rows through the
same ``Descriptors`` container (``vectors`` as the raw rows it needs; ``check_descriptors``
overridden to accept them), and overrides ``candidates`` with its own lookup (an inverted index
it keeps and reconciles with the catalogue, like ``Store.index`` does with
``catalog.generation()``).

A new signal: subclass ``Signal`` in ``signals/<name>.py`` and add ``"<name>": "<module>:<Class>"``
to ``BUILTIN`` below (or call ``register_signal`` for one defined elsewhere). ``EngineConfig``
turns signals on (``EngineConfig.signals``).
"""
from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

from copytrace.types import Descriptors, Match, Segment, Work

if TYPE_CHECKING:
    from copytrace.config import EngineConfig
    from copytrace.media.probe import MediaInfo
    from copytrace.models.registry import CalibratedEntry
    from copytrace.store import Store
    from copytrace.store.catalog import WindowStats


@dataclass(frozen=True)
class Candidate:
    """A registered work worth matching: the best single row similarity, where it was found
    (``query_row`` of the query, ``ref_row`` of the work) and the work's votes."""

    work_id: str
    similarity: float
    query_row: int
    ref_row: int
    votes: float = 0.0


@dataclass
class Query:
    """One query file as the signals see it: probed once (``media``), described by this signal
    (``descriptors``); ``cache`` holds what a signal computes once per query (typicality, local
    features) under keys of its own."""

    media: MediaInfo
    descriptors: Descriptors
    cache: dict = field(default_factory=dict)


class Signal(ABC):
    """One kind of evidence. See the module docstring for the contract."""

    name: str = ""
    media_types: tuple[str, ...] = ()
    indexed: bool = True  # descriptors are dense vectors kept in the store's vector index
    timed: bool = True  # descriptor starts/ends are seconds (text's are character offsets)

    def __init__(self, config: EngineConfig, store: Store) -> None:
        self.config = config
        self.store = store

    # -- describe ---------------------------------------------------------------------------
    def describes(self, media: MediaInfo) -> bool:
        """Whether this signal describes this file."""
        return media.media_type in self.media_types

    def required(self, media: MediaInfo) -> bool:
        """Whether ``describe`` must find something in such a file (default: yes)."""
        return True

    @property
    @abstractmethod
    def spec(self) -> CalibratedEntry:
        """The descriptor's registry entry (model id, calibrated score)."""

    @property
    def model_id(self) -> str:
        return self.spec.model_id

    @abstractmethod
    def describe(self, media: MediaInfo, for_query: bool) -> Descriptors | None:
        """Descriptors of one file (see the module docstring)."""

    def window_stats(self, descriptors: Descriptors) -> list[WindowStats]:
        return []

    def check_descriptors(self, d: Descriptors) -> None:
        """Reject descriptors this signal could not search correctly, saying why."""
        if d.model != self.model_id:
            raise ValueError(
                f"descriptors of model {d.model!r} cannot join a library that describes "
                f"{d.signal} with {self.model_id!r}; describe the media with that model"
            )
        if d.views is not None:
            raise ValueError("descriptors with views are query descriptors; register whole frames")
        if len(d) == 0:
            raise ValueError("no descriptors: a work needs at least one")
        dims = getattr(self.spec, "dims", None)
        if dims is not None and d.vectors.shape[1] != dims:
            raise ValueError(f"descriptors have {d.vectors.shape[1]} dims, {self.model_id} has "
                             f"{dims}")
        norms = np.linalg.norm(np.asarray(d.vectors, np.float64), axis=1)
        if not np.all(np.isfinite(norms)) or np.abs(norms - 1).max() > 1e-3:
            raise ValueError("descriptor rows must be finite and L2-normalised (norm 1)")
        if (np.diff(d.starts_s) < 0).any() or (d.ends_s < d.starts_s).any():
            raise ValueError("descriptor times must be sorted, each ending at or after its start")

    # -- match ------------------------------------------------------------------------------
    def find(self, query: Query, top_k: int) -> list[Match]:
        out = []
        for cand in self.candidates(query, top_k):
            m = self.match(query, self.store.catalog.get(cand.work_id), cand)
            if m is not None:
                out.append(m)
        return out

    def searched_vectors(self, d: Descriptors) -> tuple[np.ndarray, np.ndarray]:
        """The vectors to look up for a query and the row each one belongs to (default: its
        rows)."""
        return d.vectors, np.arange(len(d))

    def candidates(self, query: Query, top_k: int) -> list[Candidate]:
        from copytrace.index.votes import vote_candidates

        d = query.descriptors
        k = max(self.config.candidates, top_k)
        vectors, row_of = self.searched_vectors(d)
        sims, work_ids, offsets = self.store.search(self.name, vectors, k)
        votes, best = vote_candidates(row_of, sims, work_ids, offsets)
        if len(d) == 1:
            ranked = sorted(best, key=lambda w: -best[w][0])[:top_k]
        else:
            n = max(top_k, self.config.temporal_candidates)
            ranked = sorted(votes, key=lambda w: -votes[w])[:n]
        return [Candidate(w, float(best[w][0]), int(best[w][1]), int(best[w][2]),
                          float(votes.get(w, 0.0))) for w in ranked]

    @abstractmethod
    def match(self, query: Query, work: Work, candidate: Candidate) -> Match | None:
        """Score one candidate work (see the module docstring)."""

    # -- helpers for implementations --------------------------------------------------------
    def make_match(self, work: Work, score: float, similarity: float,
                   segments: list[Segment] | tuple[Segment, ...] = ()) -> Match:
        return Match(work_id=work.work_id, title=work.title, path=work.path,
                     media_type=work.media_type, score=float(score), similarity=float(similarity),
                     segments=tuple(segments), signal=self.name)

    def best_row_segment(self, query: Query, ref: Descriptors, cand: Candidate) -> Segment:
        """The candidate's best row pair as a segment (a still against a timed work, or an
        alignment that found nothing)."""
        d = query.descriptors
        qi, ri = cand.query_row, cand.ref_row
        return Segment(float(d.starts_s[qi]), float(d.ends_s[qi]),
                       float(ref.starts_s[ri]), float(ref.ends_s[ri]), cand.similarity)

    def timed_match(self, work: Work, segments: list[Segment], scorer) -> Match:
        """A match from aligned segments whose scores are similarities (aligners score by the
        mean similarity along their path): the best one is the match's similarity, each is
        scored through ``scorer.score``; segments in query order."""
        segments = sorted(segments, key=lambda s: s.query_start_s)
        best = max(s.score for s in segments)
        return self.make_match(work, scorer.score(best), best,
                               [replace(s, score=float(scorer.score(s.score))) for s in segments])


def remember(cache: dict, key: str, compute: Callable[[], object], limit: int = 4096):
    """``cache[key]``, computed on first use; the oldest entry goes when ``limit`` is reached."""
    if key not in cache:
        if len(cache) >= limit:
            cache.pop(next(iter(cache)))
        cache[key] = compute()
    return cache[key]


# name -> "module:Class"; imported only when a library uses the signal.
BUILTIN: dict[str, str] = {
    "visual": "copytrace.signals.visual:VisualSignal",
    "audio": "copytrace.signals.audio:AudioSignal",
    "text": "copytrace.signals.text:TextSignal",
}
_REGISTERED: dict[str, type[Signal]] = {}


def register_signal(cls: type[Signal]) -> type[Signal]:
    """Make a ``Signal`` subclass available by its ``name`` (usable as a class decorator)."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    _REGISTERED[cls.name] = cls
    return cls


def signal_names() -> list[str]:
    return sorted(set(BUILTIN) | set(_REGISTERED))


def get_signal_class(name: str) -> type[Signal]:
    if name in _REGISTERED:
        return _REGISTERED[name]
    if name not in BUILTIN:
        raise ValueError(f"unknown signal {name!r} (known: {', '.join(signal_names())})")
    module, cls_name = BUILTIN[name].split(":")
    cls = getattr(importlib.import_module(module), cls_name)
    if not (isinstance(cls, type) and issubclass(cls, Signal)) or cls.name != name:
        raise TypeError(f"{BUILTIN[name]} is not a Signal named {name!r}")
    return cls


def build_signals(config: EngineConfig, store: Store) -> list[Signal]:
    """The signals ``config.signals`` names, in that order (the order of a work's descriptors)."""
    return [get_signal_class(name)(config, store) for name in config.signals]

"""Find registered recordings in a query's audio: window kNN, then offset alignment.

Reference windows sit every ``spec.hop_s`` (0.5 s), query windows every ``spec.query_hop_s``
(0.1 s). Each query window's nearest reference windows propose (track, offset) pairs, offset =
reference start - query start. Each proposal is scored by its *sequence similarity*: every
query window is compared with the reference window nearest to where the offset puts it (the
model is trained to tolerate +-0.2 s misplacement), and the cosines are averaged over all
query windows, so windows that fall outside the reference or on its silent parts count as 0.
The best proposal wins; its offset is then fixed to within one query hop by the query windows
that land exactly on reference windows, and refined between grid points by a parabola.
The reported similarity subtracts ``spec.length_penalty / sqrt(n)`` (short queries have
higher chance matches); under ``spec.threshold_similarity`` it is no match.

The benchmark's alternative matcher (``bench/audio.py --matcher search``); the engine's audio
path, which the benchmark scores by default, is the Library's audio signal
(``copytrace/signals/audio.py``). Not part of the package.
"""
from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from copytrace.models.audio_spec import AudioDescriptorSpec


@dataclass(frozen=True)
class AudioHit:
    track: str
    offset_s: float  # reference time = query time + offset_s
    similarity: float  # evidence-adjusted sequence similarity
    raw_similarity: float  # mean cosine over all query windows
    n_windows: int
    score: float
    support: float = 0.0  # share of query windows whose kNN agrees with the alignment
    # (mean cosine, query windows, track, offset_s) of every segment the engine's audio signal
    # aligned, the answer's included: a threshold can be re-fitted and the answer re-ranked on
    # them exactly (bench/audio.py --calibrate)
    segments: tuple = ()


class AudioReferenceIndex:
    """faiss inner-product index over reference windows, plus each track's window grid."""

    def __init__(self, spec: AudioDescriptorSpec) -> None:
        import faiss

        self.spec = spec
        self._index = faiss.IndexFlatIP(spec.dims)
        self.tracks: list[str] = []
        self._track_of: list[np.ndarray] = []
        self._slot_of: list[np.ndarray] = []
        self._row_of_slot: list[np.ndarray] = []  # per track: slot -> global row, -1 = none
        self._vectors: list[np.ndarray] = []
        self._typ: list[np.ndarray | None] = []  # per track: windows' typicality to the cohort
        self._cache = None
        from copytrace.models.audio_cohort import load_cohort

        self.cohort = load_cohort(spec)

    def add(self, track: str, starts_s: np.ndarray, vectors: np.ndarray) -> None:
        slots = np.round(np.asarray(starts_s) / self.spec.hop_s).astype(np.int64)
        if len(slots) and (np.any(np.diff(slots) <= 0) or slots[0] < 0):
            raise ValueError("reference windows must be on the index hop grid, in order")
        t = len(self.tracks)
        rows = np.full(int(slots[-1]) + 1 if len(slots) else 0, -1, dtype=np.int64)
        rows[slots] = self._index.ntotal + np.arange(len(slots))
        self.tracks.append(track)
        self._row_of_slot.append(rows)
        self._track_of.append(np.full(len(slots), t, dtype=np.int32))
        self._slot_of.append(slots.astype(np.int32))
        v = np.ascontiguousarray(vectors, dtype=np.float32)
        self._vectors.append(v)
        self._typ.append(self.cohort.typicality(v) if self.cohort is not None else None)
        self._index.add(v)
        self._cache = None

    @property
    def ntotal(self) -> int:
        return int(self._index.ntotal)

    def nbytes(self) -> int:
        """Bytes held per window: the float32 vector and its (track, slot) address."""
        return self.ntotal * (self.spec.dims * 4 + 8)

    def _tables(self):
        if self._cache is None:
            self._cache = (np.concatenate(self._track_of), np.concatenate(self._slot_of),
                           np.concatenate(self._vectors))
        return self._cache

    def _sims(self, ti: int, pos: np.ndarray, q: np.ndarray, allv: np.ndarray) -> np.ndarray:
        """Cosine of each query window with the reference window at slot ``pos`` (0 if none)."""
        rows_of = self._row_of_slot[ti]
        ok = (pos >= 0) & (pos < rows_of.size)
        rows = np.where(ok, rows_of[np.clip(pos, 0, max(rows_of.size - 1, 0))], -1) if rows_of.size else np.full(pos.shape, -1)
        out = np.zeros(len(q), dtype=np.float32)
        m = rows >= 0
        if m.any():
            out[m] = np.einsum("ij,ij->i", q[m], allv[rows[m]])
        return out

    def search(self, q_starts_s: np.ndarray, q_vectors: np.ndarray, k: int = 10,
               max_candidates: int = 48) -> AudioHit | None:
        """Best (track, offset) for one query, or None if the query has no windows."""
        if len(q_vectors) == 0 or self.ntotal == 0:
            return None
        track_of, slot_of, allv = self._tables()
        hop, qhop = self.spec.hop_s, self.spec.query_hop_s
        ratio = round(hop / qhop)
        q = np.ascontiguousarray(q_vectors, np.float32)
        q_idx = np.round(np.asarray(q_starts_s) / qhop).astype(np.int64)
        sims, rows = self._index.search(q, k)
        valid = rows >= 0
        t = track_of[rows[valid]]
        off = slot_of[rows[valid]].astype(np.int64) * ratio - np.repeat(q_idx, k)[valid.ravel()]
        votes: dict[tuple[int, int], float] = {}
        for ti, oi, s in zip(t.tolist(), off.tolist(), sims[valid].tolist()):
            votes[(ti, oi)] = votes.get((ti, oi), 0.0) + s
        cands = sorted(votes, key=votes.get, reverse=True)[:max_candidates]
        n = len(q)

        def coarse(ti: int, oi: int) -> float:
            pos = np.floor((q_idx + oi) / ratio + 0.5).astype(np.int64)  # nearest ref slot
            return float(self._sims(ti, pos, q, allv).sum() / n)

        def on_grid(ti: int, oi: int) -> float:
            p = q_idx + oi
            g = p % ratio == 0
            if not g.any():
                return -1.0
            return float(self._sims(ti, p[g] // ratio, q[g], allv).mean())

        scored = [(coarse(ti, oi), ti, oi) for ti, oi in cands]
        raw, ti, oi = max(scored)
        # Fine offset: among the nearby offsets, the one whose on-grid windows agree best.
        near = {o: on_grid(ti, o) for o in range(oi - ratio // 2, oi + ratio // 2 + 1)}
        oi = max(near, key=near.get)
        s0, s_lo, s_hi = near[oi], on_grid(ti, oi - 1), on_grid(ti, oi + 1)
        frac, denom = 0.0, s_lo - 2 * s0 + s_hi
        if s_lo > -1 and s_hi > -1 and denom < 0:
            frac = float(np.clip(0.5 * (s_lo - s_hi) / denom, -0.5, 0.5))
        # Support: the share of query windows whose own nearest neighbours include the
        # reference window this alignment puts them on.
        slot_want = np.floor((q_idx + oi) / ratio + 0.5).astype(np.int64)
        nb_track = track_of[np.maximum(rows, 0)]
        nb_slot = slot_of[np.maximum(rows, 0)]
        agree = valid & (nb_track == ti) & (np.abs(nb_slot - slot_want[:, None]) <= 0)
        support = float(agree.any(1).mean())
        adj = raw - self.spec.length_penalty / np.sqrt(n)
        return AudioHit(self.tracks[ti], (oi + frac) * qhop, float(adj), raw, n,
                        float(self.spec.score(adj)), support)


class LibraryIndex:
    """The references in a Library of their own (a temporary folder), registered with
    ``Library.add_descriptors``; a query is matched by the Library's audio signal, and every
    segment it aligned (its ``AudioAlignment``: mean cosine, windows, similarity) is kept."""

    def __init__(self, spec, threads: int) -> None:
        from copytrace.engine import EngineConfig, Library

        self._tmp = tempfile.TemporaryDirectory(prefix="bench-audio-")
        # The entry as given (--no-cohort / --cohort-file edit it), weights where they lie.
        models = Path(self._tmp.name) / "models"
        models.mkdir()
        (models / f"{spec.name}.json").write_text(
            json.dumps({**spec.to_json(), "directory": spec.directory}))
        self.lib = Library.open(Path(self._tmp.name) / "library", EngineConfig(
            signals=("audio",), audio_model=spec.name, models_dir=str(models), threads=threads))
        self.signal = self.lib.signal("audio")
        self.spec = self.signal.spec
        self.window_s = self.spec.mel_config().window_s
        self.ntotal = 0

    def add(self, track: str, starts_s: np.ndarray, vectors: np.ndarray) -> None:
        from copytrace.types import Descriptors

        if len(vectors) == 0:
            return  # no audible window: a Library registers no such work, and it matches nothing
        starts = np.asarray(starts_s, np.float64)
        d = Descriptors(np.asarray(vectors, np.float32), starts, starts + self.window_s,
                        self.spec.model_id, "audio")
        self.lib.add_descriptors(d, title=track, media_type="audio", flush=False)
        self.ntotal += len(d)

    def nbytes(self) -> int:
        """Bytes held per window: the float32 vector and its (work, row) address."""
        return self.ntotal * (self.spec.dims * 4 + 8)

    def search(self, q_starts_s: np.ndarray, q_vectors: np.ndarray):
        """The Library's answer for one query's windows: its best-scoring aligned segment, with
        every segment aligned against every candidate recording."""
        from copytrace.media.probe import MediaInfo
        from copytrace.signals.base import Query
        from copytrace.types import Descriptors

        if len(q_vectors) == 0 or self.ntotal == 0:
            return None
        starts = np.asarray(q_starts_s, np.float64)
        d = Descriptors(np.asarray(q_vectors, np.float32), starts, starts + self.window_s,
                        self.spec.model_id, "audio")
        query = Query(MediaInfo("", "audio", "", ""), d)
        self.signal.find(query, top_k=self.lib.config.temporal_candidates)
        found, raw = None, []
        for work_id, alignments in query.cache.get("alignments", {}).items():
            track = self.lib.get(work_id).title
            for al in alignments:
                seg = al.segment
                raw.append((round(al.mean_cosine, 5), al.n_windows, track,
                            round(seg.ref_start_s - seg.query_start_s, 4)))
                if found is None or seg.score > found[1].segment.score:
                    found = (track, al)
        if found is None:
            return None
        track, al = found
        seg = al.segment
        return AudioHit(track, seg.ref_start_s - seg.query_start_s, al.similarity, al.mean_cosine,
                        al.n_windows, float(self.spec.score(seg.score)), segments=tuple(raw))

    def close(self) -> None:
        self.lib.close()
        self._tmp.cleanup()

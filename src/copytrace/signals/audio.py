"""The audio signal: recordings and videos' soundtracks, described by the audio model.

Windows of ``window_s`` at the entry's hop (a query at its finer ``query_hop_s``, so some query
window lies close to every reference window whatever the offset); near-silent windows are
dropped. Matching normalises each window pair by how typical both windows are of music in
general (the model's cohort, ``models/audio_cohort.py``) and aligns them by offset
(``align/offset.py``), whose segment scores are already calibrated and weighed by evidence.
"""
from __future__ import annotations

import numpy as np

from copytrace.config import DEFAULT_MIN_SCORE
from copytrace.errors import MediaError
from copytrace.signals.base import Candidate, Query, Signal, remember
from copytrace.store.catalog import WindowStats
from copytrace.types import Descriptors, Match, Work


class AudioSignal(Signal):
    name = "audio"
    media_types = ("audio", "video")

    def __init__(self, config, store) -> None:
        super().__init__(config, store)
        self._spec = None
        self._encoder = None
        self._cohort = None  # (cohort or None,) once loaded
        self._ref_typ: dict[str, np.ndarray] = {}  # work id -> windows' typicality

    # -- models -----------------------------------------------------------------------------
    @property
    def spec(self):
        if self._spec is None:
            from copytrace.models.audio_spec import get_audio_spec

            self._spec = get_audio_spec(self.config.audio_model, self.config.models_path)
        return self._spec

    @property
    def encoder(self):
        if self._encoder is None:
            from copytrace.runtime import resolve_precision
            from copytrace.runtime.audio import AudioEncoder

            # Audio runs on OpenVINO when asked, else on ONNX Runtime (no TensorRT/CUDA build).
            backend = self.config.backend if self.config.backend == "openvino" else "onnxruntime"
            self._encoder = AudioEncoder(self.spec, backend, self.config.threads,
                                         precision=resolve_precision(self.spec,
                                                                     self.config.precision))
        return self._encoder

    @property
    def cohort(self):
        """The audio model's typicality cohort (models/audio_cohort.py), or None."""
        if self._cohort is None:
            from copytrace.models.audio_cohort import load_cohort

            self._cohort = (load_cohort(self.spec),)
        return self._cohort[0]

    def aligner(self):
        """The configured audio aligner; window pairs below the entry's calibrated minimum
        similarity do not enter it."""
        from copytrace.align.base import get_aligner, min_similarity_config

        name = self.config.audio_aligner
        return get_aligner(name, min_similarity_config(name, self.spec.aligner_min_similarity))

    # -- describe ---------------------------------------------------------------------------
    def describes(self, media) -> bool:
        return media.media_type == "audio" or (
            media.media_type == "video" and self.config.audio and media.has_audio)

    def required(self, media) -> bool:
        return media.media_type == "audio"  # a silent soundtrack: the pictures stand alone

    def describe(self, media, for_query: bool) -> Descriptors | None:
        """Audio descriptors; a recording with no audible window is an error, or None when
        not ``required`` (a video's silent soundtrack)."""
        spec, path, required = self.spec, media.path, self.required(media)
        hop_s = spec.query_hop_s if for_query else spec.hop_s
        starts, ends, vectors = self.encoder.embed_file(path, hop_s=hop_s)
        if len(vectors) == 0:
            # Shorter than one window: a query may still be matched on one padded window.
            from copytrace.media.audio import load_audio

            samples = load_audio(path, spec.sample_rate, max_s=spec.window_s + 0.5)
            if samples.size >= round(spec.window_s * spec.sample_rate) or samples.size == 0:
                if not required:
                    return None
                raise MediaError(path, f"no audible sound: every {spec.window_s:.2f} s window "
                                 f"is below {spec.silence_dbfs:g} dBFS (a silent recording)")
            if not for_query:
                raise MediaError(path, f"audio shorter than one {spec.window_s:.2f} s window "
                                 f"({samples.size / spec.sample_rate:.2f} s)")
            starts, ends, vectors = self.encoder.embed_windows(samples, spec.sample_rate, hop_s)
            if len(vectors) == 0:
                if not required:
                    return None
                raise MediaError(path, f"no audible sound in its "
                                 f"{samples.size / spec.sample_rate:.2f} s")
        return Descriptors(np.asarray(vectors, np.float32), np.asarray(starts, np.float64),
                           np.asarray(ends, np.float64), spec.model_id, self.name)

    def window_stats(self, d: Descriptors) -> list[WindowStats]:
        """The windows' typicality, stored so that no query pays for it."""
        if not len(d) or self.cohort is None:
            return []
        return [WindowStats(self.name, "typicality", self.cohort.key,
                            self.cohort.typicality(d.vectors))]

    def reference_typicality(self, work_id: str, vectors: np.ndarray) -> np.ndarray | None:
        """A registered recording's windows' typicality: stored at registration, or (for works
        registered before, or with another cohort) computed on first use; kept either way."""
        cohort = self.cohort
        if cohort is None:
            return None

        def compute():
            typ = self.store.catalog.window_stats(work_id, self.name, "typicality", cohort.key)
            return cohort.typicality(vectors) if typ is None or len(typ) != len(vectors) else typ

        return remember(self._ref_typ, work_id, compute)

    # -- match ------------------------------------------------------------------------------
    def find(self, query: Query, top_k: int) -> list[Match]:
        if self.cohort is not None:
            query.cache["typicality"] = self.cohort.typicality(query.descriptors.vectors)
        return super().find(query, top_k)

    def match(self, query: Query, work: Work, cand: Candidate) -> Match | None:
        from copytrace.align.offset import audio_alignments

        d, spec = query.descriptors, self.spec
        ref = self.store.catalog.descriptors(work.work_id, self.name)
        # Aligned even when the query is one window (shorter than ~1.1 s): the threshold is
        # calibrated on the aligner's statistic (cohort-normalised, length penalty) at every
        # query length, a single window's included (bench/audio.py). Segment scores are already
        # calibrated and weighed by their evidence; the alignments (mean cosine, windows) stay
        # in the query's cache for whoever asks (bench/audio.py refits the threshold on them).
        found = audio_alignments(self.aligner(), d.vectors, d.starts_s, ref.vectors,
                                 ref.starts_s, spec, query.cache.get("typicality"),
                                 self.reference_typicality(work.work_id, ref.vectors))
        query.cache.setdefault("alignments", {})[work.work_id] = found
        segments = [a.segment for a in found]
        # A long query holds up to one aligned stretch per 15 s (align/offset.py); when some
        # reach the default threshold, the chance stretches beside them are not evidence.
        strong = [s for s in segments if spec.score(s.score) >= DEFAULT_MIN_SCORE]
        segments = strong or segments
        if not segments:
            # No alignment: the best window pair is the evidence.
            return self.make_match(work, spec.score(cand.similarity), cand.similarity,
                                   [self.best_row_segment(query, ref, cand)])
        return self.timed_match(work, segments, spec)

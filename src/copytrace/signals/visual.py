"""The visual signal: still images and video frames, described by the image model.

A still image is one row (start = end = 0); a video is its frames sampled at
``EngineConfig.video_fps`` (``describe_video_frames`` in ``signals/frames.py``), a query's
frames with partial views. Matching a timed query aligns its frames with a candidate's (the
aligner named by ``EngineConfig.aligner``, its minimum similarity from the registry entry),
normalises by the frame cohort when the model ships one, drops overlapping segments and refines
the boundaries of reported ones at the native frame rate. A still-image query's candidates get
local verification (``signals/_verify.py``).
"""
from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, replace

import numpy as np

from copytrace.config import DEFAULT_MIN_SCORE
from copytrace.errors import MediaError
from copytrace.signals.base import Candidate, Query, Signal, remember
from copytrace.signals.frames import (
    describe_video_frames,
    found_through_views,
    searched_vectors,
    suppress_query_overlaps,
)
from copytrace.store.catalog import WindowStats
from copytrace.types import Descriptors, Match, Work

log = logging.getLogger(__name__)


class VisualSignal(Signal):
    name = "visual"
    media_types = ("image", "video")

    def __init__(self, config, store) -> None:
        super().__init__(config, store)
        self._spec = None
        self._encoder = None
        self._frame_cohort = None  # (cohort or None,) once loaded
        self._ref_frame_typ: dict[str, np.ndarray] = {}  # work id -> frames' typicality
        self._verifier = None

    # -- models -----------------------------------------------------------------------------
    @property
    def spec(self):
        if self._spec is None:
            from copytrace.models.registry import get_spec

            self._spec = get_spec(self.config.image_model, self.config.models_path)
        return self._spec

    @property
    def encoder(self):
        if self._encoder is None:
            from copytrace.runtime import load_encoder, resolve_precision

            precision = resolve_precision(self.spec, self.config.precision,
                                          self.config.backend)
            self._encoder = load_encoder(self.spec, self.config.backend, precision,
                                         self.config.threads)
        return self._encoder

    @property
    def frame_cohort(self):
        """The image model's frame cohort (models/frame_cohort.py), or None."""
        if self._frame_cohort is None:
            from copytrace.models.frame_cohort import load_frame_cohort

            self._frame_cohort = (load_frame_cohort(self.spec),)
        return self._frame_cohort[0]

    @property
    def verifier(self):
        if self._verifier is None:
            from copytrace.signals._verify import ImageVerifier

            self._verifier = ImageVerifier(self.spec, self.config.image_limits,
                                           self.config.verify_top)
        return self._verifier

    def aligner(self):
        """The configured aligner; matches below the descriptor's calibrated minimum
        similarity do not enter it, whichever it is."""
        from copytrace.align.base import get_aligner, min_similarity_config

        name = self.config.aligner
        return get_aligner(name, min_similarity_config(name, self.spec.aligner_min_similarity))

    # -- describe ---------------------------------------------------------------------------
    def describe(self, media, for_query: bool) -> Descriptors:
        if media.media_type == "image":
            from copytrace.media.image import load_image

            h, w = self.spec.input_size
            image = load_image(media.path, self.config.image_limits, draft_size=2 * max(h, w))
            zero = np.zeros(1, np.float64)
            return Descriptors(self.encoder.encode_images([image]), zero, zero,
                               self.spec.model_id, self.name)
        cfg = self.config
        fractions = (cfg.query_corner_views, cfg.query_centre_view) if for_query else (0.0, 0.0)
        needs_views = None
        if for_query and any(fractions) and not cfg.query_views_all_frames:
            needs_views = self._unmatched_frames
        desc, _ = describe_video_frames(
            media.path, self.encoder.encode_images, self.spec.model_id, self.spec.dims,
            fps=cfg.video_fps, max_side=2 * max(self.spec.input_size), view_fractions=fractions,
            needs_views=needs_views, announced_s=media.duration_s, info=media.video,
        )
        return desc

    def _unmatched_frames(self, vectors: np.ndarray) -> np.ndarray:
        """Mask of frames whose nearest registered frame is below the calibrated similarity."""
        if self.store.catalog.signals().get(self.name, set()) - {self.spec.model_id}:
            # Another model's library: the query fails with a clear error once described.
            return np.ones(len(vectors), dtype=bool)
        sims, _, _ = self.store.search(self.name, vectors, 1)
        if sims.shape[1] == 0:
            return np.ones(len(vectors), dtype=bool)
        return sims[:, 0] < self.spec.threshold_similarity

    def window_stats(self, d: Descriptors) -> list[WindowStats]:
        """A video's frames' typicality and detail, stored so that no query pays for them."""
        if len(d) <= 1:
            return []
        out = []
        if self.frame_cohort is not None:
            out.append(WindowStats(self.name, "typicality", self.frame_cohort.key,
                                   self.frame_cohort.typicality(d.vectors)))
        if d.detail is not None:
            from copytrace.models.frame_cohort import DETAIL_KEY

            out.append(WindowStats(self.name, "detail", DETAIL_KEY,
                                   np.asarray(d.detail, np.float32)))
        return out

    def _reference_typicality(self, work_id: str, vectors: np.ndarray) -> np.ndarray:
        """A registered video's frames' typicality: stored at registration, else computed on
        first use; kept either way."""
        cohort = self.frame_cohort

        def compute():
            typ = self.store.catalog.window_stats(work_id, self.name, "typicality", cohort.key)
            return cohort.typicality(vectors) if typ is None or len(typ) != len(vectors) else typ

        return remember(self._ref_frame_typ, work_id, compute)

    # -- match ------------------------------------------------------------------------------
    def searched_vectors(self, d: Descriptors):
        return searched_vectors(d)

    def find(self, query: Query, top_k: int) -> list[Match]:
        try:
            return self._find(query, top_k)
        finally:
            for key in ("frame_readers", "verify_readers"):
                for reader in query.cache.pop(key, {}).values():
                    reader.close()

    def _find(self, query: Query, top_k: int) -> list[Match]:
        d = query.descriptors
        if (len(d) > 1 and self.config.video_frame_cohort and self.frame_cohort is not None):
            query.cache["typicality"] = self.frame_cohort.typicality(d.vectors)
        if len(d) > 1:
            return self._find_timed(query, top_k)
        if query.media.media_type != "image" or self.config.verify_top == 0:
            return super().find(query, top_k)
        # Verification may lift a candidate ranked below top_k by cosine: fetch enough.
        k = max(top_k, self.config.verify_top)
        whole = super().find(query, k)
        cache: dict = {}  # the decoded query and its local features, for both passes
        found = self.verifier.rescore(query.media.path, whole, cache=cache)
        if (self.config.query_regions and query.media.path
                and not any(m.score >= DEFAULT_MIN_SCORE for m in found)):
            found = self._find_in_regions(query, whole, found, k, cache)
        return found

    def _find_in_regions(self, query: Query, whole: list[Match], found: list[Match],
                         k: int, cache: dict) -> list[Match]:
        """Region proposals of a still query (``copytrace.verify.regions``) searched like the
        whole image; a registered still a region brings closer than the whole image did
        (``whole``: the whole image's candidates by cosine, ``found``: them verified) is
        verified against that region (and the whole query) and reported with its box."""
        from copytrace.media.image import load_image
        from copytrace.verify.regions import crop_regions, propose_regions

        if "image" not in cache:
            cache["image"] = load_image(query.media.path, self.config.image_limits)
        image = cache["image"]
        boxes = propose_regions(image)
        if not boxes:
            return found
        sims, work_ids, _ = self.store.search(self.name, self.encoder.encode_images(crop_regions(image, boxes)), k)
        whole_cos = {m.work_id: m.similarity for m in whole}
        region_of: dict[str, tuple[float, tuple[int, int, int, int]]] = {}
        for r, box in enumerate(boxes):
            for s, w in zip(sims[r].tolist(), work_ids[r].tolist()):
                if w is None:
                    continue
                if s > max(whole_cos.get(w, -2.0), region_of.get(w, (-2.0,))[0]):
                    region_of[w] = (s, box)
        if not region_of:
            return found
        works = {w: self.store.catalog.get(w) for w in region_of}
        # Best box cosine first: the verifier checks the first ``verify_top`` of them.
        brought = [self.make_match(works[w], self.spec.score(s), s)
                   for w, (s, _) in sorted(region_of.items(), key=lambda kv: -kv[1][0])
                   if works[w].media_type == "image"]  # a region against video frames: not here
        boxes_of = {w: b for w, (_, b) in region_of.items()}
        # The whole query's cosine with each: what a box that its verification does not
        # confirm leaves the match (signals/_verify.py).
        q = query.descriptors.vectors[0]
        for m in brought:
            if m.work_id not in whole_cos:
                ref = self.store.catalog.descriptors(m.work_id, self.name)
                whole_cos[m.work_id] = float(np.max(ref.vectors @ q)) if ref is not None and len(ref) else -1.0
        rescored = self.verifier.rescore(query.media.path, brought, boxes_of,
                                         whole_similarity=whole_cos, cache=cache)
        merged = {m.work_id: m for m in found}
        for m in rescored:
            if m.work_id not in merged or m.score > merged[m.work_id].score:
                merged[m.work_id] = m
        return sorted(merged.values(), key=lambda m: -m.score)[:k]

    def match(self, query: Query, work: Work, cand: Candidate) -> Match | None:
        found = self._align(query, work, cand)
        return self._report(query, found) if isinstance(found, _Aligned) else found

    def _find_timed(self, query: Query, top_k: int) -> list[Match]:
        """A video query: every candidate aligned first, so that segments another work explains
        as well can be confirmed (``_confirm_distinct``) before any is refined."""
        found = [self._align(query, self.store.catalog.get(c.work_id), c)
                 for c in self.candidates(query, top_k)]
        self._confirm_distinct(query, [a for a in found if isinstance(a, _Aligned)])
        out = []
        for a in found:
            if isinstance(a, _Aligned):
                a = self._report(query, a) if a.segments else None
            if a is not None:
                out.append(a)
        return out

    def _align(self, query: Query, work: Work, cand: Candidate) -> Match | _Aligned | None:
        """A candidate's aligned segments (``_Aligned``), or its match when there is nothing to
        align (a still), or None (no informative evidence)."""
        d = query.descriptors
        spec = self.spec
        if len(d) == 1 and work.media_type == "image":
            return self.make_match(work, spec.score(cand.similarity), cand.similarity)
        ref = self.store.catalog.descriptors(work.work_id, self.name)
        if len(d) == 1 or len(ref) == 1:
            # A still against a timed work (or the reverse): the best frame is the evidence.
            return self.make_match(work, spec.score(cand.similarity), cand.similarity,
                                   [self.best_row_segment(query, ref, cand)])
        from copytrace.align.base import best_view_similarity, similarity_matrix

        matrix = best_view_similarity(d.vectors, d.views, ref.vectors)
        whole = similarity_matrix(d.vectors, ref.vectors) if d.views is not None else matrix
        viewed = matrix
        q_typ = query.cache.get("typicality")
        cohort = self.frame_cohort if q_typ is not None else None
        if cohort is not None:
            # Evidence from informative frames only, relative to how typical they are.
            from copytrace.models.frame_cohort import DETAIL_KEY

            r_detail = self.store.catalog.window_stats(work.work_id, self.name, "detail",
                                                       DETAIL_KEY)
            if r_detail is not None and len(r_detail) != len(ref):
                r_detail = None
            matrix = cohort.normalise(matrix, q_typ,
                                      self._reference_typicality(work.work_id, ref.vectors),
                                      d.detail, r_detail)
            spec = cohort.spec
        segments = suppress_query_overlaps(
            self.aligner().align(matrix, d.starts_s, ref.starts_s),
            self.config.video_max_query_overlap,
        )
        if cohort is not None:
            min_sim = self.spec.threshold_similarity
            segments = [s for s in segments
                        if cohort.enough_evidence(s, matrix, d.starts_s, ref.starts_s, min_sim)]
            if not segments:
                return None  # no informative evidence: not a candidate at all
        if not segments:
            return self.make_match(work, spec.score(cand.similarity), cand.similarity,
                                   [self.best_row_segment(query, ref, cand)])
        return _Aligned(work, segments, spec, ref, matrix, whole, viewed)

    def _report(self, query: Query, a: _Aligned) -> Match:
        """The match of aligned segments, those that will be reported refined."""
        segments = a.segments
        if self.config.refine_boundaries and a.work.media_type == "video" and query.media.path:
            # Only segments that will be reported as matches are worth the extra decoding.
            d = query.descriptors
            segments = [
                self._refine(query, s, a.work.path,
                             found_through_views(s, d, a.ref, a.whole, a.viewed))
                if a.spec.score(s.score) >= DEFAULT_MIN_SCORE else s
                for s in segments
            ]
        return self.timed_match(a.work, segments, a.spec)

    # -- second opinion of local features -------------------------------------------------
    def _confirm_distinct(self, query: Query, aligned: list[_Aligned]) -> None:
        """Local features decide where the global descriptor cannot.

        Some kinds of footage look alike to a global descriptor whatever they show (screens of
        text in one layout and colour scheme: two documents meet at cosines as high as a
        copy's, and the frame cohort rates such frames typical, so even true copies fall under
        the video threshold). Two cases get a second opinion from keypoints on a segment's best
        frame pairs (a query frame and its matched reference frame agreeing on one transform,
        with at least ``verify_min_inliers`` inliers: the frame cohort entry's, fitted on
        innocent pairs of the negatives corpus's calibration split; 0 turns both off):

        - a reportable segment whose query frames also match another candidate work above the
          video threshold and within ``distinct_margin`` of this one is kept only when
          confirmed (a copy matches its source clearly better than any look-alike; keypoints
          can fail on a real copy of soft footage, so they are asked only when needed);
        - a segment under the video threshold whose plain cosines reach the still-image
          threshold is reported when confirmed, scored as a verified still is (its cosine plus
          the verifier's inlier bonus, on the verifier's calibrated threshold).

        A copy of footage no other work resembles, clearly above or below the threshold, is
        never checked.
        """
        cohort = self.frame_cohort
        if cohort is None or cohort.spec.verify_min_inliers <= 0 or not aligned:
            return
        if not query.media.path:
            return  # nothing to look at: descriptors only
        d = query.descriptors
        min_inliers = cohort.spec.verify_min_inliers
        row_best = np.stack([a.matrix.max(axis=1) for a in aligned])  # [works, query frames]
        for i, a in enumerate(aligned):
            if a.spec is not cohort.spec or a.work.media_type != "video":
                continue
            others = (np.delete(row_best, i, axis=0).max(axis=0) if len(aligned) > 1
                      else np.full(row_best.shape[1], -1.0, np.float32))
            kept, below = [], []
            for seg in a.segments:
                if a.spec.score(seg.score) < DEFAULT_MIN_SCORE:
                    below.append(seg)
                elif (_ambiguous(seg, d.starts_s, row_best[i], others,
                                 cohort.spec.threshold_similarity, cohort.spec.distinct_margin)
                      and self._inliers(query, a, seg, min_inliers) < min_inliers):
                    log.info("segment %.1f-%.1f s of %s dropped: another work matches it too "
                             "and local features do not confirm it", seg.query_start_s,
                             seg.query_end_s, a.work.title)
                else:
                    kept.append(seg)
            # Under the threshold, best cosine first; a work whose best such segment is not
            # confirmed gets no more checks (one check per unconfirmed work bounds the cost).
            raw = {id(s): _box_similarity(s, d.starts_s, a.ref.starts_s, a.viewed) for s in below}
            below.sort(key=lambda s: -raw[id(s)])
            for k, seg in enumerate(below):
                looked = self._second_look(query, a, seg, raw[id(seg)], cohort.spec)
                kept.append(looked)
                if looked is seg:
                    kept.extend(below[k + 1:])
                    break
            a.segments = kept

    def _second_look(self, query: Query, a: _Aligned, seg, raw: float, cohort_spec):
        """A segment under the video threshold (``raw``: its plain cosine), re-scored when that
        reaches the still-image threshold and keypoints confirm it (see
        ``_confirm_distinct``); else the segment itself."""
        from copytrace.signals._verify import verified_match_score
        from copytrace.verify import verified_score

        if raw < self.spec.threshold_similarity:
            return seg
        inliers = self._inliers(query, a, seg, cohort_spec.verify_min_inliers)
        if inliers < cohort_spec.verify_min_inliers:
            return seg
        cfg = self.verifier.local.cfg
        p = verified_match_score(self.spec, verified_score(raw, inliers, cfg), cfg.threshold_score)
        p = min(max(p, 1e-9), 1 - 1e-9)
        # The similarity that the video scale scores as p: one score, one meaning.
        sim = cohort_spec.threshold_similarity + math.log(p / (1 - p)) / cohort_spec.score_slope
        log.info("segment %.1f-%.1f s of %s confirmed by %d inliers (cosine %.3f)",
                 seg.query_start_s, seg.query_end_s, a.work.title, inliers, raw)
        return replace(seg, score=max(seg.score, float(sim)))

    def _inliers(self, query: Query, a: _Aligned, seg, enough: int) -> int:
        """The most keypoint inliers among ``seg``'s best frame pairs (``VERIFY_PAIRS``; stops
        at ``enough``). A reference file gone or unreadable: ``enough`` (the global evidence
        stands)."""
        d = query.descriptors
        if not os.path.exists(a.work.path):
            return enough
        rows, cols = _segment_cells(seg, d.starts_s, a.ref.starts_s)
        if not len(rows) or not len(cols):
            return 0
        sub = a.matrix[np.ix_(rows, cols)]
        readers = query.cache.setdefault("verify_readers", {})
        for path in (query.media.path, a.work.path):
            if path not in readers:
                from copytrace.media.video import WindowReader

                readers[path] = WindowReader(path, VERIFY_SIDE)
        local = self.verifier.local
        features = query.cache.setdefault("verify_features", {})  # (path, time) -> features

        def features_at(path: str, t: float, is_query: bool):
            if (path, t) not in features:
                frames = readers[path](t, t + 0.1, VERIFY_SIDE)
                features[path, t] = local.features(frames[0][1], query=is_query) if frames else None
            return features[path, t]

        best = 0
        for r in np.argsort(-sub.max(axis=1))[:VERIFY_PAIRS]:
            tq, tr = float(d.starts_s[rows[r]]), float(a.ref.starts_s[cols[sub[r].argmax()]])
            try:
                qf = features_at(query.media.path, tq, True)
                rf = features_at(a.work.path, tr, False)
            except MediaError as e:
                log.warning("segment verification skipped: %s", e)
                return enough
            if qf is not None and rf is not None:
                best = max(best, local.verify_features(qf, rf).inliers)
            if best >= enough:
                break
        return best

    # -- boundary refinement ----------------------------------------------------------------
    def _embed_frames(self, images: list) -> np.ndarray:
        from copytrace.media.video import crop_uniform_borders

        return self.encoder.encode_images([crop_uniform_borders(im) for im in images])

    def _embed_frame_views(self, images: list) -> np.ndarray:
        """[N, V, D]: each frame whole, then its query views (as ``describe`` gives them)."""
        from copytrace.media.video import crop_uniform_borders, view_crops

        fractions = (self.config.query_corner_views, self.config.query_centre_view)
        frames = [crop_uniform_borders(im) for im in images]
        crops = [c for im in frames for c in [im, *view_crops(im, *fractions)]]
        return self.encoder.encode_images(crops).reshape(len(frames), len(crops) // len(frames), -1)

    def _refine(self, query: Query, segment, ref_path: str, through_views: bool = False):
        """Native-rate boundaries of a segment. The windows' frames and descriptors are kept for
        the rest of the query (``query.cache``): a query's segments often share windows."""
        from copytrace.align.refine import RefineConfig, refine_boundaries
        from copytrace.media.video import WindowReader

        if not os.path.exists(ref_path):
            return segment  # the registered file moved: keep the coarse boundaries
        cfg = RefineConfig()
        readers = query.cache.setdefault("frame_readers", {})
        for path in (query.media.path, ref_path):
            if path not in readers:
                readers[path] = WindowReader(path, cfg.max_side)
        embed = query.cache.setdefault("refine_embed", _MemoEmbed(self._embed_frames))
        views = query.cache.setdefault("refine_embed_views", _MemoEmbed(self._embed_frame_views))
        try:
            return refine_boundaries(segment, readers[query.media.path], readers[ref_path], embed,
                                     cfg, views if through_views else None)
        except MediaError as e:
            log.warning("boundary refinement skipped: %s", e)
            return segment


# Segment confirmation by local features: frames decoded at the verifier's working size
# (VerifyConfig.max_side, 512: text stays legible), the best this many frame pairs tried.
VERIFY_SIDE = 512
VERIFY_PAIRS = 2


@dataclass
class _Aligned:
    """One candidate work's aligned segments before they are reported (``VisualSignal._align``):
    ``matrix`` is the similarity the aligner read, ``whole`` / ``viewed`` the cosines without /
    with query views."""

    work: Work
    segments: list
    spec: object
    ref: Descriptors
    matrix: np.ndarray
    whole: np.ndarray
    viewed: np.ndarray


def _segment_cells(seg, q_times_s: np.ndarray, r_times_s: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray]:
    """The query rows and reference columns of the frames inside a segment's two spans."""
    rows = np.flatnonzero((q_times_s >= seg.query_start_s) & (q_times_s < seg.query_end_s))
    cols = np.flatnonzero((r_times_s >= seg.ref_start_s - 1e-6) & (r_times_s < seg.ref_end_s))
    return rows, cols


def _box_similarity(seg, q_times_s: np.ndarray, r_times_s: np.ndarray, sim: np.ndarray) -> float:
    """Mean over the segment's query frames of their best ``sim`` inside its reference span."""
    rows, cols = _segment_cells(seg, q_times_s, r_times_s)
    if not len(rows) or not len(cols):
        return -1.0
    return float(sim[np.ix_(rows, cols)].max(axis=1).mean())


def _ambiguous(seg, q_times_s: np.ndarray, best: np.ndarray, others: np.ndarray,
               min_sim: float, margin: float) -> bool:
    """Whether the segment's informative query frames (``best``: their best similarity to this
    work) also match another work (``others``: their best similarity to any other candidate)
    at ``min_sim`` or more and within ``margin`` of this one, in the median."""
    rows = np.flatnonzero((q_times_s >= seg.query_start_s) & (q_times_s < seg.query_end_s)
                          & (best > -1))
    if not len(rows):
        return False
    return (float(np.median(others[rows])) >= min_sim
            and float(np.median(others[rows] - best[rows])) > -margin)


class _MemoEmbed:
    """An embed function that describes each image object once (``WindowReader`` hands out
    the same object for the same frame); it keeps the images it saw alive, so one serves one
    query."""

    def __init__(self, embed) -> None:
        self.embed = embed
        self._seen: dict[int, tuple[object, np.ndarray]] = {}

    def __call__(self, images: list) -> np.ndarray:
        todo = list({id(im): im for im in images if id(im) not in self._seen}.values())
        if todo:
            for im, v in zip(todo, np.asarray(self.embed(todo))):
                self._seen[id(im)] = (im, v)
        if not images:
            return self.embed(images)
        return np.stack([self._seen[id(im)][1] for im in images])

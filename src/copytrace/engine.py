"""The Library: the only place where decode, describe, index, align and report meet.

    lib = copytrace.open("~/my-library")
    lib.add("poster.jpg", title="Poster")
    result = lib.query("suspect.png")
"""
from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from copytrace.config import EngineConfig
from copytrace.errors import CopytraceError, MediaError, NotMediaError, StoreError
from copytrace.media.probe import file_sha256, sniff
from copytrace.models.audio_spec import AudioDescriptorSpec, get_audio_spec
from copytrace.models.registry import DescriptorSpec, get_spec
from copytrace.store import Store
from copytrace.store.catalog import WindowStats
from copytrace.types import Descriptors, Match, QueryInfo, QueryResult, Work

log = logging.getLogger(__name__)

DEFAULT_MIN_SCORE = 0.5
VIDEO_BATCH = 32
FLUSH_EVERY_WORKS = 256
FLUSH_EVERY_S = 30.0


def default_db_path() -> Path:
    """``$COPYTRACE_DB``, else ``$XDG_DATA_HOME/copytrace``, else ``~/.local/share/copytrace``."""
    env = os.environ.get("COPYTRACE_DB")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "copytrace"


@dataclass(frozen=True)
class AddResult:
    path: str
    work: Work
    created: bool


def _utf8(text: str) -> str:
    """A title from a command line or a file name, storable as text (bytes that are not UTF-8
    become U+FFFD)."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def iter_media_paths(paths: Iterable[str]) -> Iterator[tuple[str, bool]]:
    """Expand folders recursively (sorted). Yields (path, named_explicitly).

    Inside folders, named pipes, sockets and devices are skipped without being opened (logged);
    a sub-folder that cannot be listed is yielded as explicit, so reading it reports why.
    Symbolic links to folders are not followed (no loops)."""
    for p in paths:
        if os.path.isdir(p):
            yield from _walk_folder(p)
        else:
            yield p, True


def _walk_folder(folder: str) -> Iterator[tuple[str, bool]]:
    from copytrace.media.probe import special_file_kind

    unreadable: list[str] = []
    for dirpath, dirnames, filenames in os.walk(folder, onerror=lambda e: unreadable.append(e.filename)):
        yield from ((d, True) for d in unreadable)
        unreadable.clear()
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            path = os.path.join(dirpath, name)
            try:
                special = special_file_kind(os.stat(path).st_mode)
            except OSError:
                special = None  # a broken link or a loop: reading it says which
            if special:
                log.info("skipping %s: %s", path, special)
                continue
            yield path, False
    yield from ((d, True) for d in unreadable)


def describe_video_frames(
    path: str,
    encode: Callable[[list], np.ndarray],
    model: str,
    dims: int,
    fps: float = 1.0,
    max_side: int = 320,
    crop_borders: bool = True,
    view_fractions: tuple[float, float] = (0.0, 0.0),
    needs_views: Callable[[np.ndarray], np.ndarray] | None = None,
    announced_s: float | None = None,
) -> tuple[Descriptors, float]:
    """Descriptors of a video's frames sampled at ``fps``, stamped with their real times.

    Letterbox bars and padding are cut before describing (re-uploads add them), and
    near-uniform frames (black leaders, fades) are left out of matching. ``view_fractions``
    (corners, centre; see ``view_crops``) adds partial views [N, V, D] to each frame, or only to
    the frames that ``needs_views(whole-frame vectors of a batch) -> bool mask`` picks (the
    others' views stay zero). Decoding streams: one batch of frames is in memory at a time. A
    truncated or corrupt file raises MediaError, so partial descriptors are never stored as
    complete. Returns (descriptors, duration_s).
    """
    from copytrace.media.video import crop_uniform_borders, is_flat_frame, iter_frames, view_crops
    from copytrace.models.frame_cohort import frame_detail

    n_views = 4 * (view_fractions[0] > 0) + (view_fractions[1] > 0)
    times: list[float] = []
    detail: list[float] = []
    parts: list[np.ndarray] = []
    view_parts: list[np.ndarray] = []
    batch: list = []

    def flush() -> None:
        vectors = np.asarray(encode(batch), np.float32)
        parts.append(vectors)
        if n_views:
            views = np.zeros((len(batch), n_views, vectors.shape[1]), np.float32)
            pick = np.ones(len(batch), bool) if needs_views is None else needs_views(vectors)
            rows = np.flatnonzero(pick)
            if len(rows):
                crops = [c for i in rows for c in view_crops(batch[i], *view_fractions)]
                views[rows] = np.asarray(encode(crops), np.float32).reshape(
                    len(rows), n_views, -1)
            view_parts.append(views)
        batch.clear()

    step = 1.0 / fps
    last_t = None
    for t, image in iter_frames(path, fps=fps, max_side=max_side):
        last_t = t
        if crop_borders:
            image = crop_uniform_borders(image)
        if is_flat_frame(image):
            continue
        times.append(t)
        detail.append(frame_detail(image))
        batch.append(image)
        if len(batch) == VIDEO_BATCH:
            flush()
    if batch:
        flush()
    if last_t is None:
        raise MediaError(path, "no decodable video frames")
    duration_s = float(announced_s) if announced_s else last_t + step
    starts = np.asarray(times, dtype=np.float64)
    # A frame stands for the time until the next sampled frame (or one step at most).
    ends = np.minimum(np.append(starts[1:], duration_s), starts + step)
    vectors = np.concatenate(parts) if parts else np.zeros((0, dims), np.float32)
    views = None
    if n_views:
        views = (np.concatenate(view_parts) if view_parts
                 else np.zeros((0, n_views, dims), np.float32))
    return Descriptors(vectors, starts, ends, model, "visual", views,
                       np.asarray(detail, np.float32)), duration_s


def _check_descriptors(d: Descriptors, spec, media_type: str) -> None:
    """Reject descriptors a library could not search correctly, saying why."""
    if media_type not in ("image", "video", "audio"):
        raise ValueError(f"media_type must be 'image', 'video' or 'audio', not {media_type!r}")
    if d.model != spec.model_id:
        raise ValueError(
            f"descriptors of model {d.model!r} cannot join a library that describes "
            f"{d.signal} with {spec.model_id!r}; describe the media with that model"
        )
    if d.views is not None:
        raise ValueError("descriptors with views are query descriptors; register whole frames")
    if len(d) == 0:
        raise ValueError("no descriptors: a work needs at least one")
    if d.vectors.shape[1] != spec.dims:
        raise ValueError(f"descriptors have {d.vectors.shape[1]} dims, {spec.model_id} has "
                         f"{spec.dims}")
    norms = np.linalg.norm(np.asarray(d.vectors, np.float64), axis=1)
    if not np.all(np.isfinite(norms)) or np.abs(norms - 1).max() > 1e-3:
        raise ValueError("descriptor rows must be finite and L2-normalised (norm 1)")
    if (np.diff(d.starts_s) < 0).any() or (d.ends_s < d.starts_s).any():
        raise ValueError("descriptor times must be sorted, each ending at or after its start")


# A segment whose frames match this much better through partial views than whole is a
# partial-frame copy (picture-in-picture): its boundaries are refined through the views too.
VIEW_GAIN = 0.05


def _found_through_views(seg, d: Descriptors, ref: Descriptors, whole: np.ndarray,
                         best: np.ndarray) -> bool:
    if d.views is None:
        return False
    rows = np.flatnonzero((d.starts_s >= seg.query_start_s) & (d.starts_s < seg.query_end_s))
    cols = np.flatnonzero((ref.starts_s >= seg.ref_start_s) & (ref.starts_s < seg.ref_end_s))
    if not len(rows) or not len(cols):
        return False
    gain = best[np.ix_(rows, cols)].max(axis=1) - whole[np.ix_(rows, cols)].max(axis=1)
    return float(gain.mean()) > VIEW_GAIN


def suppress_query_overlaps(segments: list, max_overlap: float) -> list:
    """Keep segments best score first, dropping one when more than ``max_overlap`` of its query
    span is already explained by kept segments of the same pair: a moment of the query shows
    one moment of a given reference, and repeated or static reference content otherwise yields
    extra boxes (each wrong on the reference axis)."""
    if max_overlap >= 1 or len(segments) < 2:
        return segments
    kept: list = []
    for s in sorted(segments, key=lambda s: -s.score):
        span = s.query_end_s - s.query_start_s
        covered = sum(max(0.0, min(s.query_end_s, k.query_end_s)
                          - max(s.query_start_s, k.query_start_s)) for k in kept)
        if span <= 0 or covered <= max_overlap * span:
            kept.append(s)
    return kept


def _searched_vectors(d: Descriptors) -> tuple[np.ndarray, np.ndarray]:
    """The vectors to look up for a query (whole frames, then the views computed) and the frame
    each one belongs to."""
    frame_of = np.arange(len(d))
    if d.views is None or d.views.shape[1] == 0:
        return d.vectors, frame_of
    nz = np.abs(d.views).sum(axis=2) > 0  # [N, V]
    rows, cols = np.nonzero(nz)
    return (np.concatenate([d.vectors, d.views[rows, cols]]),
            np.concatenate([frame_of, rows]))


class Library:
    """A registry of works on disk plus the descriptor models that search it."""

    def __init__(self, store: Store, config: EngineConfig) -> None:
        self.store = store
        self.config = config
        self._encoder = None
        self._image_spec: DescriptorSpec | None = None
        self._audio_encoder = None
        self._audio_spec: AudioDescriptorSpec | None = None
        self._verifier = None
        self._ref_features: dict[str, object] = {}  # work id -> LocalFeatures (bounded cache)
        self._audio_cohort = None  # (cohort or None,) once loaded
        self._ref_typ: dict[str, np.ndarray] = {}  # work id -> audio windows' typicality (bounded)
        self._frame_cohort = None  # (cohort or None,) once loaded
        self._ref_frame_typ: dict[str, np.ndarray] = {}  # work id -> frames' typicality (bounded)

    @classmethod
    def open(cls, db: str | os.PathLike | None = None, config: EngineConfig | None = None,
             create: bool = True) -> Library:
        """``create=False`` raises LibraryNotFoundError when ``db`` holds no library."""
        root = db if db is not None else default_db_path()
        config = config or EngineConfig()
        return cls(Store(root, create=create, index=config.index), config)

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Library:  # noqa: PYI034 - Self needs Python 3.11
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- models -----------------------------------------------------------------------------
    @property
    def _models_dir(self) -> Path | None:
        return Path(self.config.models_dir) if self.config.models_dir else None

    @property
    def image_spec(self) -> DescriptorSpec:
        if self._image_spec is None:
            self._image_spec = get_spec(self.config.image_model, self._models_dir)
        return self._image_spec

    @property
    def encoder(self):
        if self._encoder is None:
            from copytrace.runtime import load_encoder

            spec = self.image_spec
            precision = self.config.precision
            if precision == "auto":
                from copytrace.models.cpu import int8_exact

                # INT8 only where the CPU's int8 kernels are exact (models/cpu.py, issue 17)
                precision = "int8" if spec.int8_file and int8_exact() else "fp32"
            self._encoder = load_encoder(spec, self.config.backend, precision, self.config.threads)
        return self._encoder

    @property
    def audio_spec(self) -> AudioDescriptorSpec:
        if self._audio_spec is None:
            self._audio_spec = get_audio_spec(self.config.audio_model, self._models_dir)
        return self._audio_spec

    @property
    def audio_encoder(self):
        if self._audio_encoder is None:
            from copytrace.models.audio_encoder import load_audio_encoder

            backend = self.config.backend if self.config.backend == "openvino" else "onnxruntime"
            self._audio_encoder = load_audio_encoder(self.audio_spec, backend, self.config.threads,
                                                     self.config.precision)
        return self._audio_encoder

    @property
    def audio_cohort(self):
        """The audio model's typicality cohort (models/audio_cohort.py), or None."""
        if self._audio_cohort is None:
            from copytrace.models.audio_cohort import load_cohort

            self._audio_cohort = (load_cohort(self.audio_spec),)
        return self._audio_cohort[0]

    def _reference_typicality(self, work_id: str, vectors: np.ndarray) -> np.ndarray | None:
        """A registered recording's windows' typicality: stored at registration, or (for works
        registered before, or with another cohort) computed on first use; kept either way."""
        cohort = self.audio_cohort
        if cohort is None:
            return None
        if work_id not in self._ref_typ:
            if len(self._ref_typ) >= 4096:
                self._ref_typ.pop(next(iter(self._ref_typ)))
            typ = self.store.catalog.window_stats(work_id, "audio", "typicality", cohort.key)
            if typ is None or len(typ) != len(vectors):
                typ = cohort.typicality(vectors)
            self._ref_typ[work_id] = typ
        return self._ref_typ[work_id]

    @property
    def frame_cohort(self):
        """The image model's frame cohort (models/frame_cohort.py), or None."""
        if self._frame_cohort is None:
            from copytrace.models.frame_cohort import load_frame_cohort

            self._frame_cohort = (load_frame_cohort(self.image_spec),)
        return self._frame_cohort[0]

    def _reference_frame_typicality(self, work_id: str, vectors: np.ndarray) -> np.ndarray:
        """A registered video's frames' typicality: stored at registration, else computed on
        first use; kept either way."""
        cohort = self.frame_cohort
        if work_id not in self._ref_frame_typ:
            if len(self._ref_frame_typ) >= 4096:
                self._ref_frame_typ.pop(next(iter(self._ref_frame_typ)))
            typ = self.store.catalog.window_stats(work_id, "visual", "typicality", cohort.key)
            if typ is None or len(typ) != len(vectors):
                typ = cohort.typicality(vectors)
            self._ref_frame_typ[work_id] = typ
        return self._ref_frame_typ[work_id]

    def _window_stats(self, descriptors: list[Descriptors]) -> list[WindowStats]:
        """What is stored beside a new work's descriptors: its audio windows' and video
        frames' typicality, so that no query pays for it."""
        out = []
        for d in descriptors:
            if not len(d):
                continue
            if d.signal == "audio":
                cohort = self.audio_cohort
            elif d.signal == "visual" and len(d) > 1:
                cohort = self.frame_cohort
            else:
                continue
            if cohort is not None:
                out.append(WindowStats(d.signal, "typicality", cohort.key,
                                       cohort.typicality(d.vectors)))
            if d.signal == "visual" and d.detail is not None and len(d) > 1:
                from copytrace.models.frame_cohort import DETAIL_KEY

                out.append(WindowStats("visual", "detail", DETAIL_KEY,
                                       np.asarray(d.detail, np.float32)))
        return out

    def _spec_for(self, signal: str):
        return self.audio_spec if signal == "audio" else self.image_spec

    # -- describe ---------------------------------------------------------------------------
    def describe(
        self, path: str, media_type: str, for_query: bool = False
    ) -> tuple[list[Descriptors], float | None]:
        """Decode and describe a file. Returns (descriptors per signal, duration_s).

        Audio queries are described on a finer hop than references, so some query window lies
        close to every reference window whatever the offset.
        """
        if media_type == "image":
            from copytrace.media.image import load_image

            h, w = self.image_spec.input_size
            image = load_image(path, self.config.image_limits, draft_size=2 * max(h, w))
            vectors = self.encoder.encode_images([image])
            zero = np.zeros(1, np.float64)
            return [Descriptors(vectors, zero, zero, self.image_spec.model_id, "visual")], None
        if media_type == "video":
            from copytrace.media.video import probe_video

            info = probe_video(path)
            descriptors, duration_s = self._describe_video(path, info.duration_s, for_query)
            if self.config.audio and info.has_audio:
                soundtrack = self._describe_audio(path, for_query, required=False)
                if soundtrack is not None:  # a silent soundtrack: the pictures stand alone
                    descriptors.append(soundtrack)
            return descriptors, duration_s
        if media_type == "audio":
            from copytrace.media.audio import probe_audio

            duration_s = probe_audio(path).duration_s
            return [self._describe_audio(path, for_query)], duration_s
        if media_type == "text":
            raise NotMediaError(path, "content is plain text, not an image, video or audio file")
        raise MediaError(path, f"{media_type} files are not supported yet")

    def _describe_video(
        self, path: str, announced_s: float | None, for_query: bool = False
    ) -> tuple[list[Descriptors], float]:
        """Frame descriptors at ``video_fps`` (see ``describe_video_frames``); a query's frames
        also get their partial views (see ``EngineConfig``)."""
        cfg = self.config
        fractions = (cfg.query_corner_views, cfg.query_centre_view) if for_query else (0.0, 0.0)
        needs_views = None
        if for_query and any(fractions) and not cfg.query_views_all_frames:
            needs_views = self._unmatched_frames
        desc, duration_s = describe_video_frames(
            path, self.encoder.encode_images, self.image_spec.model_id, self.image_spec.dims,
            fps=cfg.video_fps, max_side=2 * max(self.image_spec.input_size),
            view_fractions=fractions, needs_views=needs_views, announced_s=announced_s,
        )
        return [desc], duration_s

    def _unmatched_frames(self, vectors: np.ndarray) -> np.ndarray:
        """Mask of frames whose nearest registered frame is below the calibrated similarity."""
        if self.store.catalog.signals().get("visual", set()) - {self.image_spec.model_id}:
            # Another model's library: the query fails with a clear error once described.
            return np.ones(len(vectors), dtype=bool)
        sims, _, _ = self.store.search("visual", vectors, 1)
        if sims.shape[1] == 0:
            return np.ones(len(vectors), dtype=bool)
        return sims[:, 0] < self.image_spec.threshold_similarity

    def _describe_audio(self, path: str, for_query: bool,
                        required: bool = True) -> Descriptors | None:
        """Audio descriptors; a recording with no audible window is an error, or None when
        not ``required`` (a video's silent soundtrack)."""
        spec = self.audio_spec
        hop_s = spec.query_hop_s if for_query else spec.hop_s
        starts, ends, vectors = self.audio_encoder.embed_file(path, hop_s=hop_s)
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
            starts, ends, vectors = self.audio_encoder.embed_windows(samples, spec.sample_rate, hop_s)
            if len(vectors) == 0:
                if not required:
                    return None
                raise MediaError(path, f"no audible sound in its "
                                 f"{samples.size / spec.sample_rate:.2f} s")
        return Descriptors(
            np.asarray(vectors, np.float32), np.asarray(starts, np.float64),
            np.asarray(ends, np.float64), spec.model_id, "audio",
        )

    # -- add --------------------------------------------------------------------------------
    def add(self, path: str, title: str | None = None) -> AddResult:
        result = self._add_one(path, title)
        if result.created:
            self.store.flush()
        return result

    def add_many(
        self,
        paths: Iterable[str],
        title: str | None = None,
        on_result: Callable[[str, AddResult | CopytraceError], None] | None = None,
    ) -> tuple[list[AddResult], list[CopytraceError]]:
        """Add files and folders (recursively). Bad files are reported and skipped.

        Inside folders, files whose content is not media at all are skipped silently (logged);
        files named explicitly always count.
        """
        added: list[AddResult] = []
        failed: list[CopytraceError] = []
        pending, last_flush = 0, time.monotonic()
        try:
            for path, explicit in iter_media_paths(paths):
                try:
                    res = self._add_one(path, title)
                except MediaError as e:
                    if not explicit and isinstance(e, NotMediaError):
                        log.info("skipping non-media file %s (%s)", path, e.cause)
                        continue
                    failed.append(e)
                    if on_result:
                        on_result(path, e)
                    continue
                added.append(res)
                pending += res.created
                if pending >= FLUSH_EVERY_WORKS or time.monotonic() - last_flush > FLUSH_EVERY_S:
                    self.store.flush()
                    pending, last_flush = 0, time.monotonic()
                if on_result:
                    on_result(path, res)
        finally:
            if pending:
                self.store.flush()
        return added, failed

    def _add_one(self, path: str, title: str | None) -> AddResult:
        sniffed = sniff(path)
        try:
            str(Path(path).resolve()).encode("utf-8")
        except UnicodeEncodeError:
            raise MediaError(path, "file name is not valid UTF-8 (the catalogue keeps names "
                             "as text); rename the file") from None
        sha = file_sha256(path)
        existing = self.store.catalog.find_sha(sha)
        if existing is not None:
            return AddResult(path, existing, False)
        descriptors, duration_s = self.describe(path, sniffed.media_type)
        work = Work(
            work_id=sha[:16],
            title=_utf8(title or Path(path).stem),
            path=str(Path(path).resolve()),
            media_type=sniffed.media_type,
            sha256=sha,
            duration_s=duration_s,
            added_at=time.time(),
            model=self._spec_for(descriptors[0].signal).model_id,
        )
        stored, created = self.store.add(work, descriptors, self._window_stats(descriptors))
        return AddResult(path, stored, created)

    def add_descriptors(
        self,
        descriptors: Descriptors,
        title: str,
        media_type: str = "video",
        duration_s: float | None = None,
        path: str = "",
        sha256: str | None = None,
        flush: bool = True,
    ) -> AddResult:
        """Register a work from descriptors computed elsewhere (another machine, a pipeline that
        already decoded the media, a migration), without its file.

        The descriptors must come from the model this library describes with (same id, same
        dims, L2-normalised rows, sorted times). ``path`` may name the work's media file (boundary
        refinement and image verification then use it) or stay empty. ``sha256`` identifies the
        work's content; by default it is the hash of the descriptors themselves, so adding the
        same descriptors twice registers one work. ``flush=False`` defers the index write, for
        bulk loads: call ``flush()`` once at the end (the catalogue is already durable).
        """
        _check_descriptors(descriptors, self._spec_for(descriptors.signal), media_type)
        if sha256 is None:
            h = hashlib.sha256()
            for part in (descriptors.model, descriptors.signal, media_type):
                h.update(part.encode() + b"\0")
            for arr in (descriptors.starts_s, descriptors.ends_s, descriptors.vectors):
                h.update(np.ascontiguousarray(arr).tobytes())
            sha256 = h.hexdigest()
        existing = self.store.catalog.find_sha(sha256)
        if existing is not None:
            return AddResult(path, existing, False)
        if duration_s is None and len(descriptors):
            duration_s = float(descriptors.ends_s.max())
        work = Work(
            work_id=sha256[:16], title=title, path=str(Path(path).resolve()) if path else "",
            media_type=media_type, sha256=sha256, duration_s=duration_s, added_at=time.time(),
            model=descriptors.model,
        )
        stored, created = self.store.add(work, [descriptors], self._window_stats([descriptors]))
        if created and flush:
            self.store.flush()
        return AddResult(path, stored, created)

    def flush(self) -> None:
        """Write pending index changes (after ``add_descriptors(..., flush=False)``)."""
        self.store.flush()

    # -- catalogue --------------------------------------------------------------------------
    def works(self) -> list[Work]:
        return self.store.catalog.works()

    def get(self, work_id: str) -> Work:
        return self.store.catalog.get(work_id)

    def remove(self, work_id: str) -> Work:
        return self.store.remove(work_id)

    # -- query ------------------------------------------------------------------------------
    def query(self, path: str, top_k: int = 10, min_score: float | None = None) -> QueryResult:
        """Rank registered works for one file. ``min_score`` defaults to the calibrated 0.5."""
        if top_k < 1:
            raise ValueError("top_k must be >= 1")
        min_score = DEFAULT_MIN_SCORE if min_score is None else float(min_score)
        t0 = time.perf_counter()
        sniffed = sniff(path)
        sha = file_sha256(path)
        descriptors, duration_s = self.describe(path, sniffed.media_type, for_query=True)
        self._check_models(descriptors)
        matches = []
        verify = sniffed.media_type == "image" and self.config.verify_top > 0
        for d in descriptors:
            # Verification may lift a candidate ranked below top_k by cosine: fetch enough.
            found = self._match_signal(d, path, max(top_k, self.config.verify_top) if verify else top_k)
            if verify:
                found = self._verify_image_matches(path, found)
            matches.extend(found)
        matches.sort(key=lambda m: -m.score)
        matches = [m for m in matches if m.score >= min_score][:top_k]
        info = QueryInfo(path=path, media_type=sniffed.media_type, duration_s=duration_s, sha256=sha)
        return QueryResult(info, time.perf_counter() - t0, tuple(matches))

    @property
    def verifier(self):
        if self._verifier is None:
            from copytrace.verify import LocalVerifier, VerifyConfig

            self._verifier = LocalVerifier(VerifyConfig())
        return self._verifier

    def _verify_image_matches(self, path: str, matches: list[Match]) -> list[Match]:
        """Second stage for still images: local features + RANSAC on the top candidates.

        The combined similarity (cosine plus a bonus for geometrically consistent inliers; see
        ``copytrace.verify``) is calibrated on validation data with its own threshold, so every
        image candidate is re-scored against it, verified or not. Only candidates whose bonus
        could lift them over the threshold are verified, so innocent queries whose candidates
        are all far below it cost nothing extra.
        """
        from copytrace.media.image import load_image

        cfg = self.verifier.cfg
        spec = self.image_spec
        rescored = []
        query_features = None
        for rank, m in enumerate(matches):
            if m.media_type != "image":
                rescored.append(m)  # a frame of a video: scored by its cosine, as for video queries
                continue
            combined = m.similarity
            if rank < self.config.verify_top and m.similarity >= cfg.threshold_score - cfg.bonus:
                ref = self._features_of(m)
                if ref is not None:
                    if query_features is None:
                        query_features = self.verifier.features(
                            load_image(path, self.config.image_limits), query=True
                        )
                    combined = self.verifier.rescore(query_features, [(ref, m.similarity)])[0]
            score = spec.score(combined - cfg.threshold_score + spec.threshold_similarity)
            rescored.append(replace(m, score=float(score), similarity=float(combined)))
        return rescored

    def _features_of(self, m: Match):
        """Local features of a registered image, or None when its file is gone or unreadable."""
        if m.work_id not in self._ref_features:
            from copytrace.media.image import load_image

            try:
                image = load_image(m.path, self.config.image_limits)
            except MediaError as e:
                log.warning("verification skipped for %s: %s", m.work_id, e)
                return None
            if len(self._ref_features) >= 512:
                self._ref_features.pop(next(iter(self._ref_features)))
            self._ref_features[m.work_id] = self.verifier.features(image)
        return self._ref_features[m.work_id]

    def _check_models(self, descriptors: list[Descriptors]) -> None:
        stored = self.store.catalog.signals()
        for d in descriptors:
            others = stored.get(d.signal, set()) - {d.model}
            if others:
                raise StoreError(
                    f"library {self.store.root} holds {d.signal} descriptors of model "
                    f"{', '.join(sorted(others))}, but this copytrace describes with {d.model}; "
                    "re-register the works with this model or use the matching copytrace version"
                )

    def _match_signal(self, d: Descriptors, query_path: str, top_k: int) -> list[Match]:
        """Candidates by nearest-neighbour votes, then per-candidate scoring / alignment."""
        k = max(self.config.candidates, top_k)
        vectors, frame_of = _searched_vectors(d)
        from copytrace.index.votes import vote_candidates

        sims, work_ids, offsets = self.store.search(d.signal, vectors, k)
        votes, best = vote_candidates(frame_of, sims, work_ids, offsets)
        if len(d) == 1:
            ranked = sorted(best, key=lambda w: -best[w][0])[:top_k]
        else:
            n = max(top_k, self.config.temporal_candidates)
            ranked = sorted(votes, key=lambda w: -votes[w])[:n]
        out = []
        q_typ = None
        if d.signal == "audio" and self.audio_cohort is not None:
            q_typ = self.audio_cohort.typicality(d.vectors)
        elif (d.signal == "visual" and len(d) > 1 and self.config.video_frame_cohort
              and self.frame_cohort is not None):
            q_typ = self.frame_cohort.typicality(d.vectors)
        for work_id in ranked:
            work = self.get(work_id)
            sim, segments, scorer = self._score_pair(d, query_path, work, best[work_id], q_typ)
            if sim is None:
                continue
            out.append(
                Match(
                    work_id=work.work_id, title=work.title, path=work.path,
                    media_type=work.media_type, score=float(scorer.score(sim)),
                    similarity=float(sim), segments=tuple(segments), signal=d.signal,
                )
            )
        return out

    def _score_pair(self, d: Descriptors, query_path: str, work: Work, best: tuple[float, int, int],
                    q_typ: np.ndarray | None = None):
        """(similarity, segments, scorer) of one query against one registered work (similarity
        None: no informative evidence, not a candidate); ``q_typ``:
        the query's audio windows' or video frames' typicality; ``scorer.score`` maps the
        similarity to the calibrated score (the frame cohort's video threshold for timed visual
        pairs when the image model ships one, else the model's own)."""
        from copytrace.types import Segment

        spec = self._spec_for(d.signal)
        sim, qi, ri = best
        if len(d) == 1 and work.media_type == "image":
            return sim, [], spec
        ref = self.store.catalog.descriptors(work.work_id, d.signal)
        if len(d) == 1 or len(ref) == 1:
            # A still against a timed work (or the reverse): the best frame is the evidence.
            seg = Segment(float(d.starts_s[qi]), float(d.ends_s[qi]),
                          float(ref.starts_s[ri]), float(ref.ends_s[ri]), sim)
            return sim, [seg], spec
        if d.signal == "audio":
            from copytrace.align.offset import audio_segments

            # Segment scores are already calibrated and weighed by their evidence.
            segments = audio_segments(self._aligner("audio"), d.vectors, d.starts_s, ref.vectors,
                                      ref.starts_s, spec, q_typ,
                                      self._reference_typicality(work.work_id, ref.vectors))
        else:
            from copytrace.align.base import best_view_similarity, similarity_matrix

            matrix = best_view_similarity(d.vectors, d.views, ref.vectors)
            whole = similarity_matrix(d.vectors, ref.vectors) if d.views is not None else matrix
            viewed = matrix
            cohort = self.frame_cohort if q_typ is not None else None
            if cohort is not None:
                # Evidence from informative frames only, relative to how typical they are.
                from copytrace.models.frame_cohort import DETAIL_KEY

                r_detail = self.store.catalog.window_stats(work.work_id, "visual", "detail",
                                                           DETAIL_KEY)
                if r_detail is not None and len(r_detail) != len(ref):
                    r_detail = None
                matrix = cohort.normalise(
                    matrix, q_typ, self._reference_frame_typicality(work.work_id, ref.vectors),
                    d.detail, r_detail)
                spec = cohort.spec
            segments = suppress_query_overlaps(
                self._aligner(d.signal).align(matrix, d.starts_s, ref.starts_s),
                self.config.video_max_query_overlap,
            )
            if cohort is not None:
                min_sim = self.image_spec.threshold_similarity
                segments = [s for s in segments
                            if cohort.enough_evidence(s, matrix, d.starts_s, ref.starts_s, min_sim)]
                if not segments:
                    return None, [], spec  # no informative evidence: not a candidate at all
        if not segments:
            seg = Segment(float(d.starts_s[qi]), float(d.ends_s[qi]),
                          float(ref.starts_s[ri]), float(ref.ends_s[ri]), sim)
            return sim, [seg], spec
        if self.config.refine_boundaries and work.media_type == "video" and d.signal == "visual":
            # Only segments that will be reported as matches are worth the extra decoding.
            segments = [
                self._refine(s, query_path, work.path,
                             _found_through_views(s, d, ref, whole, viewed))
                if spec.score(s.score) >= DEFAULT_MIN_SCORE else s
                for s in segments
            ]
        segments.sort(key=lambda s: s.query_start_s)
        best_sim = max(s.score for s in segments)  # aligners score by mean frame similarity
        return best_sim, [replace(s, score=float(spec.score(s.score))) for s in segments], spec

    def _aligner(self, signal: str):
        from copytrace.align.base import get_aligner
        from copytrace.align.tn import TNConfig

        if signal == "audio":
            return get_aligner(self.config.audio_aligner)
        if self.config.aligner == "tn":
            # Frame matches below the descriptor's calibrated threshold do not enter the network.
            return get_aligner("tn", TNConfig(min_sim=self.image_spec.threshold_similarity))
        return get_aligner(self.config.aligner)

    def _embed_frames(self, images: list) -> np.ndarray:
        from copytrace.media.video import crop_uniform_borders

        return self.encoder.encode_images([crop_uniform_borders(im) for im in images])

    def _embed_frame_views(self, images: list) -> np.ndarray:
        """[N, V, D]: each frame whole, then its query views (as in ``_describe_video``)."""
        from copytrace.media.video import crop_uniform_borders, view_crops

        fractions = (self.config.query_corner_views, self.config.query_centre_view)
        frames = [crop_uniform_borders(im) for im in images]
        crops = [c for im in frames for c in [im, *view_crops(im, *fractions)]]
        return self.encoder.encode_images(crops).reshape(len(frames), len(crops) // len(frames), -1)

    def _refine(self, segment, query_path: str, ref_path: str, through_views: bool = False):
        from copytrace.align.refine import RefineConfig, refine_boundaries

        if not os.path.exists(ref_path):
            return segment  # the registered file moved: keep the coarse boundaries
        try:
            query_embed = self._embed_frame_views if through_views else None
            return refine_boundaries(segment, query_path, ref_path, self._embed_frames,
                                     RefineConfig(), query_embed)
        except MediaError as e:
            log.warning("boundary refinement skipped: %s", e)
            return segment

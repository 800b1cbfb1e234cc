"""How *typical* a video frame is, and what a video match must rest on (issue 19).

A flat pastel sky, a dark scene, a fade or a title card carries no identity: its descriptor sits
near many unrelated frames, so two innocent videos that both hold such a stretch meet at a
cosine above the image threshold. As the audio signal does (``models/audio_cohort.py``), every
frame pair the aligner reads is taken as ``cosine - wq * (typ(q) - level) - wr * (typ(r) -
level)``, where ``typ`` is a frame's mean cosine to its ``k`` nearest descriptors of a fixed
**cohort** of generic frames (random frame-shaped crops of *train* images, some darkened,
blurred or faded: ``python -m copytrace.train.frame_cohort``), and ``level`` the mean typicality
of other such crops, so normalised similarities keep the image threshold's scale.

Frames with little picture detail (``frame_detail`` below ``min_detail``: mean absolute
grey-level step between neighbouring pixels at 128 px wide (or the frame's own width), so skies, haze, gradients, fades and
dark scenes) and frames more typical than ``informative_typicality`` carry no evidence: they are
left out of the similarity matrix (a real copy bridges a short dull stretch with the aligner's gaps), and a
segment needs at least ``min_informative_frames`` informative query frames that match inside its
reference span. A segment's similarity is then scored on the video threshold fitted on the
calibration split of the negatives corpus (``bench/video.py innocent --calibrate``), not on the
still-image one.

The entry is ``<image model name>.frame-cohort.json`` beside the image model's weights; a model
without one matches video as before (plain cosines, the image threshold).
"""
from __future__ import annotations

import hashlib
import io
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from copytrace.errors import ModelError


@dataclass(frozen=True)
class FrameCohortSpec:
    model: str  # the image model id the cohort was described with
    file: str
    k: int
    level: float
    weights: tuple[float, float]
    informative_typicality: float
    min_informative_frames: int
    threshold_similarity: float
    score_slope: float
    min_detail: float = 0.0
    # Local features' second opinion (signals/visual.py ``_confirm_distinct``): a reportable
    # segment whose query frames another candidate work matches too (at the video threshold and
    # within ``distinct_margin`` of this one, median cosines) must be confirmed with at least
    # ``verify_min_inliers`` inliers; 0 inliers: no checks.
    verify_min_inliers: int = 0
    distinct_margin: float = 0.1
    calibration: str = ""
    directory: str = ""

    def __post_init__(self) -> None:
        if self.k < 1 or self.min_informative_frames < 1:
            raise ValueError("frame cohort: k and min_informative_frames must be >= 1")
        if len(self.weights) != 2 or not all(0 <= w <= 1 for w in self.weights):
            raise ValueError(f"frame cohort: weights are two fractions in [0, 1], not "
                             f"{self.weights}")
        if self.score_slope <= 0:
            raise ValueError("frame cohort: score_slope must be positive")
        if self.verify_min_inliers < 0 or not 0 <= self.distinct_margin < 1:
            raise ValueError("frame cohort: verify_min_inliers is a count >= 0 (0: no check), "
                             "distinct_margin a cosine difference in [0, 1)")

    def score(self, similarity):
        z = self.score_slope * (np.asarray(similarity, np.float64) - self.threshold_similarity)
        return 1.0 / (1.0 + np.exp(-np.clip(z, -60, 60)))

    def to_json(self) -> dict:
        d = asdict(self)
        d.pop("directory")
        d["weights"] = list(self.weights)
        return d


# Names how ``frame_detail`` is computed: stored detail under another key is recomputed (never).
DETAIL_KEY = "grad128/v1"


def frame_detail(image) -> float:
    """Picture detail of a frame (PIL image): mean absolute difference between neighbouring
    grey levels (0-255), across and down, of the frame resized to 128 px wide. A camera frame
    reads 4-30; a pastel sky, haze or a smooth gradient 1-3, a flat colour under 1."""
    from PIL import Image

    w, h = image.size
    side = min(128, w)  # never upsampled: that would smooth small frames into "low detail"
    g = np.asarray(image.convert("L").resize((side, max(2, round(side * h / max(w, 1)))),
                                             Image.BILINEAR), np.float32)
    return float(np.abs(np.diff(g, axis=1)).mean() + np.abs(np.diff(g, axis=0)).mean())


def entry_path(directory: Path, model_name: str) -> Path:
    return Path(directory) / f"{model_name}.frame-cohort.json"


class FrameCohort:
    """``typicality(vectors)``: each row's mean cosine to its ``k`` nearest cohort frames."""

    def __init__(self, spec: FrameCohortSpec, vectors: np.ndarray, key: str) -> None:
        import faiss

        v = np.ascontiguousarray(vectors, np.float32)
        if v.ndim != 2 or len(v) < spec.k:
            raise ModelError(f"frame cohort {spec.file}: {v.shape} vectors cannot give the top "
                             f"{spec.k}")
        self.spec = spec
        self.key = key  # typicality stored under another key is stale
        self._index = faiss.IndexFlatIP(v.shape[1])
        self._index.add(v)

    def typicality(self, vectors: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(vectors, np.float32)
        if len(x) == 0:
            return np.zeros(0, np.float32)
        sims, _ = self._index.search(x, self.spec.k)
        return sims.mean(1).astype(np.float32)

    def informative(self, typ: np.ndarray, detail: np.ndarray | None) -> np.ndarray:
        """Frames that may carry evidence: typical at most ``informative_typicality`` and, where
        their detail is known (frames decoded here, not descriptors registered from elsewhere),
        at least ``min_detail``."""
        ok = np.asarray(typ) <= self.spec.informative_typicality
        if detail is not None:
            ok &= np.asarray(detail) >= self.spec.min_detail
        return ok

    def normalise(self, sim: np.ndarray, q_typ: np.ndarray, r_typ: np.ndarray,
                  q_detail: np.ndarray | None = None,
                  r_detail: np.ndarray | None = None) -> np.ndarray:
        """``sim`` [query frames, reference frames] less each side's typicality over the level;
        pairs with an uninformative frame on either side read -1 (no evidence)."""
        wq, wr = self.spec.weights
        lvl = self.spec.level
        out = (sim - wq * (q_typ[:, None] - lvl) - wr * (r_typ[None, :] - lvl)).astype(np.float32)
        out[~self.informative(q_typ, q_detail), :] = -1.0
        out[:, ~self.informative(r_typ, r_detail)] = -1.0
        return out

    def enough_evidence(self, seg, sim: np.ndarray, q_times_s: np.ndarray,
                        r_times_s: np.ndarray, min_sim: float) -> bool:
        """Whether ``seg`` holds ``min_informative_frames`` query frames that match (normalised
        similarity >= ``min_sim``, so informative on both sides) inside its reference span."""
        rows = np.flatnonzero((q_times_s >= seg.query_start_s) & (q_times_s < seg.query_end_s))
        cols = np.flatnonzero((r_times_s >= seg.ref_start_s - 1e-6)
                              & (r_times_s < seg.ref_end_s))
        if not len(rows) or not len(cols):
            return False
        hits = int((sim[np.ix_(rows, cols)].max(axis=1) >= min_sim).sum())
        return hits >= self.spec.min_informative_frames


def read_frame_cohort_spec(directory: Path, model_name: str) -> FrameCohortSpec | None:
    path = entry_path(directory, model_name)
    if not path.is_file():
        return None
    try:
        raw = json.loads(path.read_text())
        raw["weights"] = tuple(raw["weights"])
        return FrameCohortSpec(**raw, directory=str(path.parent))
    except (OSError, ValueError, TypeError, KeyError) as e:
        raise ModelError(f"frame cohort entry {path} is invalid: {e}; rebuild it with "
                         "python -m copytrace.train.frame_cohort") from e


def load_frame_cohort(image_spec) -> FrameCohort | None:
    """The image model's frame cohort, or None when its weights ship none (plain cosines)."""
    directory = Path(image_spec.directory) if image_spec.directory else None
    if directory is None:
        from copytrace.models.registry import WEIGHTS_DIR

        directory = WEIGHTS_DIR
    spec = read_frame_cohort_spec(directory, image_spec.name)
    if spec is None:
        return None
    if spec.model != image_spec.model_id:
        raise ModelError(f"frame cohort {spec.file} was built with {spec.model}, not "
                         f"{image_spec.model_id}; rebuild it with python -m "
                         "copytrace.train.frame_cohort")
    path = Path(spec.directory) / spec.file
    try:
        raw = path.read_bytes()
        vectors = np.load(io.BytesIO(raw))
    except (OSError, ValueError) as e:
        raise ModelError(f"frame cohort file {path} is unreadable: {e}") from e
    if vectors.ndim != 2 or vectors.shape[1] != image_spec.dims:
        raise ModelError(f"frame cohort {path} holds {vectors.shape}, not [n, {image_spec.dims}]")
    key = f"{image_spec.model_id}/{hashlib.sha256(raw).hexdigest()[:16]}/k{spec.k}"
    return FrameCohort(spec, vectors.astype(np.float32), key)


def fit_threshold(innocent_best: list[float], target_rate: float, floor: float) -> float:
    """The lowest similarity that at most ``target_rate`` of the innocent videos' best
    segments reach (never below ``floor``): the calibration split's own quantile."""
    if not innocent_best:
        return floor
    xs = sorted(innocent_best, reverse=True)
    allowed = int(math.floor(target_rate * len(xs)))
    bar = xs[allowed] + 1e-4 if allowed < len(xs) else floor
    return float(max(floor, bar))

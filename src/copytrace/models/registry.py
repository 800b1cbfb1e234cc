"""The descriptor contract, stored as JSON beside the weights.

Preprocessing, dimensions, metric and score calibration all come from the entry, so they can
never drift from the weights they belong to.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from copytrace.errors import ModelError

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
DEFAULT_IMAGE_MODEL = "ct-image-r18s"
RESIZE_RULES = ("squash",)


class CalibratedEntry:
    """Shared by registry entries (frozen dataclasses with ``name``, ``version``,
    ``threshold_similarity``, ``score_slope`` and ``directory``): identity, score calibration,
    JSON form."""

    @property
    def model_id(self) -> str:
        return f"{self.name}@{self.version}"

    def score(self, similarity):
        """Map similarity (scalar or array) to a calibrated score in [0, 1]; 0.5 at the threshold."""
        import numpy as np

        z = self.score_slope * (np.asarray(similarity, dtype=np.float64) - self.threshold_similarity)
        return 1.0 / (1.0 + np.exp(-np.clip(z, -60, 60)))

    def similarity_for_score(self, score: float) -> float:
        score = min(max(score, 1e-9), 1 - 1e-9)
        return self.threshold_similarity + math.log(score / (1 - score)) / self.score_slope

    def has_int8(self) -> bool:
        """INT8 files recorded *and* made from the FP32 file that is there now (the entry's
        ``int8_source_sha256``): a retrained ``file`` with stale INT8 keys falls back to FP32
        instead of running old weights. What ``precision='auto'`` asks of every descriptor."""
        if not (self.int8_file and self.int8_u8_file):
            return False
        if self.int8_source_sha256 is None:
            return True
        return file_sha256(self.path("fp32")) == self.int8_source_sha256

    def to_json(self) -> dict:
        d = asdict(self)
        d.pop("directory")
        return d

    def _weights_file(self, name: str) -> Path:
        p = Path(self.directory or WEIGHTS_DIR) / name
        if not p.is_file():
            raise ModelError(f"{self.name}: weights file {p} is missing")
        return p

    @classmethod
    def from_file(cls, path: Path):
        return cls.from_raw(read_entry(path), path)

    @classmethod
    def from_raw(cls, raw: dict, path: Path):
        """Build from an entry's parsed JSON; weights resolve beside ``path``."""
        raw = cls._coerce(dict(raw))
        raw.setdefault("directory", str(Path(path).resolve().parent))
        try:
            return cls(**raw)
        except TypeError as e:
            raise ModelError(f"registry entry {path} has unexpected fields: {e}") from e

    @staticmethod
    def _coerce(raw: dict) -> dict:
        """JSON lists -> the tuples a frozen entry holds (per entry type)."""
        return raw


def file_sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def read_entry(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise ModelError(f"cannot read registry entry {path}: {e}") from e


@dataclass(frozen=True)
class DescriptorSpec(CalibratedEntry):
    """Everything needed to run a descriptor and read its output.

    ``score = sigmoid(score_slope * (similarity - threshold_similarity))``: a score of 0.5 is the
    default decision threshold, reached at ``threshold_similarity`` (cosine), which gave
    ``threshold_precision`` on the calibration set named in ``calibration``.

    The other calibrated constants the engine applies are here too: ``aligner_min_similarity``,
    below which frame pairs do not enter the video aligner (whichever it is; default: the
    threshold), and ``verify_threshold_similarity`` / ``verify_bonus``, the still-image
    verifier's decision threshold on the combined score and its largest inlier bonus
    (``copytrace.verify``; None: the verifier's defaults), and ``verify_score_slope``, the
    slope of a still image's score ``sigmoid(verify_score_slope * (combined -
    verify_threshold_similarity))`` (None: ``score_slope``).
    """

    name: str
    version: str
    media: str
    file: str
    input_size: tuple[int, int]
    resize: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    dims: int
    metric: str = "cosine"
    normalise: str = "l2"
    threshold_similarity: float = 0.5
    score_slope: float = 20.0
    threshold_precision: float | None = None
    calibration: str = ""
    int8_file: str | None = None
    int8_u8_file: str | None = None
    int8_source_sha256: str | None = None  # the FP32 file the INT8 files were made from
    aligner_min_similarity: float | None = None
    verify_threshold_similarity: float | None = None
    verify_bonus: float | None = None
    verify_score_slope: float | None = None  # slope of the verified score; None: score_slope
    training: dict = field(default_factory=dict)
    directory: str = ""

    def __post_init__(self) -> None:
        if self.aligner_min_similarity is None:
            object.__setattr__(self, "aligner_min_similarity", self.threshold_similarity)
        if self.resize not in RESIZE_RULES:
            raise ModelError(f"{self.name}: resize rule {self.resize!r} not in {RESIZE_RULES}")
        if len(self.input_size) != 2 or min(self.input_size) < 16:
            raise ModelError(f"{self.name}: input_size must be (height, width) >= 16")
        if self.metric != "cosine" or self.normalise != "l2":
            raise ModelError(f"{self.name}: only cosine on L2-normalised vectors is supported")
        if self.dims <= 0 or self.score_slope <= 0:
            raise ModelError(f"{self.name}: dims and score_slope must be positive")

    def path(self, precision: str = "fp32") -> Path:
        name = {"fp32": self.file, "int8": self.int8_file, "int8-u8": self.int8_u8_file}.get(
            precision
        )
        if name is None:
            raise ModelError(f"{self.name}: no {precision} weights in its registry entry")
        return self._weights_file(name)

    @staticmethod
    def _coerce(raw: dict) -> dict:
        for key in ("input_size", "mean", "std"):
            if key in raw:
                raw[key] = tuple(raw[key])
        return raw


def models_dir() -> Path:
    """Shipped weights, unless ``$COPYTRACE_MODELS_DIR`` points at another registry folder."""
    env = os.environ.get("COPYTRACE_MODELS_DIR")
    return Path(env) if env else WEIGHTS_DIR


def list_specs(directory: Path | None = None) -> list[DescriptorSpec]:
    """The image descriptors' entries of a registry folder (audio entries, frame cohorts and
    other signals' entries share the folder under their own contracts)."""
    d = Path(directory or models_dir())
    entries = [(p, read_entry(p)) for p in sorted(d.glob("*.json"))]
    return [DescriptorSpec.from_raw(raw, p) for p, raw in entries
            if raw.get("media") in ("image", "video")]


def get_spec(name: str, directory: Path | None = None):
    """The registry entry ``<name>.json`` of ``directory`` (default ``models_dir()``), read
    under its media's contract: ``DescriptorSpec`` for image descriptors,
    ``audio_spec.AudioDescriptorSpec`` for audio ones. The one reader of descriptor entries."""
    d = Path(directory or models_dir())
    p = d / f"{name}.json"
    if not p.is_file():
        known = ", ".join(sorted(q.stem for q in d.glob("*.json")
                                 if read_entry(q).get("media") in ("image", "video", "audio")))
        raise ModelError(f"unknown descriptor model {name!r} ({p} is missing; known: "
                         f"{known or 'none'})")
    raw = read_entry(p)
    if raw.get("media") == "audio":
        from copytrace.models.audio_spec import AudioDescriptorSpec

        return AudioDescriptorSpec.from_raw(raw, p)
    return DescriptorSpec.from_raw(raw, p)


def default_spec(media: str = "image") -> DescriptorSpec:
    if media in ("image", "video"):
        return get_spec(DEFAULT_IMAGE_MODEL)
    raise ModelError(f"no default descriptor for media type {media!r}")

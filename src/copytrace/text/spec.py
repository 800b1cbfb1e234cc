"""The text descriptor's registry entry: fingerprint and alignment parameters and the
calibrated score, read from ``models/weights/ct-text-winnow.json`` (written by
``bench/text.py calibrate``)."""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

from copytrace.errors import ModelError
from copytrace.models.registry import WEIGHTS_DIR, CalibratedEntry, read_entry
from copytrace.text.align import AlignConfig
from copytrace.text.document import FingerprintConfig
from copytrace.text.minhash import MinHashConfig
from copytrace.text.search import SearchConfig

DEFAULT_TEXT_MODEL = "ct-text-winnow"


@dataclass(frozen=True)
class TextSpec(CalibratedEntry):
    """``similarity`` of a passage: log2 of the normalised query characters its aligned runs
    cover; ``score = sigmoid(score_slope * (similarity - threshold_similarity))``."""

    name: str
    version: str
    k: int
    w: int
    seed_k: int
    max_seed_freq: int
    gap_units: int
    drift_units: int
    merge_gap_units: int
    min_fragment_units: int
    max_postings: int
    candidates: int
    min_seeds: int
    context_units: int
    diagonal_chars: int
    threshold_similarity: float
    score_slope: float
    minhash_perm: int = 128
    minhash_bands: int = 32
    near_duplicate_jaccard: float = 0.5
    calibration: str = ""
    directory: str = ""

    def __post_init__(self) -> None:
        if self.score_slope <= 0:
            raise ModelError(f"{self.name}: score_slope must be positive")

    @property
    def fingerprint(self) -> FingerprintConfig:
        return FingerprintConfig(self.k, self.w)

    @property
    def align(self) -> AlignConfig:
        return AlignConfig(self.seed_k, self.max_seed_freq, self.gap_units, self.drift_units,
                           self.merge_gap_units, self.min_fragment_units)

    @property
    def search(self) -> SearchConfig:
        return SearchConfig(self.max_postings, self.candidates, self.min_seeds, self.context_units,
                            self.diagonal_chars, MinHashConfig(self.minhash_perm,
                                                               self.minhash_bands,
                                                               self.near_duplicate_jaccard))

    def path(self, precision: str = "fp32"):
        """The entry itself is the model (no weights): its JSON file, for evidence bundles."""
        from pathlib import Path

        if precision != "fp32":
            raise ValueError(f"{self.name}: no {precision} form (a text model has no weights)")
        return Path(self.directory or WEIGHTS_DIR) / f"{self.name}.json"

    @staticmethod
    def similarity(matched_chars: int) -> float:
        return math.log2(max(1, matched_chars))


@functools.lru_cache(maxsize=4)
def load_text_spec(name: str = DEFAULT_TEXT_MODEL, directory: str | None = None) -> TextSpec:
    from pathlib import Path

    path = Path(directory or WEIGHTS_DIR) / f"{name}.json"
    if not path.is_file():
        raise ModelError(f"text model {name!r}: registry entry {path} is missing")
    return TextSpec.from_raw(read_entry(path), path)

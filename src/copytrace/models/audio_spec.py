"""The audio descriptor contract, JSON beside the weights (same convention as registry.py).

Everything the numpy frontend, the encoder and the matcher need comes from the entry: sample
rate, mel parameters, window length, index and query hops, output dims, and the calibrated
decision threshold (``threshold_similarity`` on the matcher's sequence similarity, with the
precision it gave on the set named in ``calibration``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from copytrace.errors import ModelError
from copytrace.models.audio_frontend import MelConfig
from copytrace.models.registry import CalibratedEntry, file_sha256, get_spec  # noqa: F401 - file_sha256 re-exported

DEFAULT_AUDIO_MODEL = "ct-audio-nafp"


@dataclass(frozen=True)
class AudioDescriptorSpec(CalibratedEntry):
    """``score = sigmoid(score_slope * (similarity - threshold_similarity))``; 0.5 is the
    decision threshold. The matcher's similarity is evidence-adjusted: the mean aligned cosine
    minus ``length_penalty / sqrt(query windows)``, because a short query's best chance match
    is higher than a long one's (calibrated on unregistered tracks). ``hop_s`` is the reference (index) hop, ``query_hop_s`` the query hop:
    a dense query grid against a sparse index keeps the index small while some query window
    always lies within ``query_hop_s / 2`` of a reference window."""

    EVIDENCE_QUERY_S = 5.0  # the query length whose evidence-weighted similarity is unscaled

    name: str
    version: str
    file: str
    sample_rate: int
    n_fft: int
    hop_frames: int
    n_mels: int
    f_min: float
    f_max: float
    eps: float
    window_frames: int
    window_s: float
    hop_s: float
    query_hop_s: float
    dims: int
    media: str = "audio"
    metric: str = "cosine"
    normalise: str = "l2"
    silence_dbfs: float = -55.0
    length_penalty: float = 0.0
    threshold_similarity: float = 0.5
    score_slope: float = 20.0
    threshold_precision: float | None = None
    calibration: str = ""
    # Typicality normalisation (models/audio_cohort.py): each pair's cosine less wq / wr times
    # its query / reference window's mean top-``cohort_k`` cosine to the cohort, over ``level``.
    cohort_file: str | None = None
    cohort_k: int = 16
    cohort_weights: tuple[float, float] = (0.5, 0.5)
    cohort_level: float = 0.0
    int8_file: str | None = None       # QDQ INT8 ONNX (OpenVINO), set by ``copytrace quantize``
    int8_u8_file: str | None = None    # its U8-activation variant (ONNX Runtime)
    int8_source_sha256: str | None = None  # the FP32 file the INT8 files were made from
    # Window pairs below this (normalised) similarity do not enter the audio aligner; None:
    # the aligner's own default.
    aligner_min_similarity: float | None = None
    quantization: dict = field(default_factory=dict)  # gate result (copytrace quantize)
    training: dict = field(default_factory=dict)
    directory: str = ""

    def __post_init__(self) -> None:
        mel = self.mel_config()  # validates the mel parameters
        if abs(mel.window_s - self.window_s) > 1e-3:
            raise ModelError(f"{self.name}: window_s {self.window_s} disagrees with the mel "
                             f"parameters ({mel.window_s:.4f} s)")
        for hop in (self.hop_s, self.query_hop_s):
            frames = hop / mel.frame_s
            if hop <= 0 or abs(frames - round(frames)) > 1e-6:
                raise ModelError(f"{self.name}: hops must be positive multiples of "
                                 f"{mel.frame_s} s (one frame), got {hop}")
        ratio = self.hop_s / self.query_hop_s
        if abs(ratio - round(ratio)) > 1e-6:
            raise ModelError(f"{self.name}: hop_s must be a multiple of query_hop_s")
        if self.dims <= 0 or self.score_slope <= 0:
            raise ModelError(f"{self.name}: dims and score_slope must be positive")
        if self.metric != "cosine" or self.normalise != "l2":
            raise ModelError(f"{self.name}: only cosine on L2-normalised vectors is supported")
        if self.cohort_k < 1 or len(self.cohort_weights) != 2 or min(self.cohort_weights) < 0:
            raise ModelError(f"{self.name}: cohort_k >= 1 and two cohort_weights >= 0 are required")

    @staticmethod
    def _coerce(raw: dict) -> dict:
        if "cohort_weights" in raw:
            raw["cohort_weights"] = tuple(raw["cohort_weights"])
        return raw

    def mel_config(self) -> MelConfig:
        try:
            return MelConfig(
                sample_rate=self.sample_rate, n_fft=self.n_fft, hop_frames=self.hop_frames,
                n_mels=self.n_mels, f_min=self.f_min, f_max=self.f_max, eps=self.eps,
                window_frames=self.window_frames,
            )
        except ValueError as e:
            raise ModelError(f"{self.name}: {e}") from e

    def query_windows(self, length_s: float) -> int:
        """Windows a query of ``length_s`` seconds is embedded into (at ``query_hop_s``)."""
        return round((length_s - self.window_s) / self.query_hop_s) + 1

    def _evidence_scale(self, n_windows):
        import numpy as np

        n5 = self.query_windows(self.EVIDENCE_QUERY_S)
        return np.sqrt(np.maximum(np.asarray(n_windows, np.float64), 1) / n5)

    def evidence_similarity(self, similarity, n_windows):
        """``threshold + (similarity - threshold) * sqrt(n / n5)``, n5 the windows of a 5 s query:
        the margin over the threshold grows with the square root of the windows that carry it
        (as a sum of independent evidence does), so matches are ranked by how much matching audio
        backs them; a 5 s query reads its plain similarity, and the sign of the margin (the
        decision) never changes."""
        t = self.threshold_similarity
        return t + (similarity - t) * self._evidence_scale(n_windows)

    def path(self, precision: str = "fp32") -> Path:
        name = {"fp32": self.file, "int8": self.int8_file, "int8-u8": self.int8_u8_file}.get(
            precision)
        if name is None:
            raise ModelError(f"{self.name}: no {precision} weights in its registry entry "
                             f"(copytrace quantize --model {self.name} makes them)")
        return self._weights_file(name)


def get_audio_spec(name: str = DEFAULT_AUDIO_MODEL, directory: Path | None = None) -> AudioDescriptorSpec:
    """``registry.get_spec`` for an entry that must be an audio descriptor's."""
    spec = get_spec(name, directory)
    if not isinstance(spec, AudioDescriptorSpec):
        raise ModelError(f"descriptor model {name!r} describes {spec.media}, not audio")
    return spec

"""``EngineConfig``: how a Library describes and matches media (every signal's knobs).

Calibrated constants (thresholds, minimum similarities, verification bonus) are not here: they
belong to the descriptor's registry entry (``models/registry.py``), read in one place.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from copytrace.index.base import IndexConfig
from copytrace.media.image import ImageLimits
from copytrace.models.audio_spec import DEFAULT_AUDIO_MODEL
from copytrace.models.registry import DEFAULT_IMAGE_MODEL

DEFAULT_SIGNALS = ("visual", "audio", "text")
# The one decision threshold on calibrated scores, for every signal (docs/architecture.md).
DEFAULT_MIN_SCORE = 0.5


@dataclass(frozen=True)
class EngineConfig:
    """How a Library describes and matches media.

    precision: 'auto' uses INT8 weights when the model's registry entry ships INT8 files made
    from the FP32 file now present (the entry records its hash; they are only shipped when they
    passed the accuracy gate) and the CPU's int8 kernels are exact, else FP32; the same rule for
    every signal (``runtime.resolve_precision``).

    Video queries: each sampled frame is also described through partial views, so copies that
    fill only part of the query's picture are found: its four corners at
    ``query_corner_views`` of each side (picture-in-picture) and its centre at
    ``query_centre_view`` (logos, tickers, captions at the edges); 0 turns a kind off. Unless
    ``query_views_all_frames``, only frames whose whole-frame nearest reference is below the
    descriptor's calibrated similarity get views: a frame already matched needs no second look,
    and views cost one encoder pass each. ``video_max_query_overlap``: a pair's segment whose
    query span is more than this fraction covered by better segments of the same pair is
    dropped (1 keeps all). ``video_frame_cohort``: frame similarities relative to how typical
    the frames are, uninformative frames left out, a minimum of informative evidence per
    segment and the video threshold (``models/frame_cohort.py``).
    """

    image_model: str = DEFAULT_IMAGE_MODEL
    backend: str = "openvino"
    precision: str = "auto"
    threads: int = 0
    candidates: int = 64
    image_limits: ImageLimits = field(default_factory=ImageLimits)
    models_dir: str | None = None
    video_fps: float = 1.0
    aligner: str = "tn"
    audio_model: str = DEFAULT_AUDIO_MODEL
    audio: bool = True
    audio_aligner: str = "offset"
    temporal_candidates: int = 10
    refine_boundaries: bool = True
    verify_top: int = 10
    # Still-image queries: also describe and search region proposals (verify/regions.py:
    # straight-edge rectangles and a multi-scale grid) when the whole image finds nothing at
    # the default threshold, so a registered picture pasted into a larger one is found.
    query_regions: bool = True
    # Views and overlap suppression were chosen by reasoning and confirmed on a development
    # split of the video bench (``make --seed 1``), never on the eval queries: docs/video.md.
    query_corner_views: float = 0.6
    query_centre_view: float = 0.7
    query_views_all_frames: bool = False
    video_max_query_overlap: float = 0.5
    # Video evidence from informative frames only, scored on the video threshold, when the
    # image model ships a frame cohort (models/frame_cohort.py; issue 19). False: plain cosines.
    video_frame_cohort: bool = True
    # Where vectors are searched: FAISS files in the library (default) or Milvus; None takes
    # COPYTRACE_INDEX / COPYTRACE_MILVUS_URI (index/base.py IndexConfig).
    index: IndexConfig | None = None
    # The signals a library describes and searches, in this order (signals/base.py BUILTIN).
    # ``audio=False`` above only leaves videos' soundtracks out; recordings still use audio.
    signals: tuple[str, ...] = DEFAULT_SIGNALS

    def __post_init__(self) -> None:
        if not self.signals or len(set(self.signals)) != len(self.signals):
            raise ValueError(
                f"EngineConfig.signals names each signal once, at least one; got {self.signals}")
        for name in ("query_corner_views", "query_centre_view"):
            frac = getattr(self, name)
            if frac != 0 and not 0.25 <= frac < 1:
                raise ValueError(
                    f"EngineConfig.{name} is a fraction of the frame's sides in [0.25, 1), "
                    f"or 0 to turn those views off; got {frac}"
                )
        if not 0 < self.video_fps <= 30:
            raise ValueError("EngineConfig.video_fps must be in (0, 30] frames per second")
        if not 0 < self.video_max_query_overlap <= 1:
            raise ValueError(
                "EngineConfig.video_max_query_overlap is a fraction in (0, 1] (1 keeps every "
                "segment of a pair, however much their query spans overlap)"
            )
        if self.verify_top < 0:
            raise ValueError("EngineConfig.verify_top must be >= 0 (0 turns verification off)")
        if self.temporal_candidates < 1:
            raise ValueError("EngineConfig.temporal_candidates must be >= 1")
        if self.precision not in ("auto", "fp32", "int8"):
            raise ValueError("EngineConfig.precision must be 'auto', 'fp32' or 'int8'")
        if self.candidates < 1:
            raise ValueError("EngineConfig.candidates must be >= 1")
        if self.threads < 0:
            raise ValueError("EngineConfig.threads must be >= 0 (0 = runtime default)")

    @property
    def models_path(self) -> Path | None:
        """``models_dir`` as a path (None: the shipped weights or ``$COPYTRACE_MODELS_DIR``)."""
        return Path(self.models_dir) if self.models_dir else None

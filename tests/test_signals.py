"""The Library over its signals (signals/base.py): a new signal plugs in without touching the
Library, one probe feeds every stage, descriptors made elsewhere register and query exactly as
described here, and every aligner reads its minimum similarity from the registry entry."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

import copytrace
from copytrace.config import EngineConfig
from copytrace.media.probe import probe
from copytrace.models.registry import CalibratedEntry
from copytrace.signals.base import Signal, register_signal
from copytrace.types import Descriptors

from .conftest import DATA
from .test_library_media import SR, write_av_clip
from .video_clips import pan_frames


@dataclass(frozen=True)
class _ColourEntry(CalibratedEntry):
    """A registry entry for the colour layout below (its threshold set by hand: a test)."""

    name: str = "colour-layout"
    version: str = "1"
    dims: int = 192
    threshold_similarity: float = 0.99
    score_slope: float = 200.0
    directory: str = ""


@register_signal
class ColourLayoutSignal(Signal):
    """A real, tiny descriptor: an image's 8x8 grid of mean RGB colours, L2-normalised. The
    defaults of ``Signal`` (dense candidate search, descriptor checks) do the rest."""

    name = "colour"
    media_types = ("image",)

    @property
    def spec(self):
        return _ColourEntry()

    def describe(self, media, for_query):
        from PIL import Image

        from copytrace.media.image import load_image

        grid = np.asarray(load_image(media.path, self.config.image_limits)
                          .resize((8, 8), Image.BOX), np.float32).reshape(1, -1)
        zero = np.zeros(1, np.float64)
        return Descriptors(grid / np.linalg.norm(grid), zero, zero, self.model_id, self.name)

    def match(self, query, work, cand):
        return self.make_match(work, self.spec.score(cand.similarity), cand.similarity)


def test_a_registered_signal_plugs_in_without_touching_the_library(tmp_path):
    paths = [str(DATA / n) for n in ("animal_cat.jpg", "face_hopper.jpg", "eval_fruits.jpg")]
    config = EngineConfig(signals=("colour",))
    with copytrace.open(str(tmp_path / "db"), config) as lib:
        added, failed = lib.add_many(paths)
        assert not failed and all(r.work.model == "colour-layout@1" for r in added)
        res = lib.query(paths[1])
    assert [m.signal for m in res.matches] == ["colour"]
    assert res.matches[0].title == "face_hopper" and res.matches[0].similarity > 0.999
    assert (tmp_path / "db" / "index-colour.faiss").is_file()  # the store indexed it as dense


def test_probe_gives_one_media_info_that_describe_reads(tmp_path):
    clip = write_av_clip(tmp_path / "clip.mp4", pan_frames("animal_cat.jpg", 4 * 25, seed=1), 25,
                         np.sin(np.arange(4 * SR) * 0.05).astype(np.float32))
    media = probe(str(clip))
    assert media.media_type == "video" and media.has_audio and media.audio is None
    assert media.duration_s == pytest.approx(4.0, abs=0.1) and media.video.fps == 25
    assert len(media.sha256) == 64
    with copytrace.open(str(tmp_path / "db")) as lib:
        descriptors, duration_s = lib.describe(media)
        assert [d.signal for d in descriptors] == ["visual", "audio"]
        assert duration_s == media.duration_s
        # the same descriptors through the old signature (path + sniffed type)
        again, _ = lib.describe(str(clip), "video")
        assert all(np.array_equal(a.vectors, b.vectors) for a, b in zip(descriptors, again))


def test_descriptors_made_elsewhere_register_and_query_as_described_here(tmp_path):
    clip = write_av_clip(tmp_path / "clip.mp4", pan_frames("animal_cat.jpg", 8 * 25, seed=2), 25,
                         np.sin(np.arange(8 * SR) * 0.03).astype(np.float32)
                         * np.linspace(0.2, 1, 8 * SR, dtype=np.float32))
    with copytrace.open(str(tmp_path / "a")) as a, copytrace.open(str(tmp_path / "b")) as b:
        plain = a.add(str(clip)).work
        made, duration_s = b.describe(str(clip), "video")
        elsewhere = b.add_descriptors(made, title="clip", duration_s=duration_s).work
        assert elsewhere.n_descriptors == plain.n_descriptors
        assert [b.store.catalog.descriptors(elsewhere.work_id, s).vectors.tobytes()
                for s in ("visual", "audio")] == [a.store.catalog.descriptors(
                    plain.work_id, s).vectors.tobytes() for s in ("visual", "audio")]
        with pytest.raises(ValueError, match="one Descriptors per signal"):
            b.add_descriptors([made[0], made[0]], title="twice")
        image = str(DATA / "animal_cat.jpg")
        b.add(image)
        assert b.add_descriptors(b.describe(image, "image")[0], title="still",
                                 media_type="image").work.duration_s is None
        direct = b.query(image)
        q, _ = b.describe(image, "image", for_query=True)
        via = b.query_descriptors(q, "image", path=image)
    assert [(m.work_id, m.score, m.similarity) for m in via.matches] == [
        (m.work_id, m.score, m.similarity) for m in direct.matches]


def test_every_aligner_reads_the_entrys_minimum_similarity(tmp_path):
    from copytrace.align.base import min_similarity_config

    fields = {"tn": "min_sim", "hv": "min_sim", "dp": "bias", "offset": "min_sim"}
    for name, field in fields.items():
        assert getattr(min_similarity_config(name, 0.61), field) == 0.61
    assert min_similarity_config("tn", None) is None
    for aligner in ("tn", "dp", "hv"):
        with copytrace.open(str(tmp_path / aligner), EngineConfig(aligner=aligner)) as lib:
            visual = lib.signal("visual")
            got = getattr(visual.aligner().config, fields[aligner])
            assert got == visual.spec.aligner_min_similarity == visual.spec.threshold_similarity
    with copytrace.open(str(tmp_path / "audio")) as lib:
        audio = lib.signal("audio")
        assert audio.aligner().config.min_sim == audio.spec.aligner_min_similarity

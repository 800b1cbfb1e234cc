"""Joining audio descriptor models (train/audio_ensemble.py): one ONNX graph whose descriptor is
the members' unit descriptors concatenated / sqrt(members), so its cosine is their mean."""
from __future__ import annotations

import json
import shutil
from dataclasses import replace

import numpy as np
import pytest

from copytrace.models.audio_spec import get_audio_spec
from copytrace.recipes.audio_ensemble import join
from copytrace.runtime.audio import load_audio_encoder

from .test_audio_frontend import music_like


def _member(tmp_path, name: str, widths=(8, 16), dims: int = 32, **entry):
    """A registry folder holding a small untrained net of the shipped entry's frontend."""
    import torch

    from copytrace.models.audio_net import AudioFingerprintNet, AudioNetConfig, export_audio_onnx

    shipped = get_audio_spec()
    d = tmp_path / name
    d.mkdir()
    torch.manual_seed(len(name))
    export_audio_onnx(AudioFingerprintNet(AudioNetConfig(widths=widths, dims=dims)),
                      str(d / "ct-audio-nafp.onnx"))
    spec = replace(shipped, file="ct-audio-nafp.onnx", dims=dims, int8_file=None,
                   int8_u8_file=None, int8_source_sha256=None, cohort_file=None, **entry)
    (d / "ct-audio-nafp.json").write_text(json.dumps(spec.to_json()))
    return d


def test_joined_descriptor_is_the_scaled_concatenation(tmp_path):
    a, b = _member(tmp_path, "a"), _member(tmp_path, "bb", widths=(8, 16, 24), dims=48)
    entry, int8 = join([a, b], tmp_path / "ens", "7")
    assert not int8  # the members have no INT8 files
    spec = get_audio_spec("ct-audio-nafp", entry.parent)
    assert spec.dims == 80 and spec.cohort_file is None and len(spec.training["members"]) == 2
    x = music_like(8000, 6.0, seed=5)
    parts = [load_audio_encoder(get_audio_spec("ct-audio-nafp", d), precision="fp32")
             .embed_windows(x, 8000)[2] for d in (a, b)]
    joined = load_audio_encoder(spec, precision="fp32").embed_windows(x, 8000)[2]
    np.testing.assert_allclose(joined, np.concatenate(parts, 1) / np.sqrt(2), atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(joined, axis=1), 1.0, atol=1e-5)
    cos = joined[1:] @ joined[0]
    mean = np.mean([p[1:] @ p[0] for p in parts], axis=0)
    np.testing.assert_allclose(cos, mean, atol=1e-5)


def test_members_must_share_the_frontend(tmp_path):
    a, b = _member(tmp_path, "a"), _member(tmp_path, "b", silence_dbfs=-60.0)
    with pytest.raises(ValueError, match="silence_dbfs"):
        join([a, b], tmp_path / "ens", "7")


def test_int8_files_are_joined_when_every_member_has_them(tmp_path):
    shipped = get_audio_spec()
    members = []
    for name in ("a", "b"):
        d = tmp_path / name
        d.mkdir()
        for f in (shipped.file, shipped.int8_file, shipped.int8_u8_file):
            shutil.copy(shipped.path("fp32").parent / f, d / f)
        (d / "ct-audio-nafp.json").write_text(json.dumps(shipped.to_json()))
        members.append(d)
    entry, int8 = join(members, tmp_path / "ens", "7")
    assert int8
    spec = replace(get_audio_spec("ct-audio-nafp", entry.parent), int8_file="ct-audio-nafp.int8.onnx",
                   int8_u8_file="ct-audio-nafp.int8-u8.onnx")
    x = music_like(8000, 4.0, seed=6)
    one = load_audio_encoder(shipped, precision="int8").embed_windows(x, 8000)[2]
    both = load_audio_encoder(spec, precision="int8").embed_windows(x, 8000)[2]
    np.testing.assert_allclose(both, np.concatenate([one, one], 1) / np.sqrt(2), atol=1e-5)

"""The shipped audio fingerprint end to end on a planted copy, streaming equals whole-file
embedding, and the tiny training config trains, exports and loads on CPU."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import av
import numpy as np
import pytest

from copytrace.models.audio_spec import AudioDescriptorSpec, get_audio_spec
from copytrace.runtime.audio import load_audio_encoder
from tests.test_audio_frontend import music_like


def write_ogg(path: Path, x: np.ndarray, sr: int) -> Path:
    """Mono float samples -> Opus-in-Ogg at 48 kHz, the codec of half the train music."""
    fr = av.AudioFrame.from_ndarray(x[None].astype(np.float32), format="flt", layout="mono")
    fr.sample_rate = sr
    up = av.AudioResampler(format="flt", layout="mono", rate=48000)
    with av.open(str(path), "w", format="ogg") as out:
        st = out.add_stream("libopus", rate=48000, layout="mono")
        st.bit_rate = 48000
        for f in up.resample(fr) + up.resample(None):
            for p in st.encode(f):
                out.mux(p)
        for p in st.encode(None):
            out.mux(p)
    return path


def write_mulaw_pack(pack: Path, seeds, seconds: float) -> Path:
    """A training pack (8 kHz mu-law u8, scripts/stage_audio.py's format) of music-like
    tracks, one per seed."""
    pack.mkdir()
    pieces, parts, pos = [], [], 0
    for k, seed in enumerate(seeds):
        x = music_like(8000, seconds, seed=seed)
        y = np.sign(x) * np.log1p(255 * np.abs(x)) / np.log1p(255)
        parts.append(np.round((y + 1) * 127.5).astype(np.uint8))
        pieces.append({"track": f"t{k}", "start_s": 0.0, "offset": pos, "length": x.size})
        pos += x.size
    np.save(pack / "audio_mulaw_u8.npy", np.concatenate(parts))
    (pack / "pieces.json").write_text(json.dumps({"sample_rate": 8000, "pieces": pieces}))
    return pack


@pytest.fixture(scope="module")
def encoder():
    return load_audio_encoder(get_audio_spec(), threads=1)


def test_streamed_file_equals_whole_signal(tmp_path, encoder):
    from copytrace.media.audio import load_audio

    p = write_ogg(tmp_path / "ref.ogg", music_like(8000, 12.0, seed=3), 8000)
    s1, e1, v1 = encoder.embed_file(p, chunk_s=2.3)  # chunk borders inside windows
    x = load_audio(p, 8000)
    s2, _, v2 = encoder.embed_windows(x, 8000)
    # Times come from the stream (Opus starts a few ms late: its pre-skip), so compare steps.
    assert 0 <= s1[0] < 0.01
    assert np.allclose(s1 - s1[0], s2) and np.allclose(e1 - s1, encoder.spec.window_s)
    assert np.abs(v1 - v2).max() < 1e-4
    assert np.allclose(np.linalg.norm(v1, axis=1), 1.0, atol=1e-5)


def test_planted_noisy_excerpt_is_found(tmp_path, encoder):
    from bench.audio_index import LibraryIndex
    from copytrace.media.audio import load_audio

    spec = encoder.spec
    index = LibraryIndex(spec, threads=1)  # the engine's audio signal over a Library
    for k in range(3):
        p = write_ogg(tmp_path / f"ref{k}.ogg", music_like(8000, 25.0, seed=10 + k), 8000)
        s, _, v = encoder.embed_file(p)
        index.add(f"ref{k}", s, v)
    index.lib.flush()
    ref1 = load_audio(tmp_path / "ref1.ogg", 8000)
    rng = np.random.default_rng(0)
    q = ref1[int(7.3 * 8000) : int(11.3 * 8000)].copy()
    q += rng.standard_normal(q.size).astype(np.float32) * np.sqrt(np.mean(q**2) / 10)  # 10 dB SNR
    qs, _, qv = encoder.embed_windows(q, 8000, hop_s=spec.query_hop_s)
    # The engine's matcher: its statistic is the one the shipped threshold is calibrated on.
    hit = index.search(qs, qv)
    assert hit.track == "ref1" and abs(hit.offset_s - 7.3) <= 0.25
    assert hit.score > 0.5
    # An unregistered piece is no match.
    other = music_like(8000, 4.0, seed=99)
    qs, _, qv = encoder.embed_windows(other, 8000, hop_s=spec.query_hop_s)
    assert index.search(qs, qv).score < 0.5
    index.close()


def test_silence_is_not_indexed(encoder):
    x = np.concatenate([music_like(8000, 3.0), np.zeros(8000 * 3, np.float32)])
    s, _, v = encoder.embed_windows(x, 8000)
    assert len(v) > 0 and s.max() < 3.0


def test_wrong_rate_is_refused(encoder):
    with pytest.raises(ValueError, match="8000"):
        encoder.embed_windows(np.zeros(16000, np.float32), 16000)


def test_tiny_training_exports_a_loadable_model(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    from copytrace.train import adpcm
    from copytrace.train.audio import CONFIGS, train
    from copytrace.train.audio_export import export

    pack = write_mulaw_pack(tmp_path / "pack", seeds=range(4), seconds=6.0)
    # A second pack of other tracks in the whole-set format (4-bit ADPCM rows): both are read.
    rows = np.stack([np.round(music_like(8000, 6.0, seed=10 + k) * 20000).astype(np.int16)
                     for k in range(2)])
    adpcm_pack = tmp_path / "all_0"
    adpcm_pack.mkdir()
    np.save(adpcm_pack / "audio_adpcm4.npy", adpcm.encode(rows))
    (adpcm_pack / "pieces.json").write_text(json.dumps({
        "sample_rate": 8000, "codec": "adpcm4", "row_samples": rows.shape[1],
        "pieces": [{"track": f"a{k}", "start_s": 0.0, "row": k, "length": rows.shape[1]}
                   for k in range(2)]}))
    # The frontend's lowest frequency comes from the training configuration to the registry;
    # source-side variety draws longer chunks and resamples them (training views only).
    result = train(replace(CONFIGS["tiny"], f_min=60.0, augment={"source_speed": 0.15}),
                   [pack, adpcm_pack], tmp_path / "out")
    assert result["pack_hours"] == pytest.approx(6 * 6.0 / 3600, abs=1e-3)
    assert np.isfinite(result["history"][-1]["loss"])
    entry = export(tmp_path / "out" / "audio-tiny.pt", "ct-audio-tiny", "0", tmp_path / "w", 0.5, 0.1)
    spec = AudioDescriptorSpec.from_file(entry)
    assert spec.f_min == 60.0 and spec.mel_config().f_min == 60.0
    enc = load_audio_encoder(spec)
    s, _, v = enc.embed_windows(music_like(8000, 3.0, seed=5), 8000)
    assert v.shape == (len(s), spec.dims) and np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-5)


def test_training_noise_snr_is_set_on_audible_power():
    """A DC offset (some masters carry a large one) is not sound: the background is scaled to
    the music's power above 20 Hz, so a "5 dB" positive is 5 dB whatever the offset."""
    torch = pytest.importorskip("torch")
    from copytrace.train.audio_augment import AugmentConfig, add_noise, audible_power

    cfg = AugmentConfig(snr_db=(5.0, 5.0), p_wobble=0.0)
    music = torch.from_numpy(np.stack([music_like(8000, 1.0, seed=k) for k in range(4)])).float()
    x = music * 0.3 + torch.tensor([0.0, 0.4, -0.4, 0.8])[:, None]
    y = add_noise(x, music.flip(0), cfg)
    snr_db = 10 * torch.log10(audible_power(x, 8000) / audible_power(y - x, 8000))
    assert torch.allclose(snr_db, torch.full((4,), 5.0), atol=0.05)


def test_source_variety_changes_tempo_and_key_around_the_centre():
    """A 1 kHz tone resampled by rate r reads r kHz, over the requested length, centred."""
    torch = pytest.importorskip("torch")
    from copytrace.train.audio_augment import AugmentConfig, vary_source

    cfg = AugmentConfig(source_speed=0.15, p_source_speed=1.0)
    t = torch.arange(12000) / 8000
    x = torch.sin(2 * np.pi * 1000 * t).repeat(64, 1)
    y = vary_source(x, 8000, cfg)
    assert y.shape == (64, 8000)
    freq = torch.fft.rfft(y * torch.hann_window(8000)).abs().argmax(1).float()  # 1 Hz bins
    rate = freq / 1000
    assert float(rate.min()) >= 1 / 1.15 - 0.01 and float(rate.max()) <= 1.15 + 0.01
    assert float(rate.max() - rate.min()) > 0.1  # rates really vary
    still = vary_source(x, 8000, AugmentConfig(source_speed=0.15, p_source_speed=0.0))
    assert torch.allclose(still, x[:, 2000:10000], atol=1e-4)  # rate 1: the centre, untouched


def test_adpcm_round_trip_is_close_and_decoder_matches_the_sequential_one():
    from copytrace.train import adpcm

    x = np.stack([np.round(music_like(8000, 2.0, seed=k) * 30000).astype(np.int16) for k in range(3)])
    x[2, 100:140] = 32767  # a clipped burst: the fast decoder must fall back exactly
    packed = adpcm.encode(x)
    assert packed.shape == (3, x.shape[1] // 2) and packed.dtype == np.uint8
    y = adpcm.decode(packed)
    err = (y.astype(float) - x) ** 2
    snr = 10 * np.log10((x.astype(float) ** 2).mean(axis=1) / err.mean(axis=1))
    assert snr.min() > 12.0
    # Sample-by-sample reference decoder (the spec's loop).
    codes = np.empty(x.shape, np.int32)
    codes[:, 0::2], codes[:, 1::2] = packed & 15, packed >> 4
    pred, idx = np.zeros(3, np.int64), np.zeros(3, np.int32)
    for t in range(x.shape[1]):
        pred = np.clip(pred + adpcm._reconstruct(codes[:, t], adpcm.STEPS[idx]), -32768, 32767)
        idx = np.clip(idx + adpcm.INDEX_STEP[codes[:, t] & 7], 0, 88)
        assert np.array_equal(y[:, t], pred)


def test_hard_partners_are_the_closest_non_repeat_of_the_same_piece(tmp_path):
    """A looped phrase whose repeats differ by a quiet layer: each window's mined partner is,
    by an independent numpy computation, the most similar window of its piece at least 1 s
    away short of an exact repeat (log-mel correlation >= 0.9); exact copies are skipped."""
    torch = pytest.importorskip("torch")
    from copytrace.models.audio_frontend import MelConfig, MelFrontend
    from copytrace.models.audio_net import TorchMelFrontend
    from copytrace.train.audio import REPEAT_CORR, PackSampler, _chunk_n, mine_partners

    phrase = music_like(8000, 2.0, seed=3)
    layer = music_like(8000, 2.0, seed=4)
    # A B A B ...: A repeats exactly every 4 s, B is A plus a quiet layer, 2 s away.
    x = np.concatenate([phrase + (0.35 * layer if k % 2 else 0) for k in range(5)])
    pack = tmp_path / "p"
    pack.mkdir()
    y = np.sign(x) * np.log1p(255 * np.abs(x)) / np.log1p(255)
    np.save(pack / "audio_mulaw_u8.npy", np.round((y + 1) * 127.5).astype(np.uint8))
    (pack / "pieces.json").write_text(json.dumps({"sample_rate": 8000, "pieces": [
        {"track": "loop", "start_s": 0.0, "offset": 0, "length": x.size}]}))
    cfg = MelConfig(f_min=60.0)
    chunk_n = _chunk_n(cfg)
    sampler = PackSampler([pack], chunk_n, torch.device("cpu"), val_tracks=0, rng_seed=0)
    margin = (chunk_n - cfg.window_samples) // 2
    first, partner = mine_partners(sampler, TorchMelFrontend(cfg), sampler.train, 800, margin, 8000)
    assert int(first[0]) == 0 and len(partner) == -(-int(sampler.train[1][0]) // 800)

    fe = MelFrontend(cfg)
    decoded = sampler.data.float().numpy()
    wins = np.stack([fe.log_mel(decoded[margin + 800 * k : margin + 800 * k + cfg.window_samples]).ravel()
                     for k in range(len(partner))])
    wins -= wins.mean(1, keepdims=True)
    wins /= np.linalg.norm(wins, axis=1, keepdims=True)
    corr = wins @ wins.T
    k = np.arange(len(partner))
    allowed = (np.abs(k[:, None] - k[None]) >= 10) & (corr < REPEAT_CORR)
    want = np.where(allowed, corr, -2).argmax(1)
    got = partner.numpy()
    assert (np.abs(got - k) >= 10).all()
    assert (corr[k, got] < REPEAT_CORR).all()
    # the float16 pack and float32 frontends may swap near-ties; never by more than a hair
    assert np.allclose(corr[k, got], corr[k, want], atol=2e-3)
    exact = (corr >= REPEAT_CORR) & (np.abs(k[:, None] - k[None]) >= 10)
    assert exact.any(), "the loop holds exact repeats (A every 4 s)"
    # the partners are the varied repeats, 2 s (20 slots) or 6 s away
    assert np.isin(np.abs(got - k) % 20, [0, 1, 19]).mean() > 0.8


def test_tiny_training_with_hard_partners_and_a_longer_fft(tmp_path):
    """Hard partners train and validate; the frontend's FFT length and window frames travel
    from the training configuration to the registry entry, and the encoder embeds with them."""
    pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    from copytrace.train.audio import CONFIGS, train
    from copytrace.train.audio_export import export

    pack = write_mulaw_pack(tmp_path / "pack", seeds=range(4), seconds=6.0)
    cfg = replace(CONFIGS["tiny"], f_min=60.0, hard_frac=0.5, n_fft=1024, window_frames=71)
    result = train(cfg, [pack], tmp_path / "out")
    last = result["history"][-1]
    assert np.isfinite(last["loss"]) and 0 <= last["val_hard"] <= 1
    entry = export(tmp_path / "out" / "audio-tiny.pt", "ct-audio-tiny", "0", tmp_path / "w", 0.5, 0.1)
    spec = AudioDescriptorSpec.from_file(entry)
    assert (spec.n_fft, spec.window_frames) == (1024, 71)
    assert spec.window_s == pytest.approx((70 * 100 + 1024) / 8000, abs=1e-6)
    s, e, v = load_audio_encoder(spec).embed_windows(music_like(8000, 3.0, seed=5), 8000)
    assert v.shape == (len(s), spec.dims) and np.allclose(e - s, spec.window_s, atol=1e-6)

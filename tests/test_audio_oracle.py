"""The clean-reference matchers of bench/audio_oracle.py: both place an excerpt of a looped
piece at its own repeat of the loop, not at the other repeats, under noise."""
import importlib
from pathlib import Path

import numpy as np

SR = 8000


def _looped_piece(rng) -> tuple[np.ndarray, int]:
    """Eight repeats of a 1.5 s phrase; the sixth carries an extra melody line. -> (samples,
    first sample of the sixth repeat)."""
    t = np.arange(int(1.5 * SR)) / SR
    phrase = sum(np.sin(2 * np.pi * f * t) * (np.sin(np.pi * t * k / 1.5) ** 2)
                 for k, f in enumerate((220.0, 330.0, 440.0, 554.0), 1)).astype(np.float32)
    reps = [phrase.copy() for _ in range(8)]
    reps[5] += 0.5 * np.sin(2 * np.pi * 880.0 * t * (1 + 0.2 * t)).astype(np.float32)
    return np.concatenate(reps) + 0.01 * rng.standard_normal(8 * t.size).astype(np.float32), 5 * t.size


def test_clean_reference_matchers_find_the_varied_repeat(monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "bench"))
    oracle = importlib.import_module("audio_oracle")
    from copytrace.models.audio_frontend import MelFrontend

    rng = np.random.default_rng(0)
    track, at = _looped_piece(rng)
    q = track[at: at + int(1.5 * SR)]
    q = q + 0.3 * np.std(q) * rng.standard_normal(q.size).astype(np.float32)
    wv = oracle.wave_corr(q, track)
    assert wv.size == track.size - q.size + 1
    assert abs(int(np.argmax(wv)) - at) <= 2
    fe = MelFrontend()
    lm = oracle.logmel_corr(oracle.floored_log_mel(fe, q), oracle.floored_log_mel(fe, track))
    assert abs(int(np.argmax(lm)) * fe.cfg.frame_s - at / SR) <= 0.05
    assert lm.max() <= 1.0 + 1e-6 and wv.max() <= 1.0 + 1e-6

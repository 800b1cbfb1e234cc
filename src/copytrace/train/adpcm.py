"""4-bit IMA ADPCM in numpy, vectorised over rows: how the whole train music (~10 h at 8 kHz)
travels to the GPU in three 64 MiB calls instead of six as mu-law bytes.

The codec is the standard IMA/DVI one (89-step table, 4-bit codes, ~30 dB SNR on music),
which is far cleaner than the 0-10 dB noise the positives are trained under. Rows are coded
independently (each starts from predictor 0, step index 0) and two codes share a byte.
"""
from __future__ import annotations

import numpy as np

STEPS = np.array([
    7, 8, 9, 10, 11, 12, 13, 14, 16, 17, 19, 21, 23, 25, 28, 31, 34, 37, 41, 45, 50, 55, 60,
    66, 73, 80, 88, 97, 107, 118, 130, 143, 157, 173, 190, 209, 230, 253, 279, 307, 337, 371,
    408, 449, 494, 544, 598, 658, 724, 796, 876, 963, 1060, 1166, 1282, 1411, 1552, 1707, 1878,
    2066, 2272, 2499, 2749, 3024, 3327, 3660, 4026, 4428, 4871, 5358, 5894, 6484, 7132, 7845,
    8630, 9493, 10442, 11487, 12635, 13899, 15289, 16818, 18500, 20350, 22385, 24623, 27086,
    29794, 32767,
], dtype=np.int32)
INDEX_STEP = np.array([-1, -1, -1, -1, 2, 4, 6, 8], dtype=np.int32)


def _reconstruct(code: np.ndarray, step: np.ndarray) -> np.ndarray:
    """The decoder's difference for 4-bit ``code`` at ``step`` (integer arithmetic of the spec)."""
    diff = step >> 3
    diff = diff + np.where(code & 4, step, 0)
    diff = diff + np.where(code & 2, step >> 1, 0)
    diff = diff + np.where(code & 1, step >> 2, 0)
    return np.where(code & 8, -diff, diff)


def encode(x: np.ndarray) -> np.ndarray:
    """int16 [rows, n] (n even) -> uint8 [rows, n // 2]: two 4-bit codes per byte."""
    if x.ndim != 2 or x.shape[1] % 2:
        raise ValueError("encode takes int16 [rows, n] with n even")
    rows, n = x.shape
    pred = np.zeros(rows, np.int32)
    idx = np.zeros(rows, np.int32)
    codes = np.empty((rows, n), np.uint8)
    xs = x.astype(np.int32)
    for t in range(n):
        step = STEPS[idx]
        diff = xs[:, t] - pred
        sign = np.where(diff < 0, 8, 0)
        mag = np.abs(diff)
        code = sign.copy()
        for bit, s in ((4, step), (2, step >> 1), (1, step >> 2)):
            on = mag >= s
            code |= np.where(on, bit, 0)
            mag = np.where(on, mag - s, mag)
        pred = np.clip(pred + _reconstruct(code, step), -32768, 32767)
        idx = np.clip(idx + INDEX_STEP[code & 7], 0, 88)
        codes[:, t] = code
    return (codes[:, 0::2] | (codes[:, 1::2] << 4)).astype(np.uint8)


def decode(packed: np.ndarray) -> np.ndarray:
    """uint8 [rows, n // 2] -> int16 [rows, n].

    The step index depends on the codes alone, so only its clipped running sum is a loop; the
    predictor is then a cumulative sum, exact unless it would have clipped at the int16 range
    (rows where it does are decoded again sample by sample)."""
    rows, half = packed.shape
    codes = np.empty((rows, 2 * half), np.int32)
    codes[:, 0::2] = packed & 15
    codes[:, 1::2] = packed >> 4
    moves = INDEX_STEP[codes & 7]
    idx = np.empty_like(codes)
    cur = np.zeros(rows, np.int32)
    for t in range(codes.shape[1]):
        idx[:, t] = cur
        cur = np.clip(cur + moves[:, t], 0, 88)
    pred = np.cumsum(_reconstruct(codes, STEPS[idx]), axis=1, dtype=np.int64)
    out = np.clip(pred, -32768, 32767).astype(np.int16)
    for r in np.flatnonzero((pred != out).any(axis=1)):
        p = 0
        for t in range(codes.shape[1]):
            p = min(32767, max(-32768, p + int(_reconstruct(codes[r, t], STEPS[idx[r, t]]))))
            out[r, t] = p
    return out

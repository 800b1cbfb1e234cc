"""Units, k-gram hashes and winnowing (Schleimer, Wilkerson and Aiken, SIGMOD 2003).

A text is read as a sequence of units: every CJK character is a unit, every run of other word
characters (a Latin-script word, a number) is a unit. So Chinese gets character n-grams and
English word shingles from one code path, and mixed text works too. A k-gram is k consecutive
units; its 64-bit hash is position-independent.

Winnowing keeps, from every window of ``w`` consecutive k-gram hashes, the minimum (the
rightmost one on ties), recording each selected position once. Guarantee: two texts that share a
run of at least ``t = w + k - 1`` units share at least one selected hash, because the run holds a
whole window, and both texts select that window's minimum. A text shorter than one window keeps
its smallest k-gram, so short poems are still indexed.

Everything is vectorised in numpy (uint64 arithmetic wraps modulo 2**64, which is what the
polynomial hashes want), so fingerprinting runs at tens of millions of characters a second.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from copytrace.text.normalize import CJK, SPACE, Normalized

_P = np.uint64(0x100000001B3)  # FNV prime: odd, so invertible modulo 2**64
_Q = np.uint64(0x9E3779B97F4A7C15)


@dataclass(frozen=True)
class Units:
    """``hashes[u]`` (uint64) of unit ``u``, covering normalised characters
    ``start[u]``..``end[u]`` (end exclusive)."""

    hashes: np.ndarray
    start: np.ndarray
    end: np.ndarray

    def __len__(self) -> int:
        return len(self.hashes)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: spreads every input bit over the output (uint64 in, out)."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def units(norm: Normalized) -> Units:
    """Split a normalised text into units and hash each one."""
    kind = norm.kind
    n = len(kind)
    if n == 0:
        empty = np.zeros(0, dtype=np.int64)
        return Units(np.zeros(0, dtype=np.uint64), empty, empty.copy())
    is_word = (kind != SPACE) & (kind != CJK)
    # a unit starts at every CJK char and at every word char not preceded by a word char
    prev_word = np.concatenate(([False], is_word[:-1]))
    starts = np.flatnonzero((kind == CJK) | (is_word & ~prev_word))
    next_word = np.concatenate((is_word[1:], [False]))
    word_ends = np.flatnonzero(is_word & ~next_word) + 1
    ends = np.empty_like(starts)
    cjk = kind[starts] == CJK
    ends[cjk] = starts[cjk] + 1
    ends[~cjk] = word_ends  # word runs in order, one end per start
    # position-independent polynomial hash of each unit: sum c[j] * P**(j - start)
    codes = norm.codes.astype(np.uint64) + np.uint64(1)
    with np.errstate(over="ignore"):
        powers = np.ones(n, dtype=np.uint64)  # P**0 .. P**(n-1)
        if n > 1:
            powers[1:] = np.cumprod(np.full(n - 1, _P, dtype=np.uint64))
        inv = _inverse(_P)
        inv_powers = np.ones(n, dtype=np.uint64)
        if n > 1:
            inv_powers[1:] = np.cumprod(np.full(n - 1, inv, dtype=np.uint64))
        prefix = np.concatenate(([np.uint64(0)], np.cumsum(codes * powers, dtype=np.uint64)))
        h = (prefix[ends] - prefix[starts]) * inv_powers[starts]
        h = _mix(h + (ends - starts).astype(np.uint64) * _Q)
    return Units(h, starts.astype(np.int64), ends.astype(np.int64))


def _inverse(a: np.uint64) -> np.uint64:
    """a**-1 modulo 2**64 for odd a (Newton's iteration)."""
    a_int = int(a)
    x = a_int
    for _ in range(6):
        x = (x * (2 - a_int * x)) % (1 << 64)
    return np.uint64(x)


def kgram_hashes(unit_hashes: np.ndarray, k: int) -> np.ndarray:
    """Hash of units i..i+k-1 for every i (uint64, length max(0, n - k + 1))."""
    n = len(unit_hashes) - k + 1
    if n <= 0:
        return np.zeros(0, dtype=np.uint64)
    g = np.zeros(n, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for m in range(k):
            g = g * _Q + unit_hashes[m:m + n]
        return _mix(g)


def bag_hashes(unit_hashes: np.ndarray, k: int) -> np.ndarray:
    """Order-free hash of units i..i+k-1 for every i: equal for any order of the same units,
    so a seed survives words swapped inside it (uint64, length max(0, n - k + 1))."""
    n = len(unit_hashes) - k + 1
    if n <= 0:
        return np.zeros(0, dtype=np.uint64)
    with np.errstate(over="ignore"):
        c = np.concatenate(([np.uint64(0)], np.cumsum(unit_hashes, dtype=np.uint64)))
        return _mix(c[k:] - c[:-k] + np.uint64(k))


def winnow(hashes: np.ndarray, w: int) -> np.ndarray:
    """Positions selected by robust winnowing (sorted, each once): the rightmost minimum of
    every window of ``w`` hashes; a sequence shorter than ``w`` gives its rightmost minimum."""
    n = len(hashes)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    if n <= w:
        return np.array([n - 1 - int(np.argmin(hashes[::-1]))], dtype=np.int64)
    win = sliding_window_view(hashes, w)
    # rightmost minimum: argmin over each window reversed
    pick = (w - 1) - np.argmin(win[:, ::-1], axis=1)
    pos = np.arange(len(win), dtype=np.int64) + pick
    # consecutive windows never pick an earlier position (a minimum stays picked until it
    # leaves the window, and ties go right), so repeats are adjacent
    return pos[np.concatenate(([True], pos[1:] != pos[:-1]))]


def as_signed(h: np.ndarray) -> np.ndarray:
    """uint64 hashes as int64 (SQLite and sorting want signed)."""
    return h.view(np.int64)

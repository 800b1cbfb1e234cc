"""A text as every stage sees it: decoded, normalised, cut into units, fingerprinted; and the
mapping of aligned passages back to code points of the original file."""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from copytrace.text.align import AlignConfig, Passage, align
from copytrace.text.decode import DecodedText
from copytrace.text.fingerprint import Units, bag_hashes, kgram_hashes, units, winnow
from copytrace.text.normalize import Normalized, char_keys, normalize


@dataclass(frozen=True)
class FingerprintConfig:
    """Winnowing: k-grams of ``k`` units, windows of ``w`` k-grams; every shared run of at
    least ``k + w - 1`` units is guaranteed a shared fingerprint."""

    k: int = 3
    w: int = 5

    def __post_init__(self) -> None:
        if self.k < 1 or self.w < 1:
            raise ValueError(f"FingerprintConfig needs k >= 1 and w >= 1, got {self}")

    @property
    def guarantee_units(self) -> int:
        return self.k + self.w - 1


@dataclass(frozen=True)
class TextSpan:
    """A passage in code points of two originals (ends exclusive), with its evidence."""

    query_start_char: int
    query_end_char: int
    ref_start_char: int
    ref_end_char: int
    matched_chars: int
    matched_units: int


class TextDocument:
    def __init__(self, decoded: DecodedText) -> None:
        self.decoded = decoded

    @classmethod
    def from_string(cls, text: str, fmt: str = "txt") -> TextDocument:
        return cls(DecodedText(text, fmt, "utf-8"))

    @property
    def text(self) -> str:
        return self.decoded.text

    @cached_property
    def norm(self) -> Normalized:
        return normalize(self.decoded.text)

    @cached_property
    def units(self) -> Units:
        return units(self.norm)

    @cached_property
    def unit_chars(self) -> np.ndarray:
        """Normalised character where each unit starts, then the end of the last one."""
        u = self.units
        if len(u) == 0:
            return np.zeros(1, dtype=np.int64)
        return np.concatenate((u.start, [u.end[-1]]))

    @cached_property
    def keys(self) -> np.ndarray:
        return char_keys(self.decoded.text)

    def fingerprints(self, cfg: FingerprintConfig) -> tuple[np.ndarray, np.ndarray]:
        """(hashes int64, first unit of each k-gram) selected by winnowing."""
        g = kgram_hashes(self.units.hashes, cfg.k)
        pos = winnow(g, cfg.w)
        return g[pos].view(np.int64), pos

    def unit_text_offsets(self, unit_pos: np.ndarray) -> np.ndarray:
        """Where units start, in code points of ``text`` (the decoded text)."""
        return self.norm.orig[self.units.start[np.asarray(unit_pos, np.int64)]]

    def all_kgrams(self, cfg: FingerprintConfig) -> np.ndarray:
        return kgram_hashes(self.units.hashes, cfg.k).view(np.int64)

    def seed_kgrams(self, k: int) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
        """(order-free k-gram hashes, (sorted hashes, sorting order)), once per k: alignment
        seeds (``fingerprint.bag_hashes``), so swapped words do not break them."""
        cache = self.__dict__.setdefault("_seed_kgrams", {})
        if k not in cache:
            g = bag_hashes(self.units.hashes, k)
            order = np.argsort(g, kind="stable")
            cache[k] = (g, (g[order], order))
        return cache[k]

    def unit_span_chars(self, u0: int, u1: int) -> tuple[int, int]:
        """Units u0..u1 (end exclusive) as code points of the decoded text."""
        u = self.units
        c0, c1 = int(u.start[u0]), int(u.end[u1 - 1])
        orig = self.norm.orig
        return int(orig[c0]), int(orig[c1 - 1]) + 1


_SPACE_KEY = 0x20  # every whitespace character's key (normalize.char_keys)


def _grow(qk: np.ndarray, rk: np.ndarray, q: int, r: int, step: int, limit: int = 256
          ) -> tuple[int, int]:
    """Move a boundary (query ``q``, reference ``r``) by ``step`` while the originals agree
    (width, case and script folded), at most ``limit`` characters; a run of whitespace on both
    sides counts as equal whatever its length (HTML's ``<br>`` and a newline, re-wrapped
    lines).

    What lies beyond a whitespace run the boundary crossed is kept only if the query ends
    there too (its edge or whitespace next): a copy that begins inside a word or a table rule
    of the reference begins after a space or a paragraph break of the query, while filler
    before a copy that agrees by chance with the text before the original ("boats. " and
    "goats. ", "了。" and "的。") leaves the query in the middle of its text."""
    n = 0
    nq, nr = len(qk), len(rk)
    safe: tuple[int, int] | None = None  # where the boundary was before the last space run
    if step < 0:
        while n < limit and q > 0 and r > 0:
            if qk[q - 1] == _SPACE_KEY and rk[r - 1] == _SPACE_KEY:
                safe = (q, r)
                while q > 0 and qk[q - 1] == _SPACE_KEY:
                    q -= 1
                while r > 0 and rk[r - 1] == _SPACE_KEY:
                    r -= 1
            elif qk[q - 1] == rk[r - 1]:
                q, r = q - 1, r - 1
            else:
                break
            n += 1
        query_ends = q == 0 or qk[q - 1] == _SPACE_KEY
    else:
        while n < limit and q < nq and r < nr:
            if qk[q] == _SPACE_KEY and rk[r] == _SPACE_KEY:
                safe = (q, r)
                while q < nq and qk[q] == _SPACE_KEY:
                    q += 1
                while r < nr and rk[r] == _SPACE_KEY:
                    r += 1
            elif qk[q] == rk[r]:
                q, r = q + 1, r + 1
            else:
                break
            n += 1
        query_ends = q == nq or qk[q] == _SPACE_KEY
    if safe is not None and not query_ends:
        return safe
    return q, r


def _trim(text: str, s: int, e: int) -> tuple[int, int]:
    while s < e and text[s].isspace():
        s += 1
    while e > s and text[e - 1].isspace():
        e -= 1
    return s, e


def passage_span(q: TextDocument, r: TextDocument, p: Passage) -> TextSpan:
    """A passage in code points of the original files (HTML: of the source markup).

    Its first and last runs are grown character by character where both originals agree, so
    a copy that starts inside a word, or ends with punctuation normalisation ignores, is
    reported to the character; surrounding whitespace is trimmed."""
    qs, qe = q.unit_span_chars(p.q0, p.q1)
    rs, re_ = r.unit_span_chars(p.r0, p.r1)
    head_r = r.unit_span_chars(p.head[1], p.head[1] + 1)[0]
    tail_r = r.unit_span_chars(p.tail[1] - 1, p.tail[1])[1]
    qs, head_r = _grow(q.keys, r.keys, qs, head_r, -1)
    qe, tail_r = _grow(q.keys, r.keys, qe, tail_r, +1)
    rs, re_ = min(rs, head_r), max(re_, tail_r)
    qs, qe = _trim(q.text, qs, qe)
    rs, re_ = _trim(r.text, rs, re_)
    qo = q.decoded.to_source(np.array([qs, qe]))
    ro = r.decoded.to_source(np.array([rs, re_]))
    return TextSpan(int(qo[0]), int(qo[1]), int(ro[0]), int(ro[1]), p.matched_chars, p.matched)


def align_documents(q: TextDocument, r: TextDocument, cfg: AlignConfig,
                    q_mask: np.ndarray | None = None) -> list[TextSpan]:
    qg, q_sorted = q.seed_kgrams(cfg.seed_k)
    rg = bag_hashes(r.units.hashes, cfg.seed_k)
    passages = align(qg, rg, q.unit_chars, cfg, q_mask, q_sorted)
    return [passage_span(q, r, p) for p in passages]

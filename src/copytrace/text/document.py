"""A text as every stage sees it: decoded, normalised, cut into units, fingerprinted; and the
mapping of aligned passages back to code points of the original file."""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from copytrace.text.align import AlignConfig, Passage, align, kgram_counts, passage_of
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
        g = self.all_kgrams(cfg)
        pos = winnow(g.view(np.uint64), cfg.w)
        return g[pos], pos

    def unit_text_offsets(self, unit_pos: np.ndarray) -> np.ndarray:
        """Where units start, in code points of ``text`` (the decoded text)."""
        return self.norm.orig[self.units.start[np.asarray(unit_pos, np.int64)]]

    def all_kgrams(self, cfg: FingerprintConfig) -> np.ndarray:
        """Every k-gram's hash (int64), once per k: search looks up all of a query's k-grams
        and its near-duplicate signature takes the winnowed ones."""
        cache = self.__dict__.setdefault("_kgrams", {})
        if cfg.k not in cache:
            cache[cfg.k] = kgram_hashes(self.units.hashes, cfg.k).view(np.int64)
        return cache[cfg.k]

    def seed_kgrams(self, k: int) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
        """(order-free k-gram hashes, (sorted hashes, sorting order)), once per k: alignment
        seeds (``fingerprint.bag_hashes``), so swapped words do not break them."""
        cache = self.__dict__.setdefault("_seed_kgrams", {})
        if k not in cache:
            g = bag_hashes(self.units.hashes, k)
            order = np.argsort(g, kind="stable")
            cache[k] = (g, (g[order], order))
        return cache[k]

    def seed_kgram_counts(self, k: int) -> np.ndarray:
        """How often each position's order-free k-gram occurs in the text."""
        cache = self.__dict__.setdefault("_seed_counts", {})
        if k not in cache:
            cache[k] = kgram_counts(self.seed_kgrams(k)[0])
        return cache[k]

    def masked_seed_kgrams(self, k: int, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(hashes, positions) of the order-free k-grams at the positions ``mask`` keeps,
        sorted by hash."""
        g = self.seed_kgrams(k)[0]
        idx = np.flatnonzero(mask[:len(g)])
        order = np.argsort(g[idx], kind="stable")
        return g[idx][order], idx[order]

    def unit_span_chars(self, u0: int, u1: int) -> tuple[int, int]:
        """Units u0..u1 (end exclusive) as code points of the decoded text."""
        u = self.units
        c0, c1 = int(u.start[u0]), int(u.end[u1 - 1])
        orig = self.norm.orig
        return int(orig[c0]), int(orig[c1 - 1]) + 1


_SPACE_KEY = 0x20  # every whitespace character's key (normalize.char_keys)


_LINE_BREAKS = frozenset("\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")


def _breaks(text: str, a: int, b: int) -> bool:
    return not _LINE_BREAKS.isdisjoint(text[a:b])


def _grow(q: TextDocument, r: TextDocument, qi: int, ri: int, step: int, limit: int = 256
          ) -> tuple[int, int]:
    """Move a boundary (query ``qi``, reference ``ri``) by ``step`` while the originals agree
    (width, case and script folded), at most ``limit`` characters; a run of whitespace on both
    sides counts as equal whatever its length if both or neither break the line (HTML's
    ``<br>`` and a newline, re-wrapped lines; not a paragraph break and a space).

    What lies beyond a whitespace run the boundary crossed is kept only if the query ends
    there too (its edge or whitespace next): a copy that begins inside a word or a table rule
    of the reference begins after a space or a paragraph break of the query, while filler
    before a copy that agrees by chance with the text before the original ("boats. " and
    "goats. ", "了。" and "的。") leaves the query in the middle of its text."""
    qk, rk = q.keys, r.keys
    n = 0
    nq, nr = len(qk), len(rk)
    safe: tuple[int, int] | None = None  # where the boundary was before the last space run
    if step < 0:
        while n < limit and qi > 0 and ri > 0:
            if qk[qi - 1] == _SPACE_KEY and rk[ri - 1] == _SPACE_KEY:
                q0, r0 = qi, ri
                while qi > 0 and qk[qi - 1] == _SPACE_KEY:
                    qi -= 1
                while ri > 0 and rk[ri - 1] == _SPACE_KEY:
                    ri -= 1
                safe = (q0, r0)
                if _breaks(q.text, qi, q0) != _breaks(r.text, ri, r0):
                    qi, ri = safe
                    break
            elif qk[qi - 1] == rk[ri - 1]:
                qi, ri = qi - 1, ri - 1
            else:
                break
            n += 1
        query_ends = qi == 0 or qk[qi - 1] == _SPACE_KEY
    else:
        while n < limit and qi < nq and ri < nr:
            if qk[qi] == _SPACE_KEY and rk[ri] == _SPACE_KEY:
                q0, r0 = qi, ri
                while qi < nq and qk[qi] == _SPACE_KEY:
                    qi += 1
                while ri < nr and rk[ri] == _SPACE_KEY:
                    ri += 1
                safe = (q0, r0)
                if _breaks(q.text, q0, qi) != _breaks(r.text, r0, ri):
                    qi, ri = safe
                    break
            elif qk[qi] == rk[ri]:
                qi, ri = qi + 1, ri + 1
            else:
                break
            n += 1
        query_ends = qi == nq or qk[qi] == _SPACE_KEY
    if safe is not None and (qi, ri) != safe and not query_ends:
        return safe
    return qi, ri


def _trim(text: str, s: int, e: int) -> tuple[int, int]:
    while s < e and text[s].isspace():
        s += 1
    while e > s and text[e - 1].isspace():
        e -= 1
    return s, e


def _breaks_after(doc: TextDocument, u: int) -> bool:
    """Whether the original text between units ``u`` and ``u + 1`` breaks the line."""
    units, orig = doc.units, doc.norm.orig
    return _breaks(doc.text, int(orig[units.end[u] - 1]) + 1, int(orig[units.start[u + 1]]))


def _cut_edges_across_breaks(q: TextDocument, r: TextDocument, p: Passage, k: int) -> Passage:
    """Units at the edge of a passage that one text sets apart by a line break and the other
    does not are dropped (at most ``k - 1``, what a k-gram seed can take along by chance): the
    paragraph after a copy that begins "And" runs on in the original as " And God said"."""
    rows = list(p.runs)
    i_first = min(range(len(rows)), key=lambda i: (rows[i][0], -rows[i][1]))
    i_last = max(range(len(rows)), key=lambda i: (rows[i][1], -rows[i][0]))
    q0, q1, r0, r1 = rows[i_last]
    cut = max([j for j in range(1, k) if q1 - j - 1 >= q0 and r1 - j - 1 >= r0
               and _breaks_after(q, q1 - j - 1) != _breaks_after(r, r1 - j - 1)], default=0)
    rows[i_last] = (q0, q1 - cut, r0, r1 - cut)
    q0, q1, r0, r1 = rows[i_first]
    cut = max([j for j in range(1, k) if q0 + j < q1 and r0 + j < r1
               and _breaks_after(q, q0 + j - 1) != _breaks_after(r, r0 + j - 1)], default=0)
    rows[i_first] = (q0 + cut, q1, r0 + cut, r1)
    if rows == list(p.runs):
        return p
    return passage_of(rows, q.unit_chars)


def passage_span(q: TextDocument, r: TextDocument, p: Passage, k: int) -> TextSpan:
    """A passage in code points of the original files (HTML: of the source markup).

    Its edge units across a line break only one text has are dropped; its first and last
    runs are then grown character by character where both originals agree, so a copy that
    starts inside a word, or ends with punctuation normalisation ignores, is reported to the
    character; surrounding whitespace is trimmed."""
    p = _cut_edges_across_breaks(q, r, p, k)
    qs, qe = q.unit_span_chars(p.q0, p.q1)
    rs, re_ = r.unit_span_chars(p.r0, p.r1)
    head_r = r.unit_span_chars(p.head[1], p.head[1] + 1)[0]
    tail_r = r.unit_span_chars(p.tail[1] - 1, p.tail[1])[1]
    qs, head_r = _grow(q, r, qs, head_r, -1)
    qe, tail_r = _grow(q, r, qe, tail_r, +1)
    rs, re_ = min(rs, head_r), max(re_, tail_r)
    qs, qe = _trim(q.text, qs, qe)
    rs, re_ = _trim(r.text, rs, re_)
    qo = q.decoded.to_source(np.array([qs, qe]))
    ro = r.decoded.to_source(np.array([rs, re_]))
    return TextSpan(int(qo[0]), int(qo[1]), int(ro[0]), int(ro[1]), p.matched_chars, p.matched)


def align_documents(q: TextDocument, r: TextDocument, cfg: AlignConfig,
                    q_mask: np.ndarray | None = None,
                    q_masked: tuple[np.ndarray, np.ndarray] | None = None) -> list[TextSpan]:
    """Passages of ``q`` copied from ``r``; ``q_masked``: ``q.masked_seed_kgrams`` of
    ``q_mask`` (a long query aligned with many windows sorts its masked part once)."""
    qg, q_sorted = q.seed_kgrams(cfg.seed_k)
    q_freq = None
    if q_masked is not None:
        q_sorted, q_freq = q_masked, q.seed_kgram_counts(cfg.seed_k)
    rg = bag_hashes(r.units.hashes, cfg.seed_k)
    passages = align(qg, rg, q.unit_chars, cfg, q_mask, q_sorted, q_freq)
    return [passage_span(q, r, p, cfg.seed_k) for p in passages]

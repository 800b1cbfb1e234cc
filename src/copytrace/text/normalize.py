"""Text normalisation with an exact map back to the original code points.

Every code point is mapped on its own through one table (built once per process): NFKC
(full-width to half-width, compatibility forms), case folding, combining marks dropped,
Traditional to Simplified Chinese character by character (OpenCC's ``t2s`` dictionary applied
to single characters, so the mapping never changes a text's length or depends on context),
punctuation and whitespace to a separator. Separators collapse to one space between Latin-script
words and vanish next to CJK characters (Chinese has no spaces; inserted ones are noise).

Because each output character comes from exactly one input code point, ``Normalized.orig[i]``
is the original index of normalised character ``i``: results computed on the normalised text
point back into the text the user holds. The table lookup runs in numpy, so normalising costs
a few nanoseconds per character.
"""
from __future__ import annotations

import functools
import unicodedata
from dataclasses import dataclass

import numpy as np

# Output classes of the table.
DROP, SPACE, WORD, CJK = 0, 1, 2, 3
_MAX_CP = 0x110000
_MULTI = -2  # the code point expands to several characters (e.g. "ﬁ" -> "fi", "ß" -> "ss")


@dataclass(frozen=True)
class Normalized:
    """``text``: the normalised string; ``codes``: its code points (uint32); ``kind``: each
    character's class (SPACE, WORD or CJK); ``orig``: each character's index in the original
    string (int64, non-decreasing)."""

    text: str
    codes: np.ndarray
    kind: np.ndarray
    orig: np.ndarray

    def __len__(self) -> int:
        return len(self.codes)


def _is_cjk(cp: int) -> bool:
    return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2FA1F
            or 0xF900 <= cp <= 0xFAFF or 0x3040 <= cp <= 0x30FF or 0xAC00 <= cp <= 0xD7AF)


def _fold(ch: str) -> str:
    out = unicodedata.normalize("NFKC", ch).casefold()
    return "".join(c for c in out if not unicodedata.category(c).startswith("M"))


@functools.lru_cache(maxsize=1)
def tables() -> tuple[np.ndarray, np.ndarray, dict[int, tuple[int, ...]]]:
    """(single, kind, multi): ``single[cp]`` the one output code point (or -1 dropped, -2 see
    ``multi``), ``kind[cp]`` its class, ``multi[cp]`` the output code points of expansions."""
    t2s = _t2s_table()
    single = np.arange(_MAX_CP, dtype=np.int64)
    kind = np.full(_MAX_CP, WORD, dtype=np.uint8)
    multi: dict[int, tuple[int, ...]] = {}
    for cp in range(_MAX_CP):
        if 0xD800 <= cp <= 0xDFFF:
            single[cp], kind[cp] = -1, DROP
            continue
        ch = chr(cp)
        cat = unicodedata.category(ch)
        if cat in ("Cn", "Co", "Cs"):  # unassigned, private use: kept as they are
            if _is_cjk(cp):
                kind[cp] = CJK
            continue
        if cp < 0x80:
            out = ch.lower()
        else:
            out = _fold(ch)
        out = "".join(t2s.get(c, c) for c in out)
        cls = [_class(c) for c in out]
        cls_out = [(c, k) for c, k in zip(out, cls) if k != DROP]
        if not cls_out:
            single[cp], kind[cp] = -1, DROP
        elif all(k == SPACE for _, k in cls_out):
            single[cp], kind[cp] = 0x20, SPACE
        elif len(cls_out) == 1:
            single[cp], kind[cp] = ord(cls_out[0][0]), cls_out[0][1]
        else:
            # keep only word and CJK characters of an expansion ("½" -> "1⁄2" -> "1", "2")
            kept = tuple(ord(c) for c, k in cls_out if k != SPACE)
            if len(kept) == 1:
                single[cp], kind[cp] = kept[0], _class(chr(kept[0]))
            else:
                single[cp], multi[cp] = _MULTI, kept
                kind[cp] = CJK if any(_is_cjk(c) for c in kept) else WORD
    return single, kind, multi


def _class(c: str) -> int:
    cat = unicodedata.category(c)
    if cat[0] in "PSZ" or cat in ("Cc", "Cf"):
        return SPACE if cat[0] in "PSZ" or c in "\t\n\r\v\f" else DROP
    if cat[0] == "M":
        return DROP
    return CJK if _is_cjk(ord(c)) else WORD


def _t2s_table() -> dict[str, str]:
    """Traditional -> Simplified for single characters, from OpenCC's dictionary."""
    try:
        import opencc
    except ImportError:
        raise ImportError(
            "Traditional-to-Simplified folding needs OpenCC: pip install 'copytrace[text]'"
        ) from None
    chars = [chr(cp) for cp in list(range(0x3400, 0x4DC0)) + list(range(0x4E00, 0xA000))
             + list(range(0xF900, 0xFB00))]
    out = opencc.OpenCC("t2s").convert("\n".join(chars)).split("\n")
    if len(out) != len(chars):  # a dictionary that joins lines: fall back to one by one
        conv = opencc.OpenCC("t2s")
        out = [conv.convert(c) for c in chars]
    return {a: b for a, b in zip(chars, out) if len(b) == 1 and b != a}


def codepoints(text: str) -> np.ndarray:
    """The code points of ``text`` (uint32), without a Python loop."""
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)


def char_keys(text: str) -> np.ndarray:
    """Each original code point folded on its own (punctuation folded too, nothing dropped):
    equal keys mean equal characters up to width, case and script. Used to extend passages
    character by character in the original texts."""
    cps = codepoints(text).astype(np.int64)
    return _key_table()[cps]


@functools.lru_cache(maxsize=1)
def _key_table() -> np.ndarray:
    """``char_keys`` for every code point: the normalisation table, except that punctuation
    keeps its identity (width folded): "。" and "\n" are not the same character."""
    single, kind, _multi = tables()
    cps = np.arange(_MAX_CP, dtype=np.int64)
    out = np.where(single < 0, cps, single)
    for cp in np.flatnonzero(kind == SPACE).tolist():
        ch = chr(cp)
        if not ch.isspace():
            folded = unicodedata.normalize("NFKC", ch)
            out[cp] = ord(folded) if len(folded) == 1 else cp
    return out


def normalize(text: str) -> Normalized:
    """Fold ``text`` (see the module docstring) and keep each output character's origin."""
    single, kind_table, multi = tables()
    cps = codepoints(text)
    out = single[cps]
    kinds = kind_table[cps]
    keep = kinds != DROP
    idx = np.flatnonzero(keep)
    out, kinds = out[idx], kinds[idx]
    expand = np.flatnonzero(out == _MULTI)
    if len(expand):
        lens = np.ones(len(out), dtype=np.int64)
        for e in expand.tolist():
            lens[e] = len(multi[int(cps[idx[e]])])
        rep_idx = np.repeat(np.arange(len(out)), lens)
        new_out = out[rep_idx].copy()
        new_kinds = kinds[rep_idx].copy()
        starts = np.cumsum(lens) - lens
        for e in expand.tolist():
            exp = multi[int(cps[idx[e]])]
            s = int(starts[e])
            new_out[s:s + len(exp)] = exp
            new_kinds[s:s + len(exp)] = [CJK if _is_cjk(c) else WORD for c in exp]
        out, kinds, idx = new_out, new_kinds, idx[rep_idx]
    # Separators: one space between two Latin-script characters, none elsewhere.
    is_sp = kinds == SPACE
    content = np.flatnonzero(~is_sp)
    keep = ~is_sp
    if len(content) > 1:
        # a gap between consecutive content chars holds >= 1 space: keep its first space if
        # both neighbours are WORD characters
        a, b = content[:-1], content[1:]
        gap = (b - a) > 1
        both_word = (kinds[a] == WORD) & (kinds[b] == WORD)
        sel = a[gap & both_word] + 1
        keep[sel] = True
    sel = np.flatnonzero(keep)
    out, kinds, idx = out[sel], kinds[sel], idx[sel]
    codes = out.astype(np.uint32)
    return Normalized(text=codes.tobytes().decode("utf-32-le", "surrogatepass"), codes=codes,
                      kind=kinds, orig=idx.astype(np.int64))

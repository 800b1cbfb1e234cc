"""Passage alignment between two texts: seeds, runs, fragments, merged passages.

1. Seeds: every pair of positions whose ``seed_k``-unit k-grams are equal (k-grams frequent in
   either text, ``max_seed_freq``, are not seeds: they say nothing about copying).
2. Runs: seeds on one diagonal (ref position - query position) at consecutive positions join
   into a run; a verbatim copy is one run, whatever its length.
3. Fragments: runs chained in query order while the gap between them stays under
   ``gap_units`` on both sides and the diagonal drifts by at most ``drift_units`` plus a share
   of the gap (insertions and deletions shift the diagonal a little, a character edit breaks a
   run without shifting it). This absorbs edited copies.
4. Passages: fragments that follow each other in the query within ``merge_gap_units`` and whose
   reference spans are near each other (within the length of the pieces) merge into one
   passage: a copy with its sentences shuffled, or cut by a few inserted words, is one passage
   (PAN's granularity), while a copy split by unrelated text stays two.

Evidence of a passage: how many normalised characters of the query its runs cover.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class AlignConfig:
    seed_k: int = 3
    max_seed_freq: int = 32
    gap_units: int = 30
    drift_units: int = 6
    merge_gap_units: int = 60
    min_fragment_units: int = 4

    def __post_init__(self) -> None:
        if self.seed_k < 1 or self.gap_units < 1 or self.max_seed_freq < 1:
            raise ValueError(f"AlignConfig needs seed_k, gap_units, max_seed_freq >= 1: {self}")


@dataclass
class Passage:
    """Units ``q0``..``q1`` of the query copy units ``r0``..``r1`` of the reference (ends
    exclusive). ``matched``: query units covered by runs; ``matched_chars``: their normalised
    characters. ``head``/``tail``: the (query, ref) unit where the first run starts / the last
    run ends, where the passage may be extended character by character."""

    q0: int
    q1: int
    r0: int
    r1: int
    matched: int
    matched_chars: int
    head: tuple[int, int]
    tail: tuple[int, int]
    runs: list = field(default_factory=list)


def kgram_counts(g: np.ndarray) -> np.ndarray:
    """How often each position's k-gram occurs in its text."""
    _u, inv, cnt = np.unique(g, return_inverse=True, return_counts=True)
    return cnt[inv]


def seeds(qg: np.ndarray, rg: np.ndarray, cfg: AlignConfig,
          q_mask: np.ndarray | None = None,
          q_sorted: tuple[np.ndarray, np.ndarray] | None = None,
          q_freq: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(query positions, ref positions) of equal k-grams (``seed_k``-gram hashes ``qg``,
    ``rg``); ``q_mask`` limits where the query may have them; ``q_sorted``: (``qg`` sorted,
    the sorting order) if known, or only the positions ``q_mask`` keeps, sorted by hash, with
    ``q_freq`` (how often each position's k-gram occurs in the whole query, ``kgram_counts``).
    The reference's k-grams are looked up in the sorted query, so a short stretch of
    reference against a long query costs little."""
    if q_sorted is None:
        order = np.argsort(qg, kind="stable")
        q_sorted = (qg[order], order)
    qs, q_order = q_sorted
    if len(qs) == 0 or len(rg) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    lo = np.searchsorted(qs, rg, side="left")
    cnt = np.searchsorted(qs, rg, side="right") - lo
    freq = cnt if q_freq is None else q_freq[q_order[np.minimum(lo, len(qs) - 1)]]
    ok = (cnt > 0) & (freq <= cfg.max_seed_freq) & (kgram_counts(rg) <= cfg.max_seed_freq)
    rj = np.flatnonzero(ok)
    lo, cnt = lo[ok], cnt[ok]
    rep_r = np.repeat(rj, cnt)
    idx = np.repeat(lo - (np.cumsum(cnt) - cnt), cnt) + np.arange(int(cnt.sum()))
    rep_q = q_order[idx]
    if q_mask is not None:
        keep = q_mask[rep_q]
        rep_q, rep_r = rep_q[keep], rep_r[keep]
    return rep_q.astype(np.int64), rep_r.astype(np.int64)


def runs(sq: np.ndarray, sr: np.ndarray, k: int) -> np.ndarray:
    """Seeds merged along diagonals: rows (q0, q1, r0, r1), ends exclusive, sorted by q0."""
    if len(sq) == 0:
        return np.zeros((0, 4), np.int64)
    d = sr - sq
    order = np.lexsort((sq, d))
    sq, d = sq[order], d[order]
    brk = np.ones(len(sq), dtype=bool)
    brk[1:] = (d[1:] != d[:-1]) | (sq[1:] != sq[:-1] + 1)
    starts = np.flatnonzero(brk)
    ends = np.concatenate((starts[1:], [len(sq)])) - 1
    q0, q1 = sq[starts], sq[ends] + k
    dd = d[starts]
    out = np.stack([q0, q1, q0 + dd, q1 + dd], axis=1)
    return out[np.lexsort((-(q1 - q0), q0))]


def fragments(run_rows: np.ndarray, cfg: AlignConfig) -> list[list[tuple[int, int, int, int]]]:
    """Chain runs into fragments (see the module docstring); fragments covering fewer than
    ``min_fragment_units`` units of the query or of the reference are left out."""
    frags: list[list[tuple[int, int, int, int]]] = []
    state: list[list[int]] = []  # per fragment: [q1, r1, last diagonal, query units covered]
    bucket_w = cfg.drift_units + cfg.gap_units
    buckets: dict[int, list[int]] = {}
    for q0, q1, r0, r1 in run_rows.tolist():
        d = r0 - q0
        b = d // bucket_w
        best, best_cost = -1, None
        for bb in (b - 1, b, b + 1):
            live = buckets.get(bb)
            if not live:
                continue
            keep = []
            for f in live:
                fq1, fr1, fd, _cov = state[f]
                if q0 - fq1 > cfg.gap_units:
                    continue  # expired: the query has moved on
                keep.append(f)
                gap = max(0, q0 - fq1)
                if r0 - fr1 > cfg.gap_units or r1 <= fr1 - cfg.gap_units:
                    continue
                drift = abs(d - fd)
                if drift > cfg.drift_units + gap // 2:
                    continue
                cost = drift + gap
                if best_cost is None or cost < best_cost:
                    best, best_cost = f, cost
            buckets[bb] = keep
        if best >= 0 and q1 <= state[best][0]:
            continue  # inside the query the fragment covers: it would only stretch the ref
        if best < 0:
            frags.append([(q0, q1, r0, r1)])
            state.append([q1, r1, d, q1 - q0])
            buckets.setdefault(b, []).append(len(frags) - 1)
        else:
            frags[best].append((q0, q1, r0, r1))
            st = state[best]
            st[3] += max(0, q1 - max(q0, st[0]))
            st[0], st[1], st[2] = max(st[0], q1), max(st[1], r1), d
            fb = st[2] // bucket_w
            if best not in buckets.setdefault(fb, []):
                buckets[fb].append(best)
    # evidence counts on both sides: a phrase the query repeats gives two runs on one place
    # of the reference, which is no more evidence of copying than one
    need = cfg.min_fragment_units
    return [f for f, st in zip(frags, state) if st[3] >= need and (
        len(f) == 1 or _covered([(r[2], r[3]) for r in f]) >= need)]


def _covered(intervals: list[tuple[int, int]]) -> int:
    total, end = 0, -1
    for a, b in sorted(intervals):
        if b > end:
            total += b - max(a, end)
            end = b
    return total


def passage_of(rows: list[tuple[int, int, int, int]], unit_chars: np.ndarray) -> Passage:
    """The passage made of runs ``rows`` (q0, q1, r0, r1), its evidence counted."""
    q0 = min(r[0] for r in rows)
    q1 = max(r[1] for r in rows)
    r0 = min(r[2] for r in rows)
    r1 = max(r[3] for r in rows)
    first = min(rows, key=lambda r: (r[0], -r[1]))
    last = max(rows, key=lambda r: (r[1], -r[0]))
    head = (first[0], first[2])
    tail = (last[1], last[3])
    covered = _union([(r[0], r[1]) for r in rows])
    matched = sum(b - a for a, b in covered)
    chars = int(sum(int(unit_chars[b] - unit_chars[a]) for a, b in covered))
    return Passage(q0, q1, r0, r1, matched, chars, head, tail, rows)


def _union(intervals: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[list[int]] = []
    for a, b in sorted(intervals):
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return [(a, b) for a, b in out]


def _ref_union(p: Passage) -> list[tuple[int, int]]:
    """The reference intervals the passage's runs cover, merged."""
    return _union([(r[2], r[3]) for r in p.runs])


def _overlap(ra: list[tuple[int, int]], rb: list[tuple[int, int]]) -> int:
    """Units that two sorted, merged interval lists both cover."""
    total, j = 0, 0
    for x0, x1 in ra:
        while j < len(rb) and rb[j][1] <= x0:
            j += 1
        k = j
        while k < len(rb) and rb[k][0] < x1:
            total += min(x1, rb[k][1]) - max(x0, rb[k][0])
            k += 1
    return total


def _repeats(p: Passage, a: Passage, max_share: float = 0.5) -> bool:
    """Whether the reference text one of the two passages copies is mostly text the other
    already copies: a phrase the query has twice (in the copy and in the text next to it)
    aligns with one place of the reference, and is no second piece of the copy (the pieces
    of a shuffled copy come from different places)."""
    rp, ra = _ref_union(p), _ref_union(a)
    covered = min(sum(y - x for x, y in rp), sum(y - x for x, y in ra))
    return _overlap(rp, ra) > max_share * covered


def merge(passages: list[Passage], unit_chars: np.ndarray, cfg: AlignConfig) -> list[Passage]:
    """Merge neighbouring passages (see the module docstring) until none can merge."""
    items = sorted(passages, key=lambda p: (p.q0, p.q1))
    changed = True
    while changed and len(items) > 1:
        changed = False
        out = [items[0]]
        for p in items[1:]:
            a = out[-1]
            q_gap = p.q0 - a.q1
            r_gap = max(p.r0 - a.r1, a.r0 - p.r1, 0)
            reach = max(cfg.merge_gap_units, (a.q1 - a.q0) + (p.q1 - p.q0))
            if q_gap <= cfg.merge_gap_units and r_gap <= reach and not _repeats(p, a):
                out[-1] = passage_of(a.runs + p.runs, unit_chars)
                changed = True
            else:
                out.append(p)
        items = out
    return items


MIN_GATHER_DENSITY = 0.3


def gather_shuffled(passages: list[Passage], unit_chars: np.ndarray, cfg: AlignConfig
                    ) -> list[Passage]:
    """A copy whose sentences were reordered arrives as pieces that follow each other in the
    query while their reference spans jump around inside one region. Each chain of pieces
    (query gaps of at most ``merge_gap_units``) whose reference spans together are about as
    compact as their query spans (union no longer than 1.25 times the query's, plus the gap)
    becomes one passage; pieces that break that compactness (reference far from the chain's
    median) are set aside first, and what remains is chained again. Pieces that re-align
    reference text a stronger piece copies, or whose runs cover less than
    ``MIN_GATHER_DENSITY`` of their own query span, take no part. The pieces must cover at least ``MIN_GATHER_DENSITY`` of the
    chain's query span: stock phrases scattered over a text (a quotation formula, a signature)
    are also pieces of one region, but sparse ones."""
    # a piece that re-aligns reference text a stronger piece copies is no piece of the copy
    pieces: list[Passage] = []
    out: list[Passage] = []
    # and so is a sparse one (stock phrases a few units each, far apart): a copy's pieces are
    # copied text, dense with runs
    for p in sorted(passages, key=lambda p: -p.matched):
        sparse = p.matched < MIN_GATHER_DENSITY * (p.q1 - p.q0)
        (out if sparse or any(_repeats(p, o) for o in pieces) else pieces).append(p)
    todo = _chains(pieces, cfg.merge_gap_units)
    while todo:
        chain = todo.pop()
        if len(chain) < 2:
            out.extend(chain)
            continue
        q_len = max(p.q1 for p in chain) - min(p.q0 for p in chain)
        r_len = max(p.r1 for p in chain) - min(p.r0 for p in chain)
        if r_len > 1.25 * q_len + cfg.merge_gap_units:
            mid = float(np.median([(p.r0 + p.r1) / 2 for p in chain]))
            far = max(chain, key=lambda p: abs((p.r0 + p.r1) / 2 - mid))
            out.append(far)
            todo.extend(_chains([p for p in chain if p is not far], cfg.merge_gap_units))
            continue
        if sum(p.matched for p in chain) >= MIN_GATHER_DENSITY * q_len:
            out.append(passage_of([r for p in chain for r in p.runs], unit_chars))
        else:
            out.extend(chain)
    return sorted(out, key=lambda p: p.q0)


def _chains(passages: list[Passage], max_gap: int) -> list[list[Passage]]:
    """Passages in query order, cut where the query gap to all before exceeds ``max_gap``."""
    chains: list[list[Passage]] = []
    end = None
    for p in sorted(passages, key=lambda p: p.q0):
        if end is None or p.q0 - end > max_gap:
            chains.append([])
            end = p.q1
        chains[-1].append(p)
        end = max(end, p.q1)
    return chains


def align(qg: np.ndarray, rg: np.ndarray, q_unit_chars: np.ndarray, cfg: AlignConfig,
          q_mask: np.ndarray | None = None,
          q_sorted: tuple[np.ndarray, np.ndarray] | None = None,
          q_freq: np.ndarray | None = None) -> list[Passage]:
    """Passages of the query copied from the reference, in query order.

    ``qg``, ``rg``: the texts' ``seed_k``-gram hashes (``fingerprint.kgram_hashes``);
    ``q_unit_chars[u]``: the normalised character where query unit ``u`` starts (length
    units + 1), so evidence is counted in characters whatever the script.
    """
    sq, sr = seeds(qg, rg, cfg, q_mask, q_sorted, q_freq)
    rows = runs(sq, sr, cfg.seed_k)
    found = [passage_of(frag, q_unit_chars) for frag in fragments(rows, cfg)]
    merged = merge(_unshadowed(found), q_unit_chars, cfg)
    gathered = gather_shuffled(merged, q_unit_chars, cfg)
    return [_trim_lonely_ends(p, q_unit_chars, cfg.seed_k) for p in gathered]


def _trim_lonely_ends(p: Passage, unit_chars: np.ndarray, k: int,
                      min_density: float = 0.9) -> Passage:
    """Drop a single-seed run at either end of a nearly verbatim passage (its other runs cover
    at least ``min_density`` of their span) when more than ``k`` units separate it from the
    rest: there a chance k-gram next to the copy (common words, table rules) would stretch it
    into the surrounding text. Edited copies (all short runs, lower density) keep their ends."""
    rows = sorted(p.runs)
    if len(rows) < 2:
        return p
    first = rows[0]
    last = max(rows, key=lambda r: r[1])
    drop = []
    rest = [r for r in rows if r is not first]
    if first[1] - first[0] == k and min(r[0] for r in rest) - first[1] > k:
        drop.append(first)
    rest = [r for r in rows if r is not last]
    if last is not first and last[1] - last[0] == k and last[0] - max(r[1] for r in rest) > k:
        drop.append(last)
    kept = [r for r in rows if all(r is not d for d in drop)]
    if not drop or not kept:
        return p
    span = max(r[1] for r in kept) - min(r[0] for r in kept)
    covered = sum(b - a for a, b in _union([(r[0], r[1]) for r in kept]))
    if covered < min_density * span:
        return p
    return passage_of(kept, unit_chars)


def _unshadowed(passages: list[Passage], max_overlap: float = 0.5) -> list[Passage]:
    """Fragments whose query span lies mostly inside a stronger fragment's are left out before
    merging: inside a copied passage, a text's stock phrases and table rules also align with
    other places of the reference, and merging them in would stretch the reference span."""
    kept: list[Passage] = []
    for p in sorted(passages, key=lambda p: -p.matched):
        length = max(1, p.q1 - p.q0)
        inside = sum(max(0, min(p.q1, k.q1) - max(p.q0, k.q0)) for k in kept)
        if inside / length <= max_overlap:
            kept.append(p)
    return kept

"""From a query text to scored passages: index lookup, candidate documents, alignment.

``find_passages`` is the whole text search without the engine: the signal (``signals/text.py``)
and the benchmark (``bench/text.py``) both call it.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from copytrace.text.align import AlignConfig
from copytrace.text.document import FingerprintConfig, TextDocument, TextSpan, align_documents
from copytrace.text.index import Postings
from copytrace.text.minhash import MinHashConfig, near_duplicates, signature


@dataclass(frozen=True)
class SearchConfig:
    """``max_postings``: k-grams found in more registered places than this are not looked up;
    ``candidates``: documents aligned per query, most seeds first; ``context_units``: how far
    around the seeds of a candidate alignment looks, in query units and in reference characters
    (four per unit: a word and its space), i.e. the longest gap a passage may have between two
    looked-up fingerprints; ``diagonal_chars``: how far two seeds of one passage may stray
    from each other's diagonal (edits insert and delete); ``minhash``: whole-document
    near-duplicates, always among the candidates."""

    max_postings: int = 256
    candidates: int = 64
    min_seeds: int = 1
    context_units: int = 400
    diagonal_chars: int = 32
    minhash: MinHashConfig = field(default_factory=MinHashConfig)


def _dilate(positions: np.ndarray, n: int, radius: int) -> np.ndarray:
    mark = np.zeros(n + 1, dtype=np.int64)
    np.add.at(mark, np.clip(positions - radius, 0, n), 1)
    np.add.at(mark, np.clip(positions + radius + 1, 0, n), -1)
    return np.cumsum(mark[:n]) > 0


def supported(qchars: np.ndarray, doc: np.ndarray, rchars: np.ndarray, diagonal_chars: int,
              gap_chars: int) -> np.ndarray:
    """Which seeds have another seed of the same document on about the same diagonal (within
    ``diagonal_chars``) and near it in the query (within ``gap_chars``): a copied passage
    leaves a trail of seeds, a stock phrase or a chance k-gram one lonely seed."""
    if len(qchars) < 2:
        return np.zeros(len(qchars), dtype=bool)
    diag = rchars - qchars
    order = np.lexsort((qchars, diag, doc))
    d, q, w = diag[order], qchars[order], doc[order]
    near = (w[1:] == w[:-1]) & (np.abs(d[1:] - d[:-1]) <= diagonal_chars) & (
        np.abs(q[1:] - q[:-1]) <= gap_chars)
    ok = np.zeros(len(order), dtype=bool)
    ok[1:] |= near
    ok[:-1] |= near
    out = np.zeros(len(order), dtype=bool)
    out[order] = ok
    return out


def document_near_duplicates(query: TextDocument, index: Postings, fp: FingerprintConfig,
                             cfg: MinHashConfig) -> list[tuple[int, float]]:
    """(doc index, estimated Jaccard similarity of the fingerprint sets) of the registered
    documents the whole query nearly duplicates (MinHash-LSH), best first."""
    if len(index.signatures) == 0:
        return []
    sig = signature(query.fingerprints(fp)[0], cfg.num_perm)
    return near_duplicates(sig, index.signatures, index.lsh(cfg), cfg)


def candidate_docs(query: TextDocument, index: Postings, fp: FingerprintConfig,
                   cfg: SearchConfig) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """(doc index, query positions, ref positions) of the seeds of the best candidates.

    The query's every k-gram is looked up (not only its winnowed ones): a ref fingerprint
    anywhere inside a shared run is then found, which matters for edited copies whose intact
    runs are shorter than the winnowing guarantee. Only seeds with a neighbour (``supported``)
    count and are aligned around. Whole-document near-duplicates (MinHash-LSH) come first,
    whatever their number of seeds."""
    dups = [d for d, _j in document_near_duplicates(query, index, fp, cfg.minhash)]
    qi, doc, rpos = index.lookup(query.all_kgrams(fp), cfg.max_postings)
    if len(qi) == 0:
        return []
    keep = supported(query.unit_text_offsets(qi), doc, rpos, cfg.diagonal_chars,
                     4 * cfg.context_units)
    qi, doc, rpos = qi[keep], doc[keep], rpos[keep]
    order = np.argsort(doc, kind="stable")
    qi, doc, rpos = qi[order], doc[order], rpos[order]
    uniq, starts, counts = np.unique(doc, return_index=True, return_counts=True)
    ranked = np.argsort(-counts, kind="stable")
    group = {int(u): g for g, u in enumerate(uniq.tolist())}
    first = [group[d] for d in dups if d in group]
    rest = [g for g in ranked[:cfg.candidates].tolist()
            if counts[g] >= cfg.min_seeds and g not in first]
    out = []
    for g in first + rest[:max(0, cfg.candidates - len(first))]:
        s, c = starts[g], counts[g]
        out.append((int(uniq[g]), qi[s:s + c], rpos[s:s + c]))
    return out


def best_per_query_span(spans: list[TextSpan], max_overlap: float = 0.5) -> list[TextSpan]:
    """One reference place per query passage: a passage whose query span is more than
    ``max_overlap`` covered by better passages of the same work is left out (a text that
    repeats itself, a refrain or a formula, aligns the copy with each repetition)."""
    kept: list[TextSpan] = []
    for s in sorted(spans, key=lambda s: -s.matched_chars):
        length = max(1, s.query_end_char - s.query_start_char)
        covered = sum(max(0, min(s.query_end_char, k.query_end_char)
                          - max(s.query_start_char, k.query_start_char)) for k in kept)
        if covered / length <= max_overlap:
            kept.append(s)
    return sorted(kept, key=lambda s: s.query_start_char)


def _windows(chars: np.ndarray, n: int, radius: int) -> list[tuple[int, int]]:
    """Spans of ``radius`` around sorted positions, overlapping ones joined."""
    out: list[list[int]] = []
    for c in np.unique(chars).tolist():
        a, b = max(0, c - radius), min(n, c + radius)
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return [(a, b) for a, b in out]


def align_in_windows(query: TextDocument, ref: TextDocument, qpos: np.ndarray,
                     rchars: np.ndarray, align_cfg: AlignConfig, cfg: SearchConfig
                     ) -> list[TextSpan]:
    """Align the query with the parts of ``ref`` around the seeds (reference character
    offsets ``rchars``): a long registered text is never normalised whole for one query."""
    from copytrace.text.decode import DecodedText

    nq = len(query.units)
    q_mask = _dilate(qpos, nq, cfg.context_units) if nq > 2 * cfg.context_units else None
    # the masked part of a long query, sorted once for all windows of this reference
    q_masked = None if q_mask is None else query.masked_seed_kgrams(align_cfg.seed_k, q_mask)
    text = ref.decoded.text
    radius = 4 * cfg.context_units
    if len(text) <= 4 * radius:
        spans = align_documents(query, ref, align_cfg, q_mask, q_masked)
    else:
        spans = []
        for a, b in _windows(rchars, len(text), radius):
            win = TextDocument(DecodedText(text[a:b], ref.decoded.format, ref.decoded.encoding))
            for s in align_documents(query, win, align_cfg, q_mask, q_masked):
                r0, r1 = ref.decoded.to_source(np.array([s.ref_start_char + a,
                                                         s.ref_end_char + a]))
                spans.append(replace(s, ref_start_char=int(r0), ref_end_char=int(r1)))
    return best_per_query_span(spans)


def find_passages(query: TextDocument, index: Postings, load: Callable[[int], TextDocument],
                  fp: FingerprintConfig, align_cfg: AlignConfig, cfg: SearchConfig
                  ) -> list[tuple[int, TextDocument, list[TextSpan]]]:
    """(doc index, its document, passages) for every candidate with at least one passage.
    ``index`` positions are where fingerprints start in each document's decoded text."""
    out = []
    for d, qpos, rchars in candidate_docs(query, index, fp, cfg):
        ref = load(d)
        spans = align_in_windows(query, ref, qpos, rchars, align_cfg, cfg)
        if spans:
            out.append((d, ref, spans))
    return out

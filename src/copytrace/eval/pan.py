"""PAN text-alignment metrics (Potthast, Stein, Barrón-Cedeño and Rosso, COLING 2010).

A case (and a detection) is a pair of character spans: ``susp_start..susp_end`` of a suspicious
document copies ``src_start..src_end`` of a source document (ends exclusive). As sets, a span
pair is the characters of both documents it covers. A detection ``r`` detects a case ``s`` when
both concern the same two documents and their spans overlap in both; then ``s ⊓ r = s ∩ r``,
otherwise it is empty.

    recall    = mean over cases s       of |⋃_r (s ⊓ r)| / |s|
    precision = mean over detections r  of |⋃_s (s ⊓ r)| / |r|
    granularity = mean over detected cases of the number of detections that detect it
    plagdet   = F1 / log2(1 + granularity)

Precision with no detections is taken as 0 (nothing was found); granularity with no detected
case is 1.
"""
from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass


@dataclass(frozen=True)
class SpanPair:
    susp: str
    susp_start: int
    susp_end: int
    src: str
    src_start: int
    src_end: int

    def __post_init__(self) -> None:
        if self.susp_end < self.susp_start or self.src_end < self.src_start:
            raise ValueError(f"span ends before it starts: {self}")

    @property
    def size(self) -> int:
        return (self.susp_end - self.susp_start) + (self.src_end - self.src_start)


@dataclass(frozen=True)
class PanScores:
    precision: float
    recall: float
    granularity: float
    plagdet: float
    cases: int
    detections: int
    detected_cases: int

    def to_dict(self) -> dict:
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


def _overlap(a0: int, a1: int, b0: int, b1: int) -> bool:
    return a0 < b1 and b0 < a1


def detects(r: SpanPair, s: SpanPair) -> bool:
    return (r.susp == s.susp and r.src == s.src
            and _overlap(r.susp_start, r.susp_end, s.susp_start, s.susp_end)
            and _overlap(r.src_start, r.src_end, s.src_start, s.src_end))


def _union_inside(base: tuple[int, int], spans: list[tuple[int, int]]) -> int:
    """Characters of ``base`` covered by the union of ``spans``."""
    b0, b1 = base
    cut = sorted((max(a, b0), min(b, b1)) for a, b in spans if max(a, b0) < min(b, b1))
    total, end = 0, b0
    for a, b in cut:
        if b > end:
            total += b - max(a, end)
            end = b
    return total


def _covered(x: SpanPair, others: list[SpanPair]) -> int:
    return (_union_inside((x.susp_start, x.susp_end), [(o.susp_start, o.susp_end) for o in others])
            + _union_inside((x.src_start, x.src_end), [(o.src_start, o.src_end) for o in others]))


def pan_scores(cases: list[SpanPair], detections: list[SpanPair]) -> PanScores:
    by_pair: dict[tuple[str, str], list[SpanPair]] = defaultdict(list)
    for r in detections:
        by_pair[(r.susp, r.src)].append(r)
    cases_by_pair: dict[tuple[str, str], list[SpanPair]] = defaultdict(list)
    for s in cases:
        cases_by_pair[(s.susp, s.src)].append(s)
    rec_sum, gran = 0.0, []
    for s in cases:
        hits = [r for r in by_pair[(s.susp, s.src)] if detects(r, s)]
        if s.size:
            rec_sum += _covered(s, hits) / s.size
        if hits:
            gran.append(len(hits))
    prec_sum = 0.0
    for r in detections:
        hits = [s for s in cases_by_pair[(r.susp, r.src)] if detects(r, s)]
        if r.size:
            prec_sum += _covered(r, hits) / r.size
    recall = rec_sum / len(cases) if cases else 0.0
    precision = prec_sum / len(detections) if detections else 0.0
    granularity = sum(gran) / len(gran) if gran else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return PanScores(precision, recall, granularity, f1 / math.log2(1 + granularity),
                     len(cases), len(detections), len(gran))

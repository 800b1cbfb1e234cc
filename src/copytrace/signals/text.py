"""The text signal: copied passages of Chinese and English texts, to the character.

Describe: decode (``text/decode.py``), normalise with an offset map, winnow (``text/``). A
work's ``Descriptors`` rows (int32 triples viewed as float32, ``indexed = False``):

    rows 0..n-1   winnowed fingerprints: (hash low 32 bits, hash high 32 bits, where the
                  k-gram starts in the decoded text);
                  ``starts_s``/``ends_s`` of these rows: the k-gram's first and end character
                  (code points of the decoded text; "times" of a text are characters)
    row n         header: (MAGIC, n, payload bytes); its start/end: -1
    rows n+1..    the payload packed 12 bytes a row: zlib of the decoded text (and for HTML the
                  map to code points of the markup), so alignment and the character offsets of
                  a reference never depend on the file still being where it was registered

so a work's text and fingerprints go into the catalogue in one transaction and the registration
log covers the exact text registered.

Search: the inverted index of all works' fingerprints (``text/index.py``), a cache file
``index-text.npz`` keyed by the catalogue's generation, rebuilt when it lags; then passage
alignment with each candidate work (``text/search.py``). A passage's similarity is log2 of the
query characters its runs cover, mapped through the entry's calibrated curve.
"""
from __future__ import annotations

import json
import math
import threading
import zlib

import numpy as np

from copytrace.errors import NotMediaError
from copytrace.signals.base import Candidate, Query, Signal
from copytrace.types import Descriptors, Match, TextSegment, Work

MAGIC = 0x54585431  # "TXT1"
INDEX_FILE = "index-text.npz"
_FORMATS = {"text": None, "txt": "txt", "md": "md", "html": "html", "epub": "epub",
            "docx": "docx"}


def _pack(decoded) -> bytes:
    text = decoded.text.encode("utf-8", "surrogatepass")
    source = b""
    if decoded.source is not None:
        src = np.asarray(decoded.source, np.int64)
        source = np.diff(np.concatenate(([0], src))).astype(np.int32).tobytes()
    head = json.dumps({"format": decoded.format, "encoding": decoded.encoding,
                       "text_bytes": len(text), "source_len": len(decoded.source_text or ""),
                       "has_source": decoded.source is not None}).encode()
    return zlib.compress(head + b"\n" + text + source, 1)


def _unpack(payload: bytes):
    from copytrace.text.decode import DecodedText

    raw = zlib.decompress(payload)
    nl = raw.index(b"\n")
    head = json.loads(raw[:nl])
    body = raw[nl + 1:]
    text = body[:head["text_bytes"]].decode("utf-8", "surrogatepass")
    source = source_text = None
    if head["has_source"]:
        source = np.cumsum(np.frombuffer(body[head["text_bytes"]:], np.int32).astype(np.int64))
        source_text = " " * head["source_len"]  # only its length is needed for offsets
    return DecodedText(text, head["format"], head["encoding"], source, source_text)


def encode_rows(hashes: np.ndarray, pos: np.ndarray, starts: np.ndarray, ends: np.ndarray,
                payload: bytes | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(vectors float32 [N, 3], starts, ends) of a text's descriptor rows."""
    h = np.asarray(hashes, np.int64).view(np.int32).reshape(-1, 2)
    rows = [np.column_stack([h, np.asarray(pos, np.int32)])]
    st, en = [np.asarray(starts, np.float64)], [np.asarray(ends, np.float64)]
    if payload is not None:
        pad = (-len(payload)) % 12
        body = np.frombuffer(payload + b"\0" * pad, np.int32).reshape(-1, 3)
        rows += [np.array([[MAGIC, len(hashes), len(payload)]], np.int32), body]
        st += [np.full(1 + len(body), -1.0)]
        en += [np.full(1 + len(body), -1.0)]
    ints = np.ascontiguousarray(np.concatenate(rows), np.int32)
    return ints.view(np.float32), np.concatenate(st), np.concatenate(en)


def decode_rows(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray, bytes | None]:
    """(fingerprint hashes int64, positions, payload or None) of stored rows."""
    ints = np.ascontiguousarray(vectors, np.float32).view(np.int32)
    if ints.ndim != 2 or ints.shape[1] != 3:
        raise ValueError(f"text descriptor rows are [N, 3] int32, got {ints.shape}")
    header = np.flatnonzero(ints[:, 0] == MAGIC)
    header = [i for i in header.tolist() if ints[i, 1] == i]
    n = header[0] if header else len(ints)
    hashes = np.ascontiguousarray(ints[:n, :2]).view(np.int64).reshape(-1)
    pos = ints[:n, 2].astype(np.int64)
    payload = None
    if header:
        nbytes = int(ints[n, 2])
        payload = ints[n + 1:].tobytes()[:nbytes]
    return hashes, pos, payload


class TextSignal(Signal):
    name = "text"
    media_types = ("text",)
    indexed = False
    timed = False

    def __init__(self, config, store) -> None:
        super().__init__(config, store)
        self._spec = None
        self._postings = None
        self._postings_key = None
        self._refs: dict[str, object] = {}  # work id -> TextDocument (a few recent ones)
        self._queries: dict[int, tuple] = {}  # id(query vectors) -> (vectors, TextDocument)
        self._lock = threading.Lock()

    @property
    def spec(self):
        if self._spec is None:
            from copytrace.text.spec import load_text_spec

            self._spec = load_text_spec(directory=self.config.models_dir)
        return self._spec

    # -- describe ---------------------------------------------------------------------------
    def describe(self, media, for_query: bool) -> Descriptors:
        from copytrace.text.decode import read_text
        from copytrace.text.document import TextDocument

        doc = TextDocument(read_text(media.path, fmt=_FORMATS.get(media.format)))
        fp = self.spec.fingerprint
        hashes, pos = doc.fingerprints(fp)
        # Shorter than the calibrated threshold's passage (or the winnowing guarantee), a text
        # can never be matched: not a work, nor a query (a README beside photos is skipped)
        need_chars = math.ceil(2 ** self.spec.threshold_similarity)
        if len(doc.norm) < need_chars or len(doc.units) < fp.guarantee_units:
            raise NotMediaError(media.path, f"plain text too short to match: "
                                            f"{len(doc.norm)} characters and {len(doc.units)} "
                                            f"words or CJK characters after normalisation; "
                                            f"a text needs {need_chars} and "
                                            f"{fp.guarantee_units}")
        u = doc.units
        orig = doc.norm.orig
        at = doc.unit_text_offsets(pos)
        starts = doc.decoded.to_source(at)
        ends = doc.decoded.to_source(orig[u.end[pos + fp.k - 1] - 1] + 1)
        payload = None if for_query else _pack(doc.decoded)
        vectors, st, en = encode_rows(hashes, at, starts, ends, payload)
        d = Descriptors(vectors, st, en, self.spec.model_id, self.name)
        if for_query:
            with self._lock:
                if len(self._queries) > 32:
                    self._queries.pop(next(iter(self._queries)))
                self._queries[id(d.vectors)] = (d.vectors, doc)
        return d

    def check_descriptors(self, d: Descriptors) -> None:
        if d.model != self.model_id:
            raise ValueError(f"text descriptors of model {d.model!r} cannot join a library "
                             f"that describes text with {self.model_id!r}")
        hashes, _pos, payload = decode_rows(d.vectors)
        if len(hashes) == 0 or payload is None:
            raise ValueError("text descriptors need fingerprints and the packed text "
                             "(TextSignal.describe(media, for_query=False) makes them)")
        _unpack(payload)

    # -- search -----------------------------------------------------------------------------
    def postings(self):
        """The inverted index of every registered text, rebuilt when the catalogue moved."""
        from copytrace.text.index import Postings

        catalog = self.store.catalog
        key = f"{catalog.generation()}:{self.model_id}"
        with self._lock:
            if self._postings is not None and self._postings_key == key:
                return self._postings
            path = self.store.root / INDEX_FILE
            num_perm = self.spec.search.minhash.num_perm
            postings = Postings.load(path, key, num_perm)
            if postings is None:
                rows = catalog.rows(self.name)
                docs = []
                for work_id, (_fv, vectors) in zip(
                        rows.work_id.tolist(), catalog.iter_vectors(self.name, rows.first_vid)):
                    hashes, pos, _payload = decode_rows(vectors)
                    docs.append((work_id, hashes, pos))
                postings = Postings.build(docs, num_perm)
                try:
                    postings.save(path, key)
                except OSError:
                    pass  # a read-only library still searches, from memory
            self._postings, self._postings_key = postings, key
            return postings

    def reference(self, work_id: str):
        from copytrace.text.document import TextDocument

        with self._lock:
            doc = self._refs.get(work_id)
        if doc is None:
            d = self.store.catalog.descriptors(work_id, self.name)
            if d is None:
                raise ValueError(f"work {work_id} has no text descriptors")
            _h, _p, payload = decode_rows(d.vectors)
            if payload is None:
                raise ValueError(f"work {work_id}: its text descriptors hold no text")
            doc = TextDocument(_unpack(payload))
            with self._lock:
                if len(self._refs) >= 8:
                    self._refs.pop(next(iter(self._refs)))
                self._refs[work_id] = doc
        return doc

    def _query_doc(self, query: Query):
        from copytrace.text.decode import read_text
        from copytrace.text.document import TextDocument

        with self._lock:
            entry = self._queries.pop(id(query.descriptors.vectors), None)
        if entry is not None and entry[0] is query.descriptors.vectors:
            return entry[1]
        media = query.media
        return TextDocument(read_text(media.path, fmt=_FORMATS.get(media.format)))

    def find(self, query: Query, top_k: int) -> list[Match]:
        from copytrace.config import DEFAULT_MIN_SCORE
        from copytrace.text.search import find_passages

        spec = self.spec
        doc = query.cache.get("text.document")
        if doc is None:
            doc = query.cache["text.document"] = self._query_doc(query)
        postings = self.postings()
        found = find_passages(doc, postings, lambda i: self.reference(postings.doc_ids[i]),
                              spec.fingerprint, spec.align, spec.search)
        out = []
        for i, _ref, spans in found:
            work = self.store.catalog.get(str(postings.doc_ids[i]))
            segs = [TextSegment(s.query_start_char, s.query_end_char, s.ref_start_char,
                                s.ref_end_char, float(spec.score(spec.similarity(s.matched_chars))),
                                s.matched_chars) for s in spans]
            best = max(spans, key=lambda s: s.matched_chars)
            sim = spec.similarity(best.matched_chars)
            # passages under the decision threshold are not evidence (the best one stays,
            # so a match under the threshold still shows what it rests on)
            segs = [s for s in segs if s.score >= DEFAULT_MIN_SCORE] or [
                max(segs, key=lambda s: s.score)]
            out.append(self.make_match(work, float(spec.score(sim)), sim, segs))
        out.sort(key=lambda m: -m.score)
        return out[:top_k]

    def candidates(self, query: Query, top_k: int) -> list[Candidate]:
        return []  # find() looks candidates up in the posting index itself

    def match(self, query: Query, work: Work, candidate: Candidate) -> Match | None:
        return None

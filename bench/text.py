"""Text-alignment benchmark, PAN style, on public-domain text from Debian packages (issue 21).

    python bench/text.py stage                        # download + unpack the packages, pools
    python bench/text.py make --split calib           # suspicious documents + truth
    python bench/text.py make --split test
    python bench/text.py calibrate --write            # threshold from the calib split only
    python bench/text.py eval --split test --json out/bench_text.json
    python bench/text.py speed --million-chars 100 --json out/bench_text_speed.json

Texts (``stage``; licences in ``pools.json``):
  Chinese: fortunes-zh 2.98 (``tang300``: 300 Tang poems, ``song100``: 100 Song ci, both
           public domain as poems, compiled under the package's GPL-3+; ``chinese``: modern
           Chinese sayings and quotes, GPL-3+ compilation).
  English: bible-kjv-text (King James Version, copyright expired; read with bible-kjv's
           ``bible`` program), dict-devil (Ambrose Bierce, The Devil's Dictionary, 1911, public
           domain), fortunes 1.99.1 (English fortune cookies; filler only, never registered).

Roles are fixed by a hash of each entry's id: *sources* are registered; *filler* is never
registered and is what suspicious documents are made of; filler is split again into a
calibration half and a test half, so the threshold is fitted on documents the test never uses.

Suspicious documents (``make``): filler paragraphs with 1-3 planted passages of 50-2,000
characters from one source each, all of one obfuscation:
  verbatim   the passage as it is
  edit       10-30 % of its tokens (a CJK character or an English word) substituted, deleted,
             or inserted (random tokens of the same script)
  reorder    adjacent tokens swapped (English words: 30 % of pairs; CJK characters: 10 %)
  flip       Simplified -> Traditional with OpenCC ``s2t`` (Chinese only)
  noise      half of the ASCII as full-width forms, Chinese and Latin punctuation swapped,
             5 % extra punctuation or spaces
  shuffle    its sentences in a random order
and negatives: filler only. A quarter of the documents are written as HTML, Chinese ones partly
as GB18030 (Traditional ones as Big5), English ones partly as UTF-16, so decoding is part of
the test; offsets are code points of the decoded file (HTML: of the markup).

Metrics (``copytrace.eval.pan``): PAN macro precision/recall, granularity, plagdet per
obfuscation and language; detections in negatives above the default threshold; exact offsets
of verbatim cases.
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import html
import json
import math
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
STAGE = ROOT / ".stage"
OUT = ROOT / "out" / "bench_text"
PACKAGES = ("fortunes-zh", "bible-kjv-text", "bible-kjv", "dict-devil", "fortunes")
LICENCES = {
    "fortunes-zh": "poems public domain; compilation GPL-3+ (usr/share/doc/fortunes-zh/copyright)",
    "bible-kjv-text": "King James Version text, copyright expired (package copyright file)",
    "dict-devil": "The Devil's Dictionary (1911): public domain, copyright expired",
    "fortunes": "fortune-mod data, BSD-style/various (filler only, never registered)",
}
TYPES_ZH = ("verbatim", "edit", "reorder", "flip", "noise", "shuffle")
TYPES_EN = ("verbatim", "edit", "reorder", "noise", "shuffle")
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _h(key: str) -> int:
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) % 100


# -- stage ----------------------------------------------------------------------------------
def stage(stage_dir: Path) -> dict:
    pkgs = stage_dir / "pkgs"
    debs = stage_dir / "debs"
    missing = [p for p in PACKAGES if not (pkgs / p).is_dir()]
    if missing:
        debs.mkdir(parents=True, exist_ok=True)
        subprocess.run(["apt-get", "-o", "APT::Sandbox::User=root", "download", *missing],
                       cwd=debs, check=True)
        for deb in debs.glob("*.deb"):
            name = subprocess.run(["dpkg-deb", "-f", str(deb), "Package"], capture_output=True,
                                  text=True, check=True).stdout.strip()
            if name in missing:
                (pkgs / name).mkdir(parents=True, exist_ok=True)
                subprocess.run(["dpkg-deb", "-x", str(deb), str(pkgs / name)], check=True)
    entries = []  # (id, lang, kind, text)
    zh = pkgs / "fortunes-zh/usr/share/games/fortunes"
    for name in ("tang300", "song100", "chinese"):
        for i, e in enumerate(_fortune_entries(zh / name)):
            entries.append((f"zh/{name}/{i}", "zh", name, e))
    en = pkgs / "fortunes/usr/share/games/fortunes"
    for f in sorted(en.iterdir()):
        if f.is_file() and "." not in f.name:
            for i, e in enumerate(_fortune_entries(f)):
                entries.append((f"en/fortunes/{f.name}/{i}", "en", "fortunes", e))
    devil = gzip.decompress((pkgs / "dict-devil/usr/share/dictd/devil.dict.dz").read_bytes())
    for i, e in enumerate(_devil_entries(devil.decode("utf-8", "replace"))):
        entries.append((f"en/devil/{i}", "en", "devil", e))
    books = _kjv_books(pkgs)
    pools: dict = {"licences": LICENCES, "sources": [], "filler": {"calib": [], "test": []}}
    # sources: KJV books whole; other entries grouped into documents of >= 3,000 characters
    for book, text in books:
        pools["sources"].append({"id": f"kjv-{book}", "lang": "en", "text": text})
    groups: dict[str, list[str]] = {}
    for eid, lang, kind, text in entries:
        role = "filler"
        if kind in ("tang300", "song100") and _h(eid) < 60 or kind in ("chinese", "devil") and _h(eid) < 50:
            role = "source"
        if role == "source":
            groups.setdefault(f"{lang}-{kind}", []).append(text)
        else:
            split = "calib" if _h("split:" + eid) < 50 else "test"
            pools["filler"][split].append({"id": eid, "lang": lang, "text": text})
    for key, texts in groups.items():
        buf, n = [], 0
        for t in texts:
            buf.append(t)
            n += len(t)
            if n >= 3000:
                pools["sources"].append({"id": f"{key}-{len(pools['sources'])}",
                                         "lang": key[:2], "text": "\n\n".join(buf)})
                buf, n = [], 0
        if buf:
            pools["sources"].append({"id": f"{key}-{len(pools['sources'])}", "lang": key[:2],
                                     "text": "\n\n".join(buf)})
    return clean(pools)


# Texts that recur elsewhere in the corpus would make the truth ambiguous: a filler paragraph
# that is also in a source is a real copy, and so is a passage of one source that another one
# repeats (the KJV's parallel books). Both are found with the text core itself, on the texts as
# they are (never on an obfuscated copy), at a bar of half a line of text.
RECUR_CHARS = 24


def _fp(doc, spec):
    """A document's fingerprints as the text signal indexes them (hash, text offset)."""
    hashes, pos = doc.fingerprints(spec.fingerprint)
    return hashes, doc.unit_text_offsets(pos)


def _core_index(texts: list[tuple[str, str]]):
    from copytrace.text.document import TextDocument
    from copytrace.text.index import Postings
    from copytrace.text.spec import load_text_spec

    spec = load_text_spec()
    docs = [TextDocument.from_string(t) for _, t in texts]
    postings = Postings.build([(i, *_fp(d, spec)) for (i, _), d in zip(texts, docs)])
    return spec, docs, postings


def recurring(text: str, index, skip: str | None = None) -> bool:
    from copytrace.text.document import TextDocument
    from copytrace.text.search import find_passages

    spec, docs, postings = index
    for i, _ref, spans in find_passages(TextDocument.from_string(text), postings,
                                        lambda i: docs[i], spec.fingerprint, spec.align,
                                        spec.search):
        if postings.doc_ids[i] != skip and any(s.matched_chars >= RECUR_CHARS for s in spans):
            return True
    return False


def clean(pools: dict) -> dict:
    index = _core_index([(s["id"], s["text"]) for s in pools["sources"]])
    dropped = 0
    for split in ("calib", "test"):
        kept = [f for f in pools["filler"][split] if not recurring(f["text"], index)]
        dropped += len(pools["filler"][split]) - len(kept)
        pools["filler"][split] = kept
    pools["filler_dropped_as_recurring_in_sources"] = dropped
    return pools


def _fortune_entries(path: Path) -> list[str]:
    text = ANSI.sub("", path.read_text(encoding="utf-8", errors="replace"))
    return [e.strip("\n") for e in re.split(r"\n%\n", text) if len(e.strip()) >= 20]


def _devil_entries(text: str) -> list[str]:
    body = text[text.find("\nA\n"):] if "\nA\n" in text else text
    return [e.strip() for e in re.split(r"\n\s*\n(?=[A-Z][A-Z' -]+, )", body) if len(e) > 40]


def _kjv_books(pkgs: Path) -> list[tuple[str, str]]:
    exe = pkgs / "bible-kjv/usr/bin/bible"
    data = pkgs / "bible-kjv-text/usr/lib/bible.data"
    out = subprocess.run([str(exe), "-f", "-d", data.name, "Gen1:1-Rev22:21"], cwd=data.parent,
                         capture_output=True, text=True, check=True, timeout=300).stdout
    books: dict[str, dict[int, list[str]]] = {}
    for line in out.splitlines():
        m = re.match(r"^(\d?[A-Za-z]+)(\d+):(\d+) (.*)$", line)
        if m:
            books.setdefault(m.group(1), {}).setdefault(int(m.group(2)), []).append(m.group(4))
    return [(b, "\n\n".join(" ".join(v) for _, v in sorted(ch.items())))
            for b, ch in books.items()]


# -- obfuscations ---------------------------------------------------------------------------
TOKEN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]|[A-Za-z0-9']+|\s+|.", re.DOTALL)
CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
WORD = re.compile(r"[A-Za-z0-9']+")


def _content(tok: str) -> bool:
    return bool(CJK.fullmatch(tok) or WORD.fullmatch(tok))


def obfuscate(text: str, kind: str, lang: str, rng: np.random.Generator, vocab: list[str]) -> str:
    if kind == "verbatim":
        return text
    toks = TOKEN.findall(text)
    idx = [i for i, t in enumerate(toks) if _content(t)]
    if kind in ("edit", "reorder") and len(idx) < 2:
        return text
    if kind == "edit":
        rate = rng.uniform(0.10, 0.30)
        for i in rng.choice(idx, size=max(1, round(rate * len(idx))), replace=False).tolist():
            op = rng.integers(3)
            new = vocab[rng.integers(len(vocab))]
            if op == 0:
                toks[i] = new
            elif op == 1:
                toks[i] = ""
            else:
                toks[i] = toks[i] + (" " if lang == "en" else "") + new
        return "".join(toks)
    if kind == "reorder":
        p = 0.3 if lang == "en" else 0.1
        k = 0
        while k + 1 < len(idx):
            if rng.random() < p:
                a, b = idx[k], idx[k + 1]
                toks[a], toks[b] = toks[b], toks[a]
                k += 2
            else:
                k += 1
        return "".join(toks)
    if kind == "flip":
        import opencc

        return opencc.OpenCC("s2t").convert(text)
    if kind == "noise":
        out = []
        swap = {"，": ",", "。": ".", ",": "，", ".": "。", "：": ":", "；": ";", "？": "?",
                "！": "!"}
        for ch in text:
            if 0x21 <= ord(ch) <= 0x7E and rng.random() < 0.5:
                ch = chr(ord(ch) + 0xFEE0)  # full-width form
            elif ch in swap and rng.random() < 0.7:
                ch = swap[ch]
            out.append(ch)
            if rng.random() < 0.05:
                out.append(str(rng.choice(list("，、·…—-* ~"))))
        return "".join(out)
    if kind == "shuffle":
        parts = [s for s in re.split(r"(?<=[。！？!?.;；\n])", text) if s]
        if len(parts) > 1:
            order = rng.permutation(len(parts))
            if (order == np.arange(len(parts))).all():
                order = np.roll(order, 1)
            parts = [parts[i] for i in order]
        return "".join(parts)
    raise ValueError(kind)


def _passage(src: str, rng: np.random.Generator) -> tuple[int, int]:
    n = int(rng.integers(50, 2001))
    n = min(n, len(src) - 1)
    s = int(rng.integers(0, len(src) - n + 1))
    e = s + n
    while s < e and src[s].isspace():
        s += 1
    while e > s and src[e - 1].isspace():
        e -= 1
    return s, e


def make(pools: dict, split: str, out: Path, seed: int, docs_per_type: int,
         negatives_per_lang: int) -> dict:
    rng = np.random.default_rng(seed)
    src_dir, susp_dir = out / "sources", out / split
    src_dir.mkdir(parents=True, exist_ok=True)
    susp_dir.mkdir(parents=True, exist_ok=True)
    sources = {s["id"]: s for s in pools["sources"]}
    for s in pools["sources"]:
        p = src_dir / f"{s['id']}.txt"
        if not p.exists():
            p.write_text(s["text"], encoding="utf-8")
    filler = {lang: [f["text"] for f in pools["filler"][split] if f["lang"] == lang]
              for lang in ("zh", "en")}
    vocab = {"zh": sorted({c for t in filler["zh"] for c in CJK.findall(t)}),
             "en": sorted({w for t in filler["en"][:3000] for w in WORD.findall(t)})}
    src_ids = {lang: [k for k, s in sources.items() if s["lang"] == lang] for lang in ("zh", "en")}
    index = _core_index([(s["id"], s["text"]) for s in pools["sources"]])
    truth = {"split": split, "seed": seed, "documents": []}
    plan = [(lang, t) for lang, types in (("zh", TYPES_ZH), ("en", TYPES_EN)) for t in types
            for _ in range(docs_per_type)]
    plan += [(lang, "negative") for lang in ("zh", "en") for _ in range(negatives_per_lang)]
    for n_doc, (lang, kind) in enumerate(plan):
        paras = [filler[lang][i] for i in rng.choice(len(filler[lang]), size=int(
            rng.integers(4, 16)), replace=False)]
        cases = []
        if kind != "negative":
            for _ in range(int(rng.integers(1, 4))):
                for _try in range(20):
                    sid = src_ids[lang][rng.integers(len(src_ids[lang]))]
                    text = sources[sid]["text"]
                    s, e = _passage(text, rng)
                    # 50 characters at least once its surrounding whitespace is trimmed (a
                    # draw inside an indented blank stretch would plant nothing)
                    if e - s >= 50 and not recurring(text[s:e], index, skip=sid):
                        break
                planted = obfuscate(text[s:e], kind, lang, rng, vocab[lang]).strip()
                at = int(rng.integers(0, len(paras) + 1))
                paras.insert(at, planted)
                cases.append({"para": at, "source": sid, "src_start": s, "src_end": e,
                              "text": planted})
                for c in cases[:-1]:
                    if c["para"] >= at:
                        c["para"] += 1
        as_html = rng.random() < 0.25
        body, where = _render(paras, as_html)
        name = f"{split}-{n_doc:04d}-{lang}-{kind}" + (".html" if as_html else ".txt")
        enc = "utf-8"
        r = rng.random()
        if lang == "zh" and r < 0.3:
            enc = "big5" if kind == "flip" else "gb18030"
        elif lang == "en" and r < 0.1:
            enc = "utf-16"
        try:
            data = body.encode(enc)
        except UnicodeEncodeError:
            enc, data = "utf-8", body.encode("utf-8")
        (susp_dir / name).write_bytes(data)
        doc = {"name": name, "lang": lang, "type": kind, "encoding": enc, "cases": []}
        for c in cases:
            q0, q1 = where[c["para"]]
            shown = html.unescape(body[q0:q1].replace("<br>\n", "\n")) if as_html else body[q0:q1]
            assert shown == c["text"], (name, shown[:40], c["text"][:40])
            doc["cases"].append({"source": c["source"], "susp_start": q0, "susp_end": q1,
                                 "src_start": c["src_start"], "src_end": c["src_end"]})
        truth["documents"].append(doc)
    (out / f"truth-{split}.json").write_text(json.dumps(truth, indent=1))
    return truth


def _render(paras: list[str], as_html: bool) -> tuple[str, list[tuple[int, int]]]:
    """The document and each paragraph's (start, end) code point in it."""
    parts, where, pos = [], [], 0
    if as_html:
        head = "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>post</title>" \
               "<style>p{margin:1em}</style></head><body>\n"
        parts.append(head)
        pos = len(head)
        for p in paras:
            esc = html.escape(p, quote=False).replace("\n", "<br>\n")
            parts.append("<p>")
            pos += 3
            where.append((pos, pos + len(esc)))
            parts.append(esc + "</p>\n")
            pos += len(esc) + 5
        parts.append("</body></html>\n")
    else:
        for i, p in enumerate(paras):
            if i:
                parts.append("\n\n")
                pos += 2
            where.append((pos, pos + len(p)))
            parts.append(p)
            pos += len(p)
    return "".join(parts), where


# -- search through the text core (calibration) ---------------------------------------------
def core_spans(out: Path, split: str, spec) -> list[dict]:
    """Every passage the core aligns in every document of ``split`` (no threshold)."""
    from copytrace.text.decode import read_text
    from copytrace.text.document import TextDocument
    from copytrace.text.index import Postings
    from copytrace.text.search import find_passages

    truth = json.loads((out / f"truth-{split}.json").read_text())
    srcs = sorted((out / "sources").glob("*.txt"))
    docs = [TextDocument(read_text(str(p))) for p in srcs]
    postings = Postings.build([(p.stem, *_fp(d, spec)) for p, d in zip(srcs, docs)])
    found = []
    for doc in truth["documents"]:
        q = TextDocument(read_text(str(out / split / doc["name"])))
        for i, _ref, spans in find_passages(q, postings, lambda i: docs[i], spec.fingerprint,
                                            spec.align, spec.search):
            for s in spans:
                found.append({"doc": doc["name"], "source": str(postings.doc_ids[i]),
                              "q": [s.query_start_char, s.query_end_char],
                              "r": [s.ref_start_char, s.ref_end_char],
                              "similarity": spec.similarity(s.matched_chars)})
    return found


def calibrate(out: Path, write: bool) -> dict:
    """Threshold from the calib split: just above the best-scoring false passage, so that
    none of the calibration negatives' or false passages survives; slope so that passage
    scores 0.1."""
    from copytrace.text.spec import load_text_spec

    spec = load_text_spec()
    truth = json.loads((out / "truth-calib.json").read_text())
    spans = core_spans(out, "calib", spec)
    cases = {d["name"]: d["cases"] for d in truth["documents"]}
    false_sims, true_sims = [], []
    for s in spans:
        hit = any(c["source"] == s["source"] and c["susp_start"] < s["q"][1]
                  and s["q"][0] < c["susp_end"] and c["src_start"] < s["r"][1]
                  and s["r"][0] < c["src_end"] for c in cases[s["doc"]])
        (true_sims if hit else false_sims).append(s["similarity"])
    fp_max = max(false_sims) if false_sims else 3.0
    margin = 0.5  # a factor sqrt(2) in characters above the worst false passage
    threshold = fp_max + margin
    slope = math.log(9.0) / margin
    kept = sum(t >= threshold for t in true_sims)
    report = {"false_passages": len(false_sims), "false_max_similarity": fp_max,
              "false_max_chars": round(2 ** fp_max), "true_passages": len(true_sims),
              "true_kept": kept, "threshold_similarity": threshold,
              "threshold_chars": round(2 ** threshold, 1), "score_slope": slope}
    if write:
        path = ROOT / "src/copytrace/models/weights/ct-text-winnow.json"
        entry = json.loads(path.read_text())
        entry["threshold_similarity"] = round(threshold, 4)
        entry["score_slope"] = round(slope, 4)
        entry["calibration"] = (
            f"bench/text.py calibrate on the calib split (seed {truth['seed']}): "
            f"{len(false_sims)} false passages, the best at {round(2 ** fp_max)} matched chars;"
            f" threshold = that + a factor sqrt(2); score 0.1 there")
        path.write_text(json.dumps(entry, indent=2) + "\n")
    return report


# -- evaluation through the Library ---------------------------------------------------------
def evaluate(out: Path, split: str, lib_dir: Path) -> dict:
    from copytrace.config import EngineConfig
    from copytrace.engine import Library
    from copytrace.errors import NotMediaError
    from copytrace.eval.pan import SpanPair, pan_scores

    truth = json.loads((out / f"truth-{split}.json").read_text())
    cfg = EngineConfig(signals=("text",))
    t0 = time.perf_counter()
    n_chars = 0
    with Library.open(lib_dir, cfg) as lib:
        by_path = {}
        for p in sorted((out / "sources").glob("*.txt")):
            r = lib.add(str(p))
            by_path[r.work.path] = p.stem
            n_chars += len(p.read_text(encoding="utf-8"))
        lib.flush()
        add_s = time.perf_counter() - t0
        by_work = {w.work_id: Path(w.path).stem for w in lib.works()}
        cases, dets, doc_type = [], [], {}
        neg_above, query_s, too_short = [], [], []
        for doc in truth["documents"]:
            name = doc["name"]
            doc_type[name] = (doc["lang"], doc["type"])
            for c in doc["cases"]:
                cases.append((doc["lang"], doc["type"], SpanPair(
                    name, c["susp_start"], c["susp_end"], c["source"], c["src_start"],
                    c["src_end"])))
            t = time.perf_counter()
            try:
                matches = lib.query(str(out / split / name), top_k=50).matches
            except NotMediaError:
                matches = ()  # shorter than any passage the threshold lets through
                too_short.append(name)
            query_s.append(time.perf_counter() - t)
            for m in matches:
                for s in m.segments:
                    if s.score < 0.5:
                        continue
                    sp = SpanPair(name, s.query_start_char, s.query_end_char,
                                  by_work[m.work_id], s.ref_start_char, s.ref_end_char)
                    dets.append((doc["lang"], doc["type"], sp))
                    if doc["type"] == "negative":
                        neg_above.append({"doc": name, "source": sp.src, "score": s.score,
                                          "q": [sp.susp_start, sp.susp_end],
                                          "r": [sp.src_start, sp.src_end]})
    report: dict = {"split": split, "sources": len(by_path), "source_chars": n_chars,
                    "add_s": round(add_s, 3), "query_median_s": float(np.median(query_s)),
                    "per_type": {}}
    groups = sorted({(lang, t) for lang, t, _ in cases})
    for lang, t in groups + [("all", "edited"), ("all", "all")]:
        def sel(x, lang=lang, t=t):
            if lang == "all" and t == "all":
                return x[1] != "negative"
            if lang == "all":
                return x[1] in ("edit", "reorder", "noise", "shuffle")
            return x[0] == lang and x[1] == t
        sc = pan_scores([c for *k, c in cases if sel(k)], [d for *k, d in dets if sel(k)])
        report["per_type"][f"{lang}/{t}"] = sc.to_dict()
    exact = total = 0
    det_set = {(d.susp, d.susp_start, d.susp_end, d.src, d.src_start, d.src_end)
               for _, _, d in dets}
    misses = []
    for lang, t, c in cases:
        if t == "verbatim":
            total += 1
            key = (c.susp, c.susp_start, c.susp_end, c.src, c.src_start, c.src_end)
            if key in det_set:
                exact += 1
            else:
                misses.append(key)
    report["verbatim_exact_offsets"] = f"{exact}/{total}"
    report["verbatim_inexact"] = misses[:20]
    negs = [d for d in truth["documents"] if d["type"] == "negative"]
    report["negatives"] = len(negs)
    report["queries_too_short_to_match"] = too_short
    report["negative_detections_above_threshold"] = len(neg_above)
    report["negative_documents_above_threshold"] = len({n["doc"] for n in neg_above})
    report["negatives_above"] = neg_above[:20]
    return report


# -- speed ----------------------------------------------------------------------------------
def speed(out: Path, million_chars: float, lib_dir: Path, doc_chars: int, seed: int) -> dict:
    """Index speed (Library.add of files of ``doc_chars``) and a 1 M-character query against
    ``million_chars`` M registered characters. The registered texts are unigram samples of the
    staged pools' characters (Chinese) and words (English), half each: real statistics for
    single characters and words, fresh text beyond them (100 M characters of real text are not
    in the packages)."""
    from copytrace.config import EngineConfig
    from copytrace.engine import Library

    pools = json.loads((out / "pools.json").read_text())
    rng = np.random.default_rng(seed)
    zh_text = "".join(s["text"] for s in pools["sources"] if s["lang"] == "zh")
    en_text = " ".join(s["text"] for s in pools["sources"] if s["lang"] == "en")
    chars, counts = np.unique(np.array(CJK.findall(zh_text)), return_counts=True)
    words, wcounts = np.unique(np.array(WORD.findall(en_text)), return_counts=True)
    zp, wp = counts / counts.sum(), wcounts / wcounts.sum()

    def make_doc(lang: str, n: int) -> str:
        if lang == "zh":
            body = rng.choice(chars, size=n, p=zp)
            body[rng.integers(8, 30, size=n // 15).cumsum() % n] = "，"
            return "".join(body.tolist())
        w = rng.choice(words, size=n // 5, p=wp)
        return " ".join(w.tolist())[:n]

    gen_dir = out / "speed"
    gen_dir.mkdir(parents=True, exist_ok=True)
    n_docs = max(1, round(million_chars * 1e6 / doc_chars))
    cfg = EngineConfig(signals=("text",))
    add_times, total = [], 0
    with Library.open(lib_dir, cfg) as lib:
        have = len(lib.works())
        for i in range(have, n_docs):
            p = gen_dir / f"doc{i:05d}.txt"
            if not p.exists():
                p.write_text(make_doc("zh" if i % 2 == 0 else "en", doc_chars), encoding="utf-8")
            t = time.perf_counter()
            lib.add(str(p))
            add_times.append(time.perf_counter() - t)
            total += doc_chars
            if i % 10 == 0:
                print(f"added {i + 1}/{n_docs} ({doc_chars * len(add_times) / sum(add_times):.0f}"
                      " chars/s)", file=sys.stderr)
        lib.flush()
        # the query: 1 M characters of fresh unigram text with 40 planted passages
        planted = []
        parts = []
        for j in range(40):
            parts.append(make_doc("zh" if j % 2 == 0 else "en", 24000))
            src = gen_dir / f"doc{int(rng.integers(n_docs)):05d}.txt"
            text = src.read_text(encoding="utf-8")
            s = int(rng.integers(0, len(text) - 1000))
            parts.append(text[s:s + 1000])
            planted.append(src.stem)
        qtext = "\n".join(parts)
        qpath = gen_dir / "query.txt"
        qpath.write_text(qtext, encoding="utf-8")
        signal = lib.signal("text")
        t = time.perf_counter()
        signal.postings()
        build_s = time.perf_counter() - t
        # the text core alone (decode, normalise, units, winnow) on one registered file
        from copytrace.text.decode import read_text
        from copytrace.text.document import TextDocument

        core = []
        for k in range(3):
            path = gen_dir / f"doc{k:05d}.txt"
            t = time.perf_counter()
            doc = TextDocument(read_text(str(path)))
            doc.fingerprints(signal.spec.fingerprint)
            core.append(len(doc.text) / (time.perf_counter() - t))
        times, cpu = [], []
        found = set()
        for _ in range(3):
            t, c = time.perf_counter(), time.process_time()
            res = lib.query(str(qpath), top_k=100)
            times.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
            found = {Path(m.path).stem for m in res.matches if m.score >= 0.5}
        n_post = len(signal.postings())
    return {"registered_chars": n_docs * doc_chars, "documents": n_docs,
            "add_chars_per_s_median": round(float(np.median([doc_chars / a for a in add_times]))
                                            if add_times else 0.0),
            "core_fingerprint_chars_per_s": [round(c) for c in core],
            "postings": n_post, "postings_build_s": round(build_s, 3),
            "query_chars": len(qtext), "query_s": [round(x, 3) for x in times],
            "query_s_median": round(float(np.median(times)), 3),
            "query_cpu_s": [round(x, 3) for x in cpu],
            "load_average": [round(x, 1) for x in os.getloadavg()],
            "planted_sources_found": f"{len(set(planted) & found)}/{len(set(planted))}",
            "threads": os.environ.get("OMP_NUM_THREADS", "")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("stage")
    p.add_argument("--stage-dir", type=Path, default=STAGE)
    p.add_argument("--out", type=Path, default=OUT)
    p = sub.add_parser("make")
    p.add_argument("--out", type=Path, default=OUT)
    p.add_argument("--split", choices=("calib", "test"), required=True)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--docs-per-type", type=int, default=30)
    p.add_argument("--negatives-per-lang", type=int, default=120)
    p = sub.add_parser("calibrate")
    p.add_argument("--out", type=Path, default=OUT)
    p.add_argument("--write", action="store_true")
    p = sub.add_parser("eval")
    p.add_argument("--out", type=Path, default=OUT)
    p.add_argument("--split", choices=("calib", "test"), default="test")
    p.add_argument("--json", type=Path)
    p = sub.add_parser("speed")
    p.add_argument("--out", type=Path, default=OUT)
    p.add_argument("--million-chars", type=float, default=100.0)
    p.add_argument("--doc-chars", type=int, default=1_000_000)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--json", type=Path)
    a = ap.parse_args()
    if a.cmd == "stage":
        pools = stage(a.stage_dir)
        a.out.mkdir(parents=True, exist_ok=True)
        (a.out / "pools.json").write_text(json.dumps(pools, ensure_ascii=False))
        n_src = sum(len(s["text"]) for s in pools["sources"])
        print(json.dumps({"sources": len(pools["sources"]), "source_chars": n_src,
                          "filler_dropped": pools["filler_dropped_as_recurring_in_sources"],
                          "filler": {k: len(v) for k, v in pools["filler"].items()},
                          "licences": LICENCES}, indent=1))
        return
    if a.cmd == "make":
        pools = json.loads((a.out / "pools.json").read_text())
        seed = a.seed if a.seed is not None else (1 if a.split == "calib" else 2)
        truth = make(pools, a.split, a.out, seed, a.docs_per_type, a.negatives_per_lang)
        print(f"{len(truth['documents'])} documents, "
              f"{sum(len(d['cases']) for d in truth['documents'])} cases")
        return
    if a.cmd == "calibrate":
        print(json.dumps(calibrate(a.out, a.write), indent=1))
        return
    if a.cmd == "eval":
        lib = a.out / f"lib-{a.split}"
        import shutil

        shutil.rmtree(lib, ignore_errors=True)
        rep = evaluate(a.out, a.split, lib)
    else:
        rep = speed(a.out, a.million_chars, a.out / f"lib-speed-{a.million_chars:g}M",
                    a.doc_chars, a.seed)
    text = json.dumps(rep, indent=1, ensure_ascii=False)
    print(text)
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(text)


if __name__ == "__main__":
    main()

"""The text core: decoding, normalisation's offset map, winnowing's guarantee, passage
alignment to the character (issue 21). Texts are public-domain: Tang poems and KJV verses."""
from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest

pytest.importorskip("opencc")

from copytrace.text.align import AlignConfig
from copytrace.text.decode import TextDecodeError, read_text
from copytrace.text.document import FingerprintConfig, TextDocument, align_documents
from copytrace.text.fingerprint import kgram_hashes, units, winnow
from copytrace.text.normalize import normalize

POEMS = (
    "床前明月光，疑是地上霜。举头望明月，低头思故乡。"
    "白日依山尽，黄河入海流。欲穷千里目，更上一层楼。"
    "春眠不觉晓，处处闻啼鸟。夜来风雨声，花落知多少。"
    "千山鸟飞绝，万径人踪灭。孤舟蓑笠翁，独钓寒江雪。"
    "红豆生南国，春来发几枝。愿君多采撷，此物最相思。"
    "松下问童子，言师采药去。只在此山中，云深不知处。"
    "向晚意不适，驱车登古原。夕阳无限好，只是近黄昏。"
    "空山不见人，但闻人语响。返景入深林，复照青苔上。"
)
VERSES = (
    "In the beginning God created the heaven and the earth. And the earth was without form, "
    "and void; and darkness was upon the face of the deep. And the Spirit of God moved upon "
    "the face of the waters. And God said, Let there be light: and there was light. And God "
    "saw the light, that it was good: and God divided the light from the darkness. And God "
    "called the light Day, and the darkness he called Night. And the evening and the morning "
    "were the first day."
)
AC = AlignConfig()


def _filler(seed: int, n: int) -> str:
    """Unrelated Chinese: characters of the poems in a random order."""
    rng = np.random.default_rng(seed)
    chars = [c for c in POEMS if c not in "，。"]
    return "".join(rng.choice(chars, size=n).tolist())


# -- normalisation ----------------------------------------------------------------------------
def test_normalisation_folds_width_case_script_and_punctuation():
    n = normalize("Ｈｅｌｌｏ，  WORLD!  漢字 簡體，頭髮")
    assert n.text == "hello world汉字简体头发"


def test_every_normalised_character_points_at_its_original():
    text = "  Ｔｈｅ　ＱＵＩＣＫ—brown “fox”, 舉頭望明月。ﬁne Straße\u0301 "
    n = normalize(text)
    for ch, at in zip(n.text, n.orig.tolist()):
        if ch == " ":
            assert not text[at].isalnum()
            continue
        folded = normalize(text[at]).text
        assert ch in folded, (ch, text[at])
    assert list(n.orig) == sorted(n.orig)


# -- winnowing --------------------------------------------------------------------------------
@pytest.mark.parametrize("k,w", [(3, 5), (4, 4), (2, 8)])
def test_every_shared_run_of_t_units_shares_a_fingerprint(k, w):
    rng = np.random.default_rng(k * 10 + w)
    t = w + k - 1
    for trial in range(300):
        a = rng.integers(0, 2**63, size=int(rng.integers(t, 200)), dtype=np.uint64)
        b = rng.integers(0, 2**63, size=int(rng.integers(t, 200)), dtype=np.uint64)
        run = int(rng.integers(t, t + 10))
        shared = rng.integers(0, 2**63, size=run, dtype=np.uint64)
        i, j = int(rng.integers(0, len(a))), int(rng.integers(0, len(b)))
        a = np.concatenate((a[:i], shared, a[i:]))
        b = np.concatenate((b[:j], shared, b[j:]))
        fa = kgram_hashes(a, k)[winnow(kgram_hashes(a, k), w)]
        fb = kgram_hashes(b, k)[winnow(kgram_hashes(b, k), w)]
        assert set(fa.tolist()) & set(fb.tolist()), f"trial {trial}: run of {run} units missed"


def test_guarantee_on_real_text_in_characters_and_words():
    fp = FingerprintConfig(3, 5)
    zh_run = POEMS[30:30 + fp.guarantee_units]  # CJK: one unit per character
    q = TextDocument.from_string(_filler(1, 300) + zh_run + _filler(2, 300))
    r = TextDocument.from_string(_filler(3, 300) + zh_run + _filler(4, 300))
    assert set(q.fingerprints(fp)[0].tolist()) & set(r.fingerprints(fp)[0].tolist())
    words = VERSES.split()[10:10 + fp.guarantee_units]  # English: one unit per word
    q = TextDocument.from_string("zebra quartz " * 20 + " ".join(words) + " lorem ipsum" * 20)
    r = TextDocument.from_string("apple mango " * 20 + " ".join(words) + " dolor sit" * 20)
    assert set(q.fingerprints(fp)[0].tolist()) & set(r.fingerprints(fp)[0].tolist())


def test_units_are_characters_for_chinese_and_words_for_english():
    u = units(normalize("Hello, world! 明月光"))
    assert len(u) == 5
    assert u.hashes[0] != u.hashes[1]
    same = units(normalize("HELLO"))
    assert same.hashes[0] == u.hashes[0]


# -- alignment ----------------------------------------------------------------------------------
def test_verbatim_passage_in_filler_has_exact_offsets():
    src = _filler(5, 400) + POEMS + _filler(6, 400)
    a, b = 400 + 24, 400 + 24 + 96  # starts at a poem, mid-text
    query = _filler(7, 250) + "\n" + src[a:b] + "\n" + _filler(8, 250)
    spans = align_documents(TextDocument.from_string(query), TextDocument.from_string(src), AC)
    best = max(spans, key=lambda s: s.matched_chars)
    assert (best.query_start_char, best.query_end_char) == (251, 251 + b - a)
    assert (best.ref_start_char, best.ref_end_char) == (a, b)


def test_partial_words_at_the_edges_are_exact_in_english():
    a = VERSES.index("arkness was")  # starts inside a word
    b = VERSES.index("the light Day") + 7
    query = "Completely different prose about engines. " + VERSES[a:b] + " More unrelated words."
    spans = align_documents(TextDocument.from_string(query), TextDocument.from_string(VERSES), AC)
    assert len(spans) == 1
    s = spans[0]
    assert query[s.query_start_char:s.query_end_char] == VERSES[a:b]
    assert (s.ref_start_char, s.ref_end_char) == (a, b)


def test_chance_agreement_across_a_space_does_not_stretch_an_edge():
    # the text before the copy ends like the text before the original ("...oats. "): growing
    # the edge over the paragraph break would take 5 characters of unrelated text along
    ref = "The dogs barked at the goats. " + VERSES
    query = "Filler about some old boats.\n\n" + VERSES[:300] + "\n\nAnd more. The end"
    spans = align_documents(TextDocument.from_string(query), TextDocument.from_string(ref), AC)
    s = max(spans, key=lambda s: s.matched_chars)
    assert query[s.query_start_char:s.query_end_char] == VERSES[:300].rstrip()
    assert (s.ref_start_char, s.ref_end_char) == (30, 30 + len(VERSES[:300].rstrip()))


def test_a_word_after_a_paragraph_break_is_not_the_word_after_a_space():
    # after the copy the query starts a paragraph with "And", the original goes on with " And"
    copy = VERSES[:VERSES.index(" And God said")]
    query = "Filler words about engines.\n\n" + copy + "\n\nAnd then unrelated prose follows."
    spans = align_documents(TextDocument.from_string(query), TextDocument.from_string(VERSES), AC)
    s = max(spans, key=lambda s: s.matched_chars)
    assert query[s.query_start_char:s.query_end_char] == copy
    assert (s.ref_start_char, s.ref_end_char) == (0, len(copy))


def test_a_phrase_repeated_next_to_the_copy_does_not_stretch_the_reference():
    # the query repeats "I do not" twice after the copy; the reference has it once, before
    # the original: two query runs on one reference k-gram are no evidence of copying
    ref = "I do not doubt it aches, said the old man. " + VERSES
    query = VERSES[:300] + "\nBecause I do not hope,\nBecause I do not hope to turn again."
    spans = align_documents(TextDocument.from_string(query), TextDocument.from_string(ref), AC)
    s = max(spans, key=lambda s: s.matched_chars)
    assert (s.query_start_char, s.query_end_char) == (0, len(VERSES[:300].rstrip()))
    assert (s.ref_start_char, s.ref_end_char) == (43, 43 + len(VERSES[:300].rstrip()))


def test_a_line_of_the_copy_quoted_next_to_it_does_not_stretch_the_query():
    # the text before the copy quotes one of its lines: that line aligns with the same place
    # of the reference as the copy's own, and is no second piece of the copy
    ref = _filler(11, 300) + POEMS
    copy = POEMS[:144]
    before = _filler(12, 200) + "\n\n" + POEMS[120:132] + "\n    --《诗》\n\n"
    query = before + copy + "\n\n" + _filler(13, 100)
    spans = align_documents(TextDocument.from_string(query), TextDocument.from_string(ref), AC)
    s = max(spans, key=lambda s: s.matched_chars)
    assert (s.query_start_char, s.query_end_char) == (len(before), len(before) + len(copy))
    assert (s.ref_start_char, s.ref_end_char) == (300, 300 + len(copy))


def test_traditional_full_width_copy_is_found_with_offsets_in_the_copy():
    import opencc

    src = _filler(9, 300) + POEMS + _filler(10, 300)
    trad = opencc.OpenCC("s2t").convert(POEMS[:120]).replace("，", ",")
    query = "今天天气很好。" + trad + "我们回家吧。"
    spans = align_documents(TextDocument.from_string(query), TextDocument.from_string(src), AC)
    s = max(spans, key=lambda s: s.matched_chars)
    assert (s.query_start_char, s.query_end_char) == (7, 7 + len(trad))
    assert (s.ref_start_char, s.ref_end_char) == (300, 420)


def test_split_copy_gives_two_passages_and_shuffled_sentences_one():
    src = _filler(11, 300) + POEMS + _filler(12, 300)
    part1, part2 = POEMS[:72], POEMS[120:192]
    query = part1 + _filler(13, 500) + part2
    spans = align_documents(TextDocument.from_string(query), TextDocument.from_string(src), AC)
    assert len(spans) == 2
    sentences = [POEMS[i:i + 24] for i in range(0, 192, 24)]
    shuffled = "".join(sentences[i] for i in (3, 0, 6, 1, 7, 2, 5, 4))
    query = _filler(14, 200) + shuffled + _filler(15, 200)
    spans = [s for s in align_documents(TextDocument.from_string(query),
                                        TextDocument.from_string(src), AC)
             if s.matched_chars >= 20]
    assert len(spans) == 1
    assert (spans[0].query_start_char, spans[0].query_end_char) == (200, 392)


def test_edited_copy_is_one_passage():
    rng = np.random.default_rng(3)
    src = _filler(16, 300) + POEMS * 2 + _filler(17, 300)
    chars = list(POEMS * 2)
    for i in rng.choice(len(chars), size=len(chars) // 6, replace=False):
        chars[i] = "锦"  # 1 in 6 characters replaced
    query = _filler(18, 200) + "".join(chars) + _filler(19, 200)
    spans = [s for s in align_documents(TextDocument.from_string(query),
                                        TextDocument.from_string(src), AC)
             if s.matched_chars >= 40]
    assert len(spans) == 1
    assert abs(spans[0].query_start_char - 200) <= 3
    assert abs(spans[0].query_end_char - (200 + len(chars))) <= 3


def test_unrelated_texts_align_to_nothing_long():
    q = TextDocument.from_string(_filler(20, 3000))
    r = TextDocument.from_string(_filler(21, 3000))
    assert all(s.matched_chars < 20 for s in align_documents(q, r, AC))


# -- decoding ---------------------------------------------------------------------------------
@pytest.mark.parametrize("encoding", ["utf-8", "utf-16", "gb18030", "big5"])
def test_encodings_detected_by_content(tmp_path, encoding):
    import opencc

    text = POEMS * 3 if encoding != "big5" else opencc.OpenCC("s2t").convert(POEMS * 3)
    text = "".join(c for c in text if c.encode(encoding, "ignore"))  # Big5 lacks a few
    p = tmp_path / "poem.txt"
    p.write_bytes(text.encode(encoding))
    assert read_text(str(p)).text == text


def test_binary_junk_and_size_limit_are_clear_errors(tmp_path):
    junk = tmp_path / "junk.txt"
    junk.write_bytes(bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8)))
    with pytest.raises(TextDecodeError, match="junk.txt"):
        read_text(str(junk))
    big = tmp_path / "big.txt"
    big.write_text("x" * 2000)
    with pytest.raises(TextDecodeError, match="size limit"):
        read_text(str(big), max_bytes=1000)


def test_a_few_control_characters_are_text_to_the_probe_as_to_the_decoder(tmp_path):
    from copytrace.errors import NotMediaError
    from copytrace.media.probe import sniff

    # a fortune cookie rings the bell 22 times in its first 512 bytes (4 %)
    cookie = tmp_path / "cookie.txt"
    cookie.write_bytes(b"Look out!  Behind you!" + b"\a" * 22 + b"\n\n" + VERSES.encode())
    assert sniff(str(cookie)).media_type == "text"
    assert read_text(str(cookie)).text.startswith("Look out!")
    junk = tmp_path / "junk.bin"  # one character in eight a control code: binary
    junk.write_bytes(bytes(b if i % 8 else 1 for i, b in enumerate(VERSES.encode())))
    with pytest.raises(NotMediaError):
        sniff(str(junk))


def test_html_visible_text_and_offsets_into_the_markup(tmp_path):
    page = ("<html><head><title>t</title><style>p{color:red}</style>"
            "<script>var x='床前明月光';</script></head><body><p>前言 &amp; 序</p>"
            f"<p>{POEMS[:48]}</p></body></html>")
    p = tmp_path / "page.html"
    p.write_text(page, encoding="utf-8")
    d = read_text(str(p))
    assert "var x" not in d.text and "color" not in d.text
    assert "前言 & 序" in d.text
    i = d.text.index(POEMS[:48])
    start, end = d.to_source(np.array([i, i + 48]))
    assert page[start:end] == POEMS[:48]


def _zip(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, body in files.items():
            z.writestr(name, body)
    return buf.getvalue()


def test_epub_and_docx_readers(tmp_path):
    epub = tmp_path / "book.epub"
    epub.write_bytes(_zip({
        "mimetype": "application/epub+zip",
        "META-INF/container.xml": '<container xmlns="urn:oasis:names:tc:opendocument:xmlns:'
        'container"><rootfiles><rootfile full-path="OEBPS/c.opf"/></rootfiles></container>',
        "OEBPS/c.opf": '<package xmlns="http://www.idpf.org/2007/opf"><manifest>'
        '<item id="a" href="a.xhtml"/><item id="b" href="b.xhtml"/></manifest>'
        '<spine><itemref idref="b"/><itemref idref="a"/></spine></package>',
        "OEBPS/a.xhtml": f"<html><body><p>{POEMS[24:48]}</p></body></html>",
        "OEBPS/b.xhtml": f"<html><body><p>{POEMS[:24]}</p></body></html>",
    }))
    assert read_text(str(epub)).text.split() == [POEMS[:24], POEMS[24:48]]  # spine order
    w = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
    docx = tmp_path / "doc.docx"
    docx.write_bytes(_zip({
        "[Content_Types].xml": "<Types/>",
        "word/document.xml": f'<w:document xmlns:w="{w}"><w:body><w:p><w:r><w:t>In the '
        '</w:t></w:r><w:r><w:t>beginning</w:t></w:r></w:p><w:p><w:r><w:t>God created'
        '</w:t></w:r></w:p></w:body></w:document>',
    }))
    assert read_text(str(docx)).text == "In the beginning\nGod created"
    bad = tmp_path / "bad.docx"
    bad.write_bytes(_zip({"[Content_Types].xml": "<Types/>"}))
    with pytest.raises(TextDecodeError, match="word/document.xml"):
        read_text(str(bad))


def test_html_line_breaks_keep_offsets_exact(tmp_path):
    lines = [POEMS[i:i + 12] for i in range(0, 96, 12)]
    src = _filler(22, 200) + "\n" + "\n".join(lines) + "\n" + _filler(23, 200)
    a = src.index(lines[1]) - 1  # the copy starts with the line break before a line
    a += 1
    b = src.index(lines[6]) + len(lines[6])
    shown = "\n".join(lines[1:7]).replace("\n", "<br>\n")
    page = f"<html><body><p>{_filler(24, 100)}</p><p>{shown}</p></body></html>"
    p = tmp_path / "repost.html"
    p.write_text(page, encoding="utf-8")
    q = TextDocument(read_text(str(p)))
    spans = align_documents(q, TextDocument.from_string(src), AC)
    s = max(spans, key=lambda s: s.matched_chars)
    start = page.index(shown)
    assert (s.query_start_char, s.query_end_char) == (start, start + len(shown))
    assert (s.ref_start_char, s.ref_end_char) == (a, b)

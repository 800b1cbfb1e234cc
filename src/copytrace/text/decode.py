"""Read the text of a file: plain text and Markdown, HTML (visible text), EPUB, DOCX.

Readers are pure Python: ``html.parser`` for HTML and the XHTML inside EPUBs, ``zipfile`` with
``xml.etree`` for EPUB (container, OPF spine) and DOCX (``word/document.xml``). Encodings are
found from the content: a byte-order mark, then strict UTF-8, then ``charset-normalizer`` (which
tells GB18030 from Big5 from UTF-16 without a BOM); a declared ``<meta charset>`` in HTML is
tried first when it decodes cleanly.

Offsets: for ``.txt``/``.md`` the text is the decoded file, so character offsets are code points
of the file. For HTML, ``DecodedText.source`` maps every visible character back to its code
point in the decoded HTML source (entities map to their ``&``). EPUB and DOCX are zip archives
of markup: their offsets are code points of the extracted text (``copytrace text FILE`` prints
it), the only text the user can point into.
"""
from __future__ import annotations

import codecs
import re
import zipfile
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path, PurePosixPath
from xml.etree import ElementTree

import numpy as np

from copytrace.errors import MediaError

TEXT_SUFFIXES = {".txt": "txt", ".text": "txt", ".md": "md", ".markdown": "md",
                 ".html": "html", ".htm": "html", ".xhtml": "html", ".epub": "epub",
                 ".docx": "docx"}
MAX_FILE_BYTES = 64 * 1024 * 1024
MAX_ARCHIVE_BYTES = 256 * 1024 * 1024  # uncompressed members of one EPUB/DOCX
MAX_CHARS = 32_000_000


class TextDecodeError(MediaError):
    """A file that is not readable text, naming the file and the cause."""

    def __init__(self, path: str, cause: str) -> None:
        super().__init__(path, cause)


@dataclass(frozen=True)
class DecodedText:
    """``text``: what a reader sees; ``source``: for each character of ``text`` its code point
    in ``source_text`` (None when ``text`` is the file itself); ``encoding`` as detected."""

    text: str
    format: str
    encoding: str
    source: np.ndarray | None = None
    source_text: str | None = None

    def to_source(self, offsets: np.ndarray) -> np.ndarray:
        """Offsets into ``text`` (end positions allowed) as offsets into the original."""
        offsets = np.asarray(offsets, dtype=np.int64)
        if self.source is None:
            return offsets
        ext = np.concatenate((self.source, [len(self.source_text or "")]))
        return ext[offsets]


def visible(decoded: DecodedText, start: int, end: int) -> str:
    """The text a reader sees between two offsets of the original (``to_source`` inverted)."""
    if decoded.source is None:
        return decoded.text[start:end]
    i0 = int(np.searchsorted(decoded.source, start, side="left"))
    i1 = int(np.searchsorted(decoded.source, end, side="left"))
    return decoded.text[i0:i1]


def text_format(path: str) -> str | None:
    return TEXT_SUFFIXES.get(Path(path).suffix.lower())


def read_text(path: str, max_bytes: int = MAX_FILE_BYTES, max_chars: int = MAX_CHARS,
              fmt: str | None = None) -> DecodedText:
    """Decode ``path`` (format from ``fmt``, else its suffix, else sniffed as plain text)."""
    p = Path(path)
    try:
        size = p.stat().st_size
    except OSError as e:
        raise TextDecodeError(path, f"cannot read: {e.strerror or e}") from None
    if size > max_bytes:
        raise TextDecodeError(path, f"{size} bytes is over the text size limit of {max_bytes}")
    data = p.read_bytes()
    fmt = fmt or text_format(path) or ("epub" if data[:2] == b"PK" and b"epub" in data[:100]
                                       else "txt")
    if fmt in ("epub", "docx"):
        text = _read_epub(path, data) if fmt == "epub" else _read_docx(path, data)
        out = DecodedText(text, fmt, "utf-8")
    elif fmt == "html":
        out = _read_html(path, data)
    else:
        text, enc = decode_bytes(path, data)
        out = DecodedText(text, fmt, enc)
    if len(out.text) > max_chars:
        raise TextDecodeError(path, f"{len(out.text)} characters is over the limit of {max_chars}")
    if not out.text.strip():
        raise TextDecodeError(path, "no text in the file")
    return out


_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
         (codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
         (codecs.BOM_UTF16_BE, "utf-16"))


def decode_bytes(path: str, data: bytes, declared: str | None = None) -> tuple[str, str]:
    """Decode bytes of text whatever their encoding; binary data raises TextDecodeError."""
    for bom, enc in _BOMS:
        if data.startswith(bom):
            return _checked(path, data.decode(enc, errors="strict"), enc), enc
    candidates = ([declared] if declared else []) + ["utf-8"]
    for enc in candidates:
        try:
            return _checked(path, data.decode(enc), enc), enc
        except (UnicodeDecodeError, LookupError):
            pass
    if b"\x00" in data[:4096] and not _looks_utf16(data):
        raise TextDecodeError(path, "binary data (NUL bytes), not text")
    try:
        from charset_normalizer import from_bytes
    except ImportError:
        raise ImportError("detecting text encodings needs charset-normalizer: "
                          "pip install 'copytrace[text]'") from None
    best = from_bytes(data).best()
    if best is not None:
        return _checked(path, str(best), best.encoding), best.encoding
    # charset-normalizer gives up on texts with a few odd bytes (terminal escapes, say):
    # strict decodings of the common CJK encodings decide then
    for enc in _FALLBACKS:
        try:
            return _checked(path, data.decode(enc), enc), enc
        except (UnicodeDecodeError, TextDecodeError):
            pass
    raise TextDecodeError(path, "binary data or an unknown encoding, not text")


_FALLBACKS = ("gb18030", "big5", "utf-16")


def _looks_utf16(data: bytes) -> bool:
    head = data[:4096]
    even, odd = head[0::2].count(0), head[1::2].count(0)
    return max(even, odd) > len(head) // 8 and min(even, odd) < len(head) // 64 + 1


_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1a\x1c-\x1f\x7f]")  # ESC: colour codes


def _checked(path: str, text: str, enc: str) -> str:
    """Refuse decodings that are mostly control characters (binary read as text)."""
    sample = text[:65536]
    if sample and len(_CONTROL.findall(sample)) > max(16, len(sample) // 20):
        raise TextDecodeError(path, f"binary data (control characters when read as {enc})")
    return text


# -- HTML ---------------------------------------------------------------------------------
_SKIP = {"script", "style", "noscript", "template", "head", "svg", "math"}
_BLOCK = {"p", "div", "br", "li", "ul", "ol", "tr", "td", "th", "h1", "h2", "h3", "h4", "h5",
          "h6", "section", "article", "header", "footer", "blockquote", "pre", "hr", "table",
          "title", "dd", "dt", "figcaption", "nav", "aside", "main"}


class _VisibleText(HTMLParser):
    """Collects visible text with each character's code point in the source."""

    def __init__(self, source: str) -> None:
        super().__init__(convert_charrefs=False)
        self.source = source
        self.line_starts = [0] + [m.end() for m in re.finditer("\n", source)]
        self.parts: list[str] = []
        self.where: list[np.ndarray] = []
        self.skip = 0

    def _offset(self) -> int:
        line, col = self.getpos()
        return self.line_starts[line - 1] + col

    def _emit(self, text: str, at: int, span: int | None) -> None:
        if self.skip or not text:
            return
        self.parts.append(text)
        if span is None:  # raw data: character i sits at at + i
            self.where.append(np.arange(at, at + len(text), dtype=np.int64))
        else:  # an entity or a separator: every character points at its start
            self.where.append(np.full(len(text), at, dtype=np.int64))

    def handle_starttag(self, tag, attrs):
        if tag in _SKIP:
            self.skip += 1
        elif tag in _BLOCK:
            self._emit("\n", self._offset(), 0)

    def handle_startendtag(self, tag, attrs):
        if tag in _BLOCK:
            self._emit("\n", self._offset(), 0)

    def handle_endtag(self, tag):
        if tag in _SKIP:
            self.skip = max(0, self.skip - 1)
        elif tag in _BLOCK:
            self._emit("\n", self._offset(), 0)

    def handle_data(self, data):
        self._emit(data, self._offset(), None)

    def handle_entityref(self, name):
        import html

        self._emit(html.unescape(f"&{name};"), self._offset(), 1)

    def handle_charref(self, name):
        import html

        self._emit(html.unescape(f"&#{name};"), self._offset(), 1)


def html_visible_text(source: str) -> tuple[str, np.ndarray]:
    parser = _VisibleText(source)
    parser.feed(source)
    parser.close()
    if not parser.parts:
        return "", np.zeros(0, dtype=np.int64)
    return "".join(parser.parts), np.concatenate(parser.where)


_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([A-Za-z0-9_\-]+)""", re.IGNORECASE)


def _read_html(path: str, data: bytes) -> DecodedText:
    m = _META_CHARSET.search(data[:4096])
    source, enc = decode_bytes(path, data, m.group(1).decode("ascii") if m else None)
    text, where = html_visible_text(source)
    return DecodedText(text, "html", enc, where, source)


# -- archives -----------------------------------------------------------------------------
def _open_zip(path: str, data: bytes) -> zipfile.ZipFile:
    import io

    try:
        z = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise TextDecodeError(path, "not a zip archive (EPUB and DOCX files are zips)") from None
    total = sum(i.file_size for i in z.infolist())
    if total > MAX_ARCHIVE_BYTES:
        raise TextDecodeError(path, f"archive unpacks to {total} bytes, over the limit of "
                                    f"{MAX_ARCHIVE_BYTES}")
    return z


def _member(path: str, z: zipfile.ZipFile, name: str) -> bytes:
    try:
        return z.read(name)
    except KeyError:
        raise TextDecodeError(path, f"archive has no {name}") from None
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise TextDecodeError(path, f"damaged archive member {name}: {e}") from None


def _xml(path: str, data: bytes, name: str) -> ElementTree.Element:
    try:
        return ElementTree.fromstring(data)
    except ElementTree.ParseError as e:
        raise TextDecodeError(path, f"malformed XML in {name}: {e}") from None


def _read_epub(path: str, data: bytes) -> str:
    z = _open_zip(path, data)
    container = _xml(path, _member(path, z, "META-INF/container.xml"), "container.xml")
    rootfile = next((el.get("full-path") for el in container.iter()
                     if el.tag.endswith("rootfile") and el.get("full-path")), None)
    if rootfile is None:
        raise TextDecodeError(path, "EPUB container names no package document")
    opf = _xml(path, _member(path, z, rootfile), rootfile)
    base = PurePosixPath(rootfile).parent
    items = {el.get("id"): el.get("href") for el in opf.iter() if el.tag.endswith("}item")}
    spine = [el.get("idref") for el in opf.iter() if el.tag.endswith("}itemref")]
    chapters = []
    for idref in spine:
        href = items.get(idref)
        if not href:
            continue
        name = str(base / href) if str(base) != "." else href
        source, _ = decode_bytes(f"{path}!{name}", _member(path, z, name))
        text, _where = html_visible_text(source)
        chapters.append(text.strip("\n"))
    return "\n\n".join(c for c in chapters if c)


_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"


def _read_docx(path: str, data: bytes) -> str:
    z = _open_zip(path, data)
    root = _xml(path, _member(path, z, "word/document.xml"), "word/document.xml")
    out: list[str] = []
    for para in root.iter(_W + "p"):
        pieces = []
        for el in para.iter():
            if el.tag == _W + "t" and el.text:
                pieces.append(el.text)
            elif el.tag == _W + "tab":
                pieces.append("\t")
            elif el.tag in (_W + "br", _W + "cr"):
                pieces.append("\n")
        out.append("".join(pieces))
    return "\n".join(out)

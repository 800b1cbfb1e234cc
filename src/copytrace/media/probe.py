"""Sniff a file's media type from its content (never from its extension) and check limits."""
from __future__ import annotations

import errno
import hashlib
import os
import stat
from dataclasses import dataclass
from typing import TYPE_CHECKING

from copytrace.errors import MediaError, NotMediaError

if TYPE_CHECKING:
    from copytrace.media.audio import AudioInfo
    from copytrace.media.video import VideoInfo

# (magic bytes at offset 0, format name). Checked in order.
_IMAGE_MAGIC = (
    (b"\xff\xd8\xff", "jpeg"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"BM", "bmp"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
)
_TEXT_HINT = b"\t\n\r\x0c\x1b" + bytes(range(0x20, 0x7F))


@dataclass(frozen=True)
class Sniffed:
    media_type: str  # image | video | audio | text
    format: str


@dataclass(frozen=True)
class MediaInfo:
    """One file as every stage of a request sees it: sniffed, hashed and its streams probed
    once (``probe``), then passed along instead of the path being reopened to ask again.

    ``video``: the video stream's header (media_type 'video'); ``audio``: the audio stream's
    (media_type 'audio'; a video's soundtrack is ``video.has_audio``). ``duration_s`` is the
    announced duration (None for images and texts, and for audio whose header omits it).
    """

    path: str
    media_type: str
    format: str
    sha256: str
    duration_s: float | None = None
    video: VideoInfo | None = None
    audio: AudioInfo | None = None

    @property
    def has_audio(self) -> bool:
        return self.audio is not None or bool(self.video is not None and self.video.has_audio)


def file_sha256(path: str) -> str:
    """Hex SHA-256 of a file's content; MediaError naming the file when it cannot be read."""
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    except OSError as e:
        raise MediaError(path, f"cannot read: {e.strerror or e}") from None
    return h.hexdigest()


def probe(path: str, sniffed: Sniffed | None = None, sha256: str | None = None) -> MediaInfo:
    """Sniff (unless ``sniffed`` is given), hash (unless ``sha256`` is; "" leaves the file
    unhashed) and read the stream headers of ``path``: everything later stages need to know
    about the file without decoding it. MediaError naming the cause when it is not usable."""
    sniffed = sniffed or sniff(path)
    sha256 = file_sha256(path) if sha256 is None else sha256
    video = audio = None
    duration_s = None
    if sniffed.media_type == "video":
        from copytrace.media.video import probe_video

        video = probe_video(path)
        duration_s = video.duration_s
    elif sniffed.media_type == "audio":
        from copytrace.media.audio import probe_audio

        audio = probe_audio(path)
        duration_s = audio.duration_s
    return MediaInfo(path, sniffed.media_type, sniffed.format, sha256, duration_s, video, audio)


_UTF_BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")


def _text_format(head: bytes) -> str | None:
    """Text by content (issue 21): EPUB and DOCX zips, HTML, text with a byte-order mark, and
    heads that decode cleanly as UTF-8, GB18030 or Big5 (a multi-byte character cut at the end
    of the head allowed). Binary heads (NUL bytes without a BOM) are never text."""
    if head.startswith(b"PK\x03\x04"):
        if head[30:58] == b"mimetypeapplication/epub+zip":
            return "epub"
        if b"[Content_Types].xml" in head or b"word/" in head:
            return "docx"
        return None
    if head.startswith(_UTF_BOMS):
        body = head[3:] if head.startswith(b"\xef\xbb\xbf") else head
        if head.startswith(b"\xef\xbb\xbf") and b"\x00" in body:
            return None
        return "html" if _is_html(head) else "text"
    if b"\x00" in head or not head.strip():
        return None
    for enc in ("utf-8", "gb18030", "big5"):
        for cut in range(4):  # the head may end inside a multi-byte character
            try:
                decoded = head[:len(head) - cut].decode(enc)
            except UnicodeDecodeError:
                continue
            # the bar of text/decode.py (``_checked``), so a file the decoder reads is text
            # here too (a fortune cookie with a row of BEL characters)
            control = sum(1 for c in decoded if ord(c) < 32 and c not in "\t\n\r\x0c\x1b")
            if control > max(16, len(decoded) // 20):
                return None
            return "html" if _is_html(head) else "text"
    return None


def _is_html(head: bytes) -> bool:
    h = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return h.startswith((b"<!doctype html", b"<html")) or (h.startswith(b"<") and b"<body" in h)


def _container(head: bytes) -> str | None:
    """A container that may hold video and/or audio; PyAV decides which streams it has."""
    if head[4:8] == b"ftyp":
        return "mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "matroska"
    if head.startswith(b"RIFF") and head[8:12] == b"AVI ":
        return "avi"
    if head.startswith(b"OggS"):
        return "ogg"
    if head.startswith((b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3")):
        return "mpeg"
    if head[:1] == b"\x47" and len(head) > 188 and head[188:189] == b"\x47":
        return "mpegts"
    if head.startswith(b"FLV"):
        return "flv"
    if head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "mp3"
    if head.startswith(b"fLaC"):
        return "flac"
    if head.startswith((b"RIFF", b"RF64", b"BW64")) and head[8:12] == b"WAVE":
        return "wav"
    if head.startswith(b"\x30\x26\xb2\x75\x8e\x66\xcf\x11"):
        return "asf"
    return None


def special_file_kind(mode: int) -> str | None:
    """What a non-regular, non-directory file is ("a named pipe (FIFO)", ...), else None."""
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if not stat.S_ISREG(mode) and not stat.S_ISDIR(mode):
        return "an unknown kind of file"
    return None


def _read_head(path: str) -> tuple[int, bytes]:
    """(size, first 512 bytes) of a regular file. Special files are refused from ``stat``
    alone, never opened: reading a FIFO or a tty would block forever."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            raise MediaError(path, "broken symbolic link (its target does not exist)") from None
        raise MediaError(path, "no such file") from None
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise MediaError(path, "symbolic link loop (too many levels of links)") from None
        raise MediaError(path, f"cannot read: {e.strerror or e}") from None
    if stat.S_ISDIR(st.st_mode):
        try:
            os.listdir(path)
        except OSError as e:
            raise MediaError(path, f"cannot read folder: {e.strerror or e}") from None
        raise MediaError(path, "is a directory")
    special = special_file_kind(st.st_mode)
    if special:
        raise NotMediaError(path, f"is {special}, not a regular file (not opened)")
    try:
        # O_NONBLOCK: should the path turn into a FIFO after the stat, open does not block.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except OSError as e:
        raise MediaError(path, f"cannot read: {e.strerror or e}") from None
    try:
        st = os.fstat(fd)
        special = special_file_kind(st.st_mode)
        if special:
            raise NotMediaError(path, f"is {special}, not a regular file")
        return st.st_size, os.read(fd, 512)
    except OSError as e:
        raise MediaError(path, f"cannot read: {e.strerror or e}") from None
    finally:
        os.close(fd)


def sniff(path: str) -> Sniffed:
    """Return the media type of ``path`` or raise MediaError naming the cause (NotMediaError
    when the content is not media at all)."""
    size, head = _read_head(path)
    if size == 0:
        raise MediaError(path, "empty file (0 bytes)")
    for magic, fmt in _IMAGE_MAGIC:
        if head.startswith(magic):
            return Sniffed("image", fmt)
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return Sniffed("image", "webp")
    # byte-order marks and zips first (a UTF-16 BOM looks like an MPEG audio sync word), then
    # containers' magic, then text by content
    if head.startswith(_UTF_BOMS + (b"PK\x03\x04",)) and _text_format(head) is not None:
        return Sniffed("text", _text_format(head))
    container = _container(head)
    if container is not None:
        return Sniffed(_streams_kind(path, container), container)
    text_format = _text_format(head)
    if text_format is not None:
        return Sniffed("text", text_format)
    if head and all(b in _TEXT_HINT for b in head.replace(b"\xc2", b"").replace(b"\xc3", b"")):
        return Sniffed("text", "text")
    raise NotMediaError(path, "unrecognised file content (not a supported image, video or audio)")


def _streams_kind(path: str, container: str) -> str:
    """'video' if the container has a video stream, else 'audio'."""
    import av

    from copytrace.media._av_errors import av_cause

    try:
        with av.open(path) as c:
            if any(s.type == "video" and not _is_cover_art(s) for s in c.streams):
                return "video"
            if any(s.type == "audio" for s in c.streams):
                return "audio"
    except (av.FFmpegError, OSError, ValueError) as e:
        raise MediaError(path, f"corrupt or unsupported {container} file: {av_cause(e)}") from None
    raise MediaError(path, f"{container} file has neither a video nor an audio stream")


def _is_cover_art(stream) -> bool:
    disposition = getattr(stream, "disposition", None)
    try:
        return bool(disposition is not None and int(disposition) & 0x0400)  # attached_pic
    except (TypeError, ValueError):
        return False

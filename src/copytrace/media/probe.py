"""Sniff a file's media type from its content (never from its extension) and check limits."""
from __future__ import annotations

import os
from dataclasses import dataclass

from copytrace.errors import MediaError

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
    if head.startswith(b"RIFF") and head[8:12] == b"WAVE":
        return "wav"
    if head.startswith(b"\x30\x26\xb2\x75\x8e\x66\xcf\x11"):
        return "asf"
    return None


def sniff(path: str) -> Sniffed:
    """Return the media type of ``path`` or raise MediaError naming the cause."""
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(512)
    except FileNotFoundError:
        raise MediaError(path, "no such file") from None
    except IsADirectoryError:
        raise MediaError(path, "is a directory") from None
    except OSError as e:
        raise MediaError(path, f"cannot read: {e.strerror or e}") from None
    if size == 0:
        raise MediaError(path, "empty file (0 bytes)")
    for magic, fmt in _IMAGE_MAGIC:
        if head.startswith(magic):
            return Sniffed("image", fmt)
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return Sniffed("image", "webp")
    container = _container(head)
    if container is not None:
        return Sniffed(_streams_kind(path, container), container)
    if head and all(b in _TEXT_HINT for b in head.replace(b"\xc2", b"").replace(b"\xc3", b"")):
        return Sniffed("text", "text")
    raise MediaError(path, "unrecognised file content (not a supported image, video or audio)")


def _streams_kind(path: str, container: str) -> str:
    """'video' if the container has a video stream, else 'audio'."""
    import av

    try:
        with av.open(path) as c:
            if any(s.type == "video" and not _is_cover_art(s) for s in c.streams):
                return "video"
            if any(s.type == "audio" for s in c.streams):
                return "audio"
    except (av.FFmpegError, OSError, ValueError) as e:
        raise MediaError(path, f"corrupt or unsupported {container} file: {e}") from None
    raise MediaError(path, f"{container} file has neither a video nor an audio stream")


def _is_cover_art(stream) -> bool:
    disposition = getattr(stream, "disposition", None)
    try:
        return bool(disposition is not None and int(disposition) & 0x0400)  # attached_pic
    except (TypeError, ValueError):
        return False

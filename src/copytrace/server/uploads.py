"""Request bodies streamed to a temporary file in the library's ``uploads/.tmp/``, within a size
limit: a raw body (the file's bytes) or ``multipart/form-data`` with one file part (parsed as it
arrives, so the limit holds for both and nothing is spooled elsewhere). Whatever goes wrong,
the temporary file is removed before the error is answered.
"""
from __future__ import annotations

import hashlib
import os
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import HTTPException, Request

TMP_DIR = ".tmp"
MAX_FIELD_BYTES = 64 * 1024  # a form field beside the file (a title)


@dataclass
class Upload:
    path: Path
    filename: str
    sha256: str
    size: int
    fields: dict[str, str] = field(default_factory=dict)

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)


def safe_name(name: str | None) -> str:
    """A file name for display and for ``uploads/``: no folders, no control characters."""
    base = os.path.basename((name or "").replace("\\", "/"))
    base = re.sub(r"[\x00-\x1f\x7f]", "", base).strip().lstrip(".")
    return base[:120] or "upload"


def tmp_dir(uploads: Path) -> Path:
    d = uploads / TMP_DIR
    d.mkdir(parents=True, exist_ok=True)
    return d


def clean_stale(uploads: Path) -> int:
    """Remove temporary files of server processes that are gone (named ``<pid>-...``)."""
    d = uploads / TMP_DIR
    if not d.is_dir():
        return 0
    removed = 0
    for p in d.iterdir():
        pid = p.name.split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            p.unlink(missing_ok=True)
            removed += 1
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _too_large(limit: int) -> HTTPException:
    return HTTPException(413, f"upload is over the server's limit of {limit // (1024 * 1024)} MB "
                              "(copytrace serve --max-upload-mb)")


class _Sink:
    """The temporary file the upload's bytes go to, hashed and counted on the way."""

    def __init__(self, directory: Path, name: str, limit: int) -> None:
        self.path = directory / f"{os.getpid()}-{secrets.token_hex(8)}-{name}"
        self._f = open(self.path, "xb")  # noqa: SIM115 - closed in finish/abort
        self.sha = hashlib.sha256()
        self.size = 0
        self.limit = limit

    def write(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self.limit:
            raise _too_large(self.limit)
        self.sha.update(data)
        self._f.write(data)

    def finish(self) -> None:
        self._f.close()

    def abort(self) -> None:
        self._f.close()
        self.path.unlink(missing_ok=True)


async def receive(request: Request, uploads: Path, limit: int, filename: str | None) -> Upload:
    """Stream the request's file to a temporary file; raises HTTPException (400, 413, 415)."""
    ctype = request.headers.get("content-type", "")
    multipart = ctype.startswith("multipart/form-data")
    length = request.headers.get("content-length")
    slack = 64 * 1024 if multipart else 0  # the parts' headers and boundaries
    if length is not None and length.isdigit() and int(length) > limit + slack:
        raise _too_large(limit)  # refused before one byte is read
    if multipart:
        return (await _receive_multipart(request, uploads, limit, ctype, max_files=1))[0]
    sink = _Sink(tmp_dir(uploads), safe_name(filename), limit)
    try:
        async for chunk in request.stream():
            sink.write(chunk)
        sink.finish()
    except BaseException:
        sink.abort()
        raise
    if sink.size == 0:
        sink.abort()
        raise HTTPException(400, "empty upload: send the file's bytes as the request body, or "
                                 "multipart/form-data with a 'file' part")
    return Upload(sink.path, safe_name(filename), sink.sha.hexdigest(), sink.size)


async def receive_many(request: Request, uploads: Path, limit: int,
                       max_files: int) -> list[Upload]:
    """Several files as the parts of one multipart/form-data body; ``limit`` is for them all."""
    ctype = request.headers.get("content-type", "")
    if not ctype.startswith("multipart/form-data"):
        raise HTTPException(415, "send the files as multipart/form-data, one 'file' part each")
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit + 64 * 1024:
        raise _too_large(limit)
    return await _receive_multipart(request, uploads, limit, ctype, max_files)


class _Budget:
    """Bytes left for the whole body, shared by its file parts."""

    def __init__(self, limit: int) -> None:
        self.limit, self.used = limit, 0

    def take(self, n: int) -> None:
        self.used += n
        if self.used > self.limit:
            raise _too_large(self.limit)


async def _receive_multipart(request: Request, uploads: Path, limit: int,
                             ctype: str, max_files: int) -> list[Upload]:
    from python_multipart.exceptions import FormParserError
    from python_multipart.multipart import MultipartParser, parse_options_header

    _, opts = parse_options_header(ctype)
    boundary = opts.get(b"boundary")
    if not boundary:
        raise HTTPException(400, "multipart/form-data without a boundary")
    state: dict = {"headers": {}, "field": b"", "hname": b"", "hvalue": b"", "part": None}
    fields: dict[str, str] = {}
    sinks: list[_Sink] = []
    names: list[str] = []
    directory = tmp_dir(uploads)
    budget = _Budget(limit)

    def on_header_field(data, start, end):
        state["hname"] += data[start:end]

    def on_header_value(data, start, end):
        state["hvalue"] += data[start:end]

    def on_header_end():
        state["headers"][state["hname"].lower()] = state["hvalue"]
        state["hname"], state["hvalue"] = b"", b""

    def on_headers_finished():
        _, disp = parse_options_header(state["headers"].get(b"content-disposition", b""))
        name = disp.get(b"name", b"").decode("utf-8", "replace")
        fname = disp.get(b"filename")
        if fname is not None:
            if len(sinks) >= max_files:
                raise HTTPException(400, f"at most {max_files} file(s) in this request")
            display = safe_name(fname.decode("utf-8", "replace"))
            sinks.append(_Sink(directory, display, limit))
            names.append(display)
            state["part"] = ("file", None)
        else:
            state["part"] = ("field", name)
            state["field"] = b""

    def on_part_data(data, start, end):
        kind, _ = state["part"]
        if kind == "file":
            budget.take(end - start)
            sinks[-1].write(data[start:end])
        else:
            state["field"] += data[start:end]
            if len(state["field"]) > MAX_FIELD_BYTES:
                raise HTTPException(400, f"form field over {MAX_FIELD_BYTES} bytes")

    def on_part_end():
        kind, name = state["part"] or ("", None)
        if kind == "field":
            fields[name] = state["field"].decode("utf-8", "replace")
        state["part"], state["headers"] = None, {}

    parser = MultipartParser(boundary, {
        "on_header_field": on_header_field, "on_header_value": on_header_value,
        "on_header_end": on_header_end, "on_headers_finished": on_headers_finished,
        "on_part_data": on_part_data, "on_part_end": on_part_end,
    })
    try:
        async for chunk in request.stream():
            try:
                parser.write(chunk)
            except FormParserError as e:
                raise HTTPException(400, f"malformed multipart body: {e}") from None
        try:
            parser.finalize()
        except FormParserError as e:
            raise HTTPException(400, f"malformed multipart body: {e}") from None
        if not sinks:
            raise HTTPException(400, "multipart body without a file part (name it 'file')")
        for sink in sinks:
            sink.finish()
        empty = [n for n, sink in zip(names, sinks) if sink.size == 0]
        if empty:
            raise HTTPException(400, f"empty file part: {empty[0]}")
    except BaseException:
        for sink in sinks:
            sink.abort()
        raise
    return [Upload(sink.path, name, sink.sha.hexdigest(), sink.size, fields)
            for name, sink in zip(names, sinks)]

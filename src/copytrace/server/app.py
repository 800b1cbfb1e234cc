"""HTTP service: a thin JSON layer over one ``Library``, plus a web page. Standard library only.

    POST   /api/query?filename=NAME[&top_k=K&min_score=S&evidence=1]   body: the file's bytes
    POST   /api/works?filename=NAME[&title=T]               body: the file's bytes (registers it)
    GET    /api/works            GET /api/works/ID          DELETE /api/works/ID
    GET    /api/health           GET /  (the web page)
    GET    /api/ledger/checkpoint (signed note)   GET /api/ledger/vkey   GET /api/ledger/verify
    GET    /api/ledger/proof/ID   POST /api/ledger/consistency   body: a checkpoint you saved

Uploaded bytes are written to ``uploads/`` inside the library folder (registered works must stay
on disk for evidence reports); queries use a temporary file that is deleted afterwards.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from copytrace.errors import CopytraceError, LedgerError, MediaError, UnknownWorkError

log = logging.getLogger(__name__)
STATIC = Path(__file__).resolve().parent / "static"
MAX_UPLOAD_BYTES = 512 * 1024 * 1024


class _Handler(BaseHTTPRequestHandler):
    server: CopytraceServer

    def log_message(self, fmt: str, *args) -> None:
        log.info("%s %s", self.address_string(), fmt % args)

    # -- plumbing ---------------------------------------------------------------------------
    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, obj) -> None:
        self._send(status, json.dumps(obj).encode(), "application/json")

    def _error(self, status: int, message: str) -> None:
        self._json(status, {"error": message})

    def _upload(self, directory: Path) -> tuple[Path, dict]:
        params = {k: v[-1] for k, v in parse_qs(urlparse(self.path).query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        if length <= 0:
            raise ValueError("empty upload: send the file's bytes as the request body")
        if length > MAX_UPLOAD_BYTES:
            raise ValueError(f"upload of {length} bytes is over the {MAX_UPLOAD_BYTES} limit")
        name = os.path.basename(params.get("filename") or "upload") or "upload"
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".up-", suffix="-" + name, dir=directory)
        h = hashlib.sha256()
        with os.fdopen(fd, "wb") as f:
            remaining = length
            while remaining:
                chunk = self.rfile.read(min(remaining, 1 << 20))
                if not chunk:
                    raise ValueError("upload ended early")
                h.update(chunk)
                f.write(chunk)
                remaining -= len(chunk)
        return Path(tmp), {**params, "filename": name, "sha256": h.hexdigest()}

    # -- routes -----------------------------------------------------------------------------
    def do_GET(self) -> None:
        path = urlparse(self.path).path
        lib = self.server.library
        if path in ("/", "/index.html"):
            self._send(200, (STATIC / "index.html").read_bytes(), "text/html; charset=utf-8")
        elif path == "/api/health":
            self._json(200, {"ok": True, "works": lib.store.catalog.count()})
        elif path == "/api/works":
            with self.server.lock:
                self._json(200, [w.to_dict() for w in lib.works()])
        elif path.startswith("/api/works/"):
            try:
                with self.server.lock:
                    self._json(200, lib.get(path.rsplit("/", 1)[1]).to_dict())
            except UnknownWorkError as e:
                self._error(404, str(e))
        elif path.startswith("/api/ledger/"):
            self._ledger_get(path.removeprefix("/api/ledger/"))
        else:
            self._error(404, f"no route {path}")

    def _ledger_get(self, what: str) -> None:
        from copytrace.ledger.verify import verify_log

        store = self.server.library.store
        with self.server.lock:
            if what == "checkpoint":
                self._send(200, store.checkpoint().encode(), "text/plain; charset=utf-8")
            elif what == "vkey":
                self._send(200, (store.signer().vkey + "\n").encode(), "text/plain")
            elif what == "verify":
                problems = verify_log(store.catalog, store.signer().vkey)
                self._json(200, {"ok": not problems, "problems": problems})
            elif what.startswith("proof/"):
                try:
                    self._json(200, store.prove(what.removeprefix("proof/")))
                except LedgerError as e:
                    self._error(404, str(e))
            else:
                self._error(404, f"no route /api/ledger/{what}")

    def do_DELETE(self) -> None:
        path = urlparse(self.path).path
        if not path.startswith("/api/works/"):
            return self._error(404, f"no route {path}")
        try:
            with self.server.lock:
                self._json(200, self.server.library.remove(path.rsplit("/", 1)[1]).to_dict())
        except UnknownWorkError as e:
            self._error(404, str(e))

    def do_POST(self) -> None:
        path = urlparse(self.path).path
        lib = self.server.library
        if path == "/api/ledger/consistency":
            return self._ledger_consistency()
        if path not in ("/api/query", "/api/works"):
            return self._error(404, f"no route {path}")
        uploads = lib.store.root / "uploads"
        try:
            tmp, params = self._upload(uploads)
        except ValueError as e:
            return self._error(400, str(e))
        try:
            with self.server.lock:
                if path == "/api/query":
                    top_k = int(params.get("top_k", 10))
                    min_score = float(params["min_score"]) if "min_score" in params else None
                    result = lib.query(str(tmp), top_k=top_k, min_score=min_score)
                    res = result.to_dict()
                    res["query"]["path"] = params["filename"]
                    if params.get("evidence") in ("1", "true"):
                        res["evidence"] = self._evidence(lib, result, tmp)
                    self._json(200, res)
                else:
                    final = uploads / f"{params['sha256'][:16]}-{params['filename']}"
                    os.replace(tmp, final)
                    tmp = final
                    added = lib.add(str(final), title=params.get("title"))
                    status = HTTPStatus.CREATED if added.created else HTTPStatus.OK
                    self._json(status, {"created": added.created, **added.work.to_dict()})
        except MediaError as e:
            self._error(422, f"{params['filename']}: {e.cause}")
        except (CopytraceError, ValueError) as e:
            self._error(400, str(e))
        finally:
            if path == "/api/query" or (tmp.exists() and tmp.name.startswith(".up-")):
                tmp.unlink(missing_ok=True)


    @staticmethod
    def _evidence(lib, result, query_path: Path) -> list[dict]:
        """Bundles kept under the library's evidence/ folder, returned inline (JSON)."""
        from copytrace.evidence import BUNDLE_FILE, write_bundles

        folders = write_bundles(lib, result, str(query_path), lib.store.root / "evidence")
        return [json.loads((f / BUNDLE_FILE).read_text(encoding="utf-8")) for f in folders]

    def _ledger_consistency(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if not 0 < length <= 64 * 1024:
            return self._error(400, "send the saved checkpoint (at most 64 KiB) as the body")
        note = self.rfile.read(length).decode("utf-8", "replace")
        try:
            with self.server.lock:
                self._json(200, self.server.library.store.consistency(note))
        except LedgerError as e:
            self._error(409, str(e))


class CopytraceServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], library) -> None:
        super().__init__(address, _Handler)
        self.library = library
        # One encoder and one SQLite connection: requests take turns on them.
        self.lock = threading.Lock()

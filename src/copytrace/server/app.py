"""HTTP service: a thin FastAPI layer over one library folder, plus a web page.

    POST   /api/query?filename=NAME[&top_k=K&min_score=S&evidence=1&report=1&mode=auto|sync|job]
    POST   /api/works?filename=NAME[&title=T&mode=...]      register a work
    POST   /api/query/batch[?top_k=K&min_score=S]   multipart, one 'file' part per file: a job
           body: the file's bytes, or multipart/form-data with a 'file' part (and 'title')
    GET    /api/works?limit=&offset=     GET|DELETE /api/works/ID     GET /api/works/ID/file
    GET    /api/jobs/ID   GET /api/jobs   GET /api/health   GET /  (the web page)
    GET    /api/keys   POST /api/keys?name=&scope=   DELETE /api/keys/ID          (admin)
    GET    /api/ledger/checkpoint|vkey|verify|proof/ID   POST /api/ledger/consistency
    GET    /openapi.json   /docs

Every route but the page, /api/health and the schema needs ``Authorization: Bearer KEY`` with
the route's scope (``copytrace keys add``), unless the server was started with ``no_auth`` on
a loopback address. Uploads stream to ``uploads/.tmp/`` within ``max_upload_mb`` (413 beyond);
registered files move to ``uploads/``, every other temporary file is deleted before the answer.
Engine calls run on ``jobs.EnginePool`` workers; listings and the ledger read the catalogue
through a connection of their own, so they answer while long jobs run.
"""
from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

try:
    import uvicorn
    from fastapi import Depends, FastAPI, HTTPException, Query, Request
    from fastapi import Path as PathParam
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, PlainTextResponse
    from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
    from starlette.exceptions import HTTPException as StarletteHTTPException
except ModuleNotFoundError as e:
    raise ModuleNotFoundError(
        f"the HTTP service needs the [server] extra ({e.name} is missing): "
        "pip install 'copytrace[server]'") from e

import copytrace
from copytrace.deadline import DeadlineExceeded, within
from copytrace.errors import (
    CopytraceError,
    LedgerError,
    MediaError,
    UnknownWorkError,
)
from copytrace.progress import reporting
from copytrace.server import uploads as up
from copytrace.server.jobs import EnginePool, JobStore
from copytrace.server.keys import SCOPES, ApiKey, KeyStore, RateLimiter

log = logging.getLogger(__name__)
STATIC = Path(__file__).resolve().parent / "static"
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1", "[::1]")
_ANONYMOUS = ApiKey("anonymous", "anonymous (--no-auth)", "admin", 0.0, None, None)


def is_loopback(host: str) -> bool:
    if host.strip("[]") in ("localhost",):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ServerConfig:
    """How a server runs. ``no_auth`` is refused unless ``host`` is a loopback address."""

    host: str = "127.0.0.1"
    max_upload_mb: int = 512
    no_auth: bool = False
    cors_origins: tuple[str, ...] = ()
    rate_per_min: int = 600  # per key, unless the key has its own; 0 = no limit
    short_workers: int = 1  # requests answered while the client waits
    long_workers: int = 1  # jobs
    job_above_s: float = 30.0  # mode=auto: video/audio longer than this becomes a job
    sync_wait_s: float = 20.0  # mode=auto: work still running after this continues as a job
    job_retention_days: float = 7.0  # finished jobs older than this are dropped at start
    request_timeout_s: float = 0.0  # engine work of one request (or job, or batch file); 0: none
    # Past its limit a request is answered (504) even if its worker has not reached a check of
    # the limit yet (a long native call): this long after the limit.
    stop_grace_s: float = 5.0

    def __post_init__(self) -> None:
        if self.no_auth and not is_loopback(self.host):
            raise ValueError(f"--no-auth serves on loopback only, not {self.host}; create keys "
                             "with `copytrace keys add NAME --scope admin` to serve elsewhere")
        if self.max_upload_mb < 1:
            raise ValueError("max_upload_mb must be >= 1")
        if self.rate_per_min < 0:
            raise ValueError("rate_per_min must be >= 0 (0 = no limit)")
        if self.sync_wait_s <= 0 or self.job_retention_days < 0 or self.job_above_s < 0:
            raise ValueError("sync_wait_s must be > 0, job_above_s and job_retention_days >= 0")
        if self.request_timeout_s < 0 or self.stop_grace_s < 0:
            raise ValueError("request_timeout_s (0 = no limit) and stop_grace_s must be >= 0")
        if self.short_workers < 1 or self.long_workers < 1:
            raise ValueError("short_workers and long_workers must be >= 1")
        for origin in self.cors_origins:
            if origin == "*" or not origin.startswith(("http://", "https://")):
                raise ValueError(f"CORS origin {origin!r}: give full origins such as "
                                 "https://app.example.com (a wildcard is not accepted)")

    @property
    def max_upload_bytes(self) -> int:
        return self.max_upload_mb * 1024 * 1024


class Service:
    """What the routes share: the library folder, its keys and jobs, the engine pool."""

    def __init__(self, library, config: ServerConfig) -> None:
        from copytrace.engine import Library
        from copytrace.store import Store

        self.config = config
        self.root = Path(library.store.root)
        self.uploads = self.root / "uploads"
        self.keys = KeyStore(self.root)
        if not config.no_auth and self.keys.active_count() == 0:
            self.keys.close()
            raise ValueError(
                f"the library at {self.root} has no API keys: create one with "
                "`copytrace keys add NAME --scope admin` (it prints the key), or serve on "
                "loopback without keys with --no-auth")
        self.limiter = RateLimiter()
        self.jobs = JobStore(self.root)
        for stale in self.jobs.fail_unfinished():
            Path(stale).unlink(missing_ok=True)
        self.jobs.prune(config.job_retention_days * 86400.0)
        up.clean_stale(self.uploads)
        # Reads (listings, ledger) on a connection and index cache of their own.
        self.reader = Store(self.root, create=False, index=library.config.index)
        self.reader_lock = threading.Lock()
        config_ = library.config
        self.pool = EnginePool(lambda: Library.open(self.root, config_, create=False),
                               config.short_workers, config.long_workers, first_library=library)

    def close(self) -> None:
        self.pool.close()
        self.reader.close()
        self.jobs.close()
        self.keys.close()


# -- auth ---------------------------------------------------------------------------------------
_bearer = HTTPBearer(auto_error=False, description="an API key from `copytrace keys add`")


def _authorize(request: Request, creds: HTTPAuthorizationCredentials | None, scope: str) -> ApiKey:
    svc: Service = request.app.state.service
    if svc.config.no_auth:
        key = _ANONYMOUS
    else:
        if creds is None or creds.scheme.lower() != "bearer" or not creds.credentials:
            raise HTTPException(401, "send an API key: Authorization: Bearer KEY",
                                headers={"WWW-Authenticate": "Bearer"})
        key = svc.keys.lookup(creds.credentials)
        if key is None:
            raise HTTPException(401, "unknown or revoked API key",
                                headers={"WWW-Authenticate": "Bearer"})
        if not key.allows(scope):
            raise HTTPException(403, f"this key's scope is {key.scope!r}; this needs {scope!r}")
    per_min = key.rate_per_min if key.rate_per_min is not None else svc.config.rate_per_min
    wait_s = svc.limiter.take(key.key_id, per_min)
    if wait_s > 0:
        raise HTTPException(429, f"rate limit of {per_min} requests a minute for this key",
                            headers={"Retry-After": str(max(1, round(wait_s)))})
    return key


def _scope(scope: str):
    def dependency(request: Request,
                   creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]):
        return _authorize(request, creds, scope)

    dependency.__name__ = f"needs_{scope}"
    return Depends(dependency)


QueryKey = Annotated[ApiKey, _scope("query")]
RegisterKey = Annotated[ApiKey, _scope("register")]
AdminKey = Annotated[ApiKey, _scope("admin")]
Mode = Literal["auto", "sync", "job"]
_UPLOAD_BODY = {"requestBody": {"required": True, "content": {
    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
    "multipart/form-data": {"schema": {
        "type": "object", "required": ["file"],
        "properties": {"file": {"type": "string", "format": "binary"},
                       "title": {"type": "string"}}}},
}}}


MAX_BATCH_FILES = 64
_BATCH_BODY = {"requestBody": {"required": True, "content": {
    "multipart/form-data": {"schema": {
        "type": "object", "required": ["file"],
        "properties": {"file": {"type": "array", "items": {"type": "string", "format": "binary"},
                                "maxItems": MAX_BATCH_FILES}}}},
}}}


# -- engine work (runs on a pool worker, with that worker's Library) ----------------------------
def _error_status(e: BaseException, filename: str) -> tuple[int, str]:
    if isinstance(e, DeadlineExceeded):
        return 504, (f"{filename}: {e}, the server's limit for one request "
                     "(copytrace serve --request-timeout-s); nothing was kept")
    if isinstance(e, MediaError):
        return 422, f"{filename}: {e.cause}"
    if isinstance(e, UnknownWorkError):
        return 404, str(e)
    if isinstance(e, (CopytraceError, ValueError)):
        return 400, str(e)
    log.exception("internal error on %s", filename, exc_info=e)
    return 500, "internal error (see the server's log)"


def _query_work(upload: up.Upload, top_k: int, min_score: float | None, evidence: bool,
                report: bool, evidence_dir: Path, limit_s: float = 0.0):
    """The query within ``limit_s`` seconds (describing and matching; the evidence drawn after
    it is a few seeks per match, and stopping it halfway would leave half a bundle)."""
    def run(lib) -> tuple[int, dict]:
        with within(limit_s):
            result = lib.query(str(upload.path), top_k=top_k, min_score=min_score)
        res = result.to_dict()
        res["query"]["path"] = upload.filename
        if evidence:
            import json

            from copytrace.evidence import BUNDLE_FILE, write_bundles

            folders = write_bundles(lib, result, str(upload.path), evidence_dir)
            res["evidence"] = [json.loads((f / BUNDLE_FILE).read_text(encoding="utf-8"))
                               for f in folders]
        if report:
            from copytrace.report import render_html

            res["report_html"] = render_html([result], f"copytrace: {upload.filename}",
                                             library=lib,
                                             names={str(upload.path): upload.filename})
        return 200, res

    return run


def _add_work(upload: up.Upload, title: str | None, uploads: Path, limit_s: float = 0.0):
    """Registration within ``limit_s`` seconds: the file is described before anything is
    written, so a stopped registration leaves the library as it was."""
    def run(lib) -> tuple[int, dict]:
        existing = lib.store.catalog.find_sha(upload.sha256)
        if existing is not None:
            return 200, {"created": False, **existing.to_dict()}
        final = uploads / f"{upload.sha256[:16]}-{upload.filename}"
        os.replace(upload.path, final)
        try:
            with within(limit_s):
                added = lib.add(str(final), title=title or Path(upload.filename).stem)
        except BaseException:
            final.unlink(missing_ok=True)
            raise
        if not added.created and Path(added.work.path) != final.resolve():
            final.unlink(missing_ok=True)  # another request registered these bytes first
        return (201 if added.created else 200), {"created": added.created,
                                                  **added.work.to_dict()}

    return run


def _media_seconds(path: Path) -> float | None:
    """The duration of a video or audio file from its container (None when unknown)."""
    from copytrace.media.probe import sniff

    try:
        if sniff(str(path)).media_type not in ("video", "audio"):
            return None
        import av

        with av.open(str(path)) as c:
            return c.duration / 1e6 if c.duration else None
    except Exception:  # noqa: BLE001 - unreadable here means the engine reports why
        return None


async def _run(request: Request, key: ApiKey, kind: str, upload: up.Upload, mode: str, work):
    """Run ``work`` now (short lane) or as a job (long lane, 202); the upload is always gone
    when the work has finished, whatever happened."""
    svc: Service = request.app.state.service
    if mode == "auto":
        seconds = await asyncio.to_thread(_media_seconds, upload.path)
        mode = "job" if seconds is not None and seconds > svc.config.job_above_s else "auto-sync"

    progress = _JobProgress(svc)

    def guarded(lib):
        try:
            with reporting(progress.report):
                return work(lib)
        finally:
            upload.discard()

    if mode in ("sync", "auto-sync"):
        fut = svc.pool.submit("short", guarded)
        # auto: a client waits at most sync_wait_s; then the work goes on as a job (202).
        limit_s = svc.config.sync_wait_s if mode == "auto-sync" else None
        stop_s = _stop_s(svc.config)
        to_job = stop_s is None or (limit_s is not None and limit_s < stop_s)
        wait_s = limit_s if to_job else stop_s
        try:
            # queued behind other work, the limit has not begun: wait for the start first
            if not to_job:
                await asyncio.shield(asyncio.wrap_future(svc.pool.started(fut)))
            status, body = await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(fut)),
                                                  wait_s)
        except asyncio.TimeoutError:  # not TimeoutError: they differ on Python 3.10
            if to_job:
                return _continue_as_job(svc, key, kind, upload, fut, progress)
            # the worker is in a long native call: answer now, it stops at its next check
            status, message = _error_status(
                DeadlineExceeded(svc.config.request_timeout_s, "still running"), upload.filename)
            return JSONResponse({"error": message}, status_code=status)
        except BaseException as e:
            if isinstance(e, (asyncio.CancelledError, KeyboardInterrupt)):
                raise
            status, message = _error_status(e, upload.filename)
            return JSONResponse({"error": message}, status_code=status)
        return JSONResponse(body, status_code=status)

    job = svc.jobs.create(kind, key.key_id, upload.filename, str(upload.path))

    def as_job(lib):
        svc.jobs.update(job.job_id, "running", "describing and matching", 0.1)
        progress.job_id = job.job_id
        timer = _watch(svc, job.job_id, upload.filename)
        try:
            status, body = guarded(lib)
        except Exception as e:  # noqa: BLE001 - the job reports every failure
            status, message = _error_status(e, upload.filename)
            svc.jobs.update(job.job_id, "failed", "failed", 1.0, status, None, message)
            return
        finally:
            if timer is not None:
                timer.cancel()
        svc.jobs.update(job.job_id, "done", "done", 1.0, status, body)

    svc.pool.submit("long", as_job)
    return _accepted(job.job_id)


class _JobProgress:
    """The engine's progress reports (``copytrace.progress``) as a job's stage and fraction,
    once the work is a job: 0.1 when it starts, 0.95 at most before it is done; never lower
    than already shown (a video's frames, then its soundtrack, each count from 0)."""

    def __init__(self, svc: Service) -> None:
        self.svc = svc
        self.job_id: str | None = None
        self.shown = 0.1

    def report(self, stage: str, fraction: float) -> None:
        if self.job_id is None:
            return
        self.shown = max(self.shown, 0.1 + 0.85 * fraction)
        self.svc.jobs.update(self.job_id, "running", f"{stage} ({fraction:.0%})", self.shown)


def _stop_s(config: ServerConfig) -> float | None:
    """How long after its start a request is answered whatever its worker is doing."""
    return config.request_timeout_s + config.stop_grace_s if config.request_timeout_s else None


def _watch(svc: Service, job_id: str, filename: str) -> threading.Timer | None:
    """Fail a job still running ``stop_grace_s`` past its time limit (its worker is in a long
    native call and stops at its next check; what it returns then is not recorded)."""
    stop_s = _stop_s(svc.config)
    if stop_s is None:
        return None

    def expire() -> None:
        status, message = _error_status(
            DeadlineExceeded(svc.config.request_timeout_s, "still running"), filename)
        svc.jobs.update(job_id, "failed", "failed", 1.0, status, None, message)

    t = threading.Timer(stop_s, expire)
    t.daemon = True
    t.start()
    return t


def _accepted(job_id: str) -> JSONResponse:
    return JSONResponse({"job_id": job_id, "state": "queued", "status_url": f"/api/jobs/{job_id}"},
                        status_code=202, headers={"Location": f"/api/jobs/{job_id}"})


def _continue_as_job(svc: Service, key: ApiKey, kind: str, upload: up.Upload, fut,
                     progress: _JobProgress) -> JSONResponse:
    """A request that took longer than the client is kept waiting: its running work becomes a
    job, finished by the future's callback."""
    job = svc.jobs.create(kind, key.key_id, upload.filename, str(upload.path))
    svc.jobs.update(job.job_id, "running", "describing and matching", 0.1)
    progress.job_id = job.job_id
    timer = _watch(svc, job.job_id, upload.filename)

    def finished(f) -> None:
        if timer is not None:
            timer.cancel()
        exc = f.exception()
        if exc is None:
            status, body = f.result()
            svc.jobs.update(job.job_id, "done", "done", 1.0, status, body)
        else:
            status, message = _error_status(exc, upload.filename)
            svc.jobs.update(job.job_id, "failed", "failed", 1.0, status, None, message)

    fut.add_done_callback(finished)
    return _accepted(job.job_id)


# -- the app ------------------------------------------------------------------------------------
def create_app(library, config: ServerConfig) -> FastAPI:
    service = Service(library, config)
    app = FastAPI(
        title="copytrace", version=copytrace.__version__,
        description="Which registered works does a file copy, and where. Send an API key as "
                    "`Authorization: Bearer KEY` (scopes: query < register < admin).",
    )
    app.state.service = service
    _install_guards(app, config)

    @app.get("/", include_in_schema=False)
    def page() -> HTMLResponse:
        return HTMLResponse((STATIC / "index.html").read_text(encoding="utf-8"))

    @app.get("/api/health", tags=["service"])
    def health() -> dict:
        with service.reader_lock:
            n = service.reader.catalog.count()
        return {"ok": True, "works": n, "version": copytrace.__version__,
                "auth": not config.no_auth, "jobs_waiting": service.pool.pending("long")}

    @app.get("/api/works", tags=["works"])
    def list_works(_: QueryKey, limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                   offset: Annotated[int, Query(ge=0, le=2**62)] = 0) -> dict:
        with service.reader_lock:
            total = service.reader.catalog.count()
            works = service.reader.catalog.works_page(limit, offset)
        nxt = offset + limit if offset + limit < total else None
        return {"works": [w.to_dict() for w in works], "total": total, "limit": limit,
                "offset": offset, "next_offset": nxt}

    @app.get("/api/works/{work_id}", tags=["works"])
    def get_work(_: QueryKey, work_id: Annotated[str, _work_id()]) -> dict:
        try:
            with service.reader_lock:
                return service.reader.catalog.get(work_id).to_dict()
        except UnknownWorkError as e:
            raise HTTPException(404, str(e)) from None

    @app.get("/api/works/{work_id}/file", tags=["works"], response_class=FileResponse)
    def work_file(_: QueryKey, work_id: Annotated[str, _work_id()]):
        """The registered file (for people judging a match); 404 when it is not on disk."""
        try:
            with service.reader_lock:
                work = service.reader.catalog.get(work_id)
        except UnknownWorkError as e:
            raise HTTPException(404, str(e)) from None
        if not work.path or not Path(work.path).is_file():
            raise HTTPException(404, f"work {work_id}'s file is not on this server")
        return FileResponse(work.path, filename=Path(work.path).name)

    @app.delete("/api/works/{work_id}", tags=["works"])
    async def remove_work(_: AdminKey, work_id: Annotated[str, _work_id()]):
        def run(lib):
            work = lib.remove(work_id)
            p = Path(work.path)
            if p.parent == service.uploads and not any(
                    w.path == work.path for w in lib.store.catalog.works()):
                p.unlink(missing_ok=True)  # the copy the service kept; nobody else uses it
            return work

        try:
            work = await asyncio.wrap_future(service.pool.submit("short", run))
        except UnknownWorkError as e:
            raise HTTPException(404, str(e)) from None
        return work.to_dict()

    @app.post("/api/works", tags=["works"], status_code=201, openapi_extra=_UPLOAD_BODY,
              responses={200: {"description": "already registered"}, 202: {"description": "job"},
                         413: {"description": "too large"}, 422: {"description": "bad media"}})
    async def register(request: Request, key: RegisterKey,
                       filename: Annotated[str | None, Query(max_length=255)] = None,
                       title: Annotated[str | None, Query(max_length=1000)] = None,
                       mode: Mode = "auto"):
        upload = await up.receive(request, service.uploads, config.max_upload_bytes, filename)
        title = title if title is not None else (upload.fields.get("title") or None)
        return await _run(request, key, "register", upload, mode,
                          _add_work(upload, title, service.uploads, config.request_timeout_s))

    @app.post("/api/query", tags=["query"], openapi_extra=_UPLOAD_BODY,
              responses={202: {"description": "job"}, 413: {"description": "too large"},
                         422: {"description": "bad media or parameters"}})
    async def query(request: Request, key: QueryKey,
                    filename: Annotated[str | None, Query(max_length=255)] = None,
                    top_k: Annotated[int, Query(ge=1, le=100)] = 10,
                    min_score: Annotated[float | None, Query(ge=0.0, le=1.0)] = None,
                    evidence: bool = False, report: bool = False, mode: Mode = "auto"):
        upload = await up.receive(request, service.uploads, config.max_upload_bytes, filename)
        return await _run(request, key, "query", upload, mode,
                          _query_work(upload, top_k, min_score, evidence, report,
                                      service.root / "evidence", config.request_timeout_s))

    @app.post("/api/query/batch", tags=["query"], status_code=202,
              openapi_extra=_BATCH_BODY,
              responses={413: {"description": "too large"}, 415: {"description": "not multipart"}})
    async def query_batch(request: Request, key: QueryKey,
                          top_k: Annotated[int, Query(ge=1, le=100)] = 10,
                          min_score: Annotated[float | None, Query(ge=0.0, le=1.0)] = None):
        """Up to 64 files (one ``file`` part each, ``--max-upload-mb`` for them all), queried as
        one job: ``result.results`` holds, per file in order, its status and result or error."""
        files = await up.receive_many(request, service.uploads, config.max_upload_bytes,
                                      MAX_BATCH_FILES)
        job = service.jobs.create("query-batch", key.key_id, f"{len(files)} files",
                                  "\n".join(str(u.path) for u in files))

        def run(lib):
            out = []
            service.jobs.update(job.job_id, "running", f"file 1 of {len(files)}", 0.0)
            for i, u in enumerate(files):
                try:
                    status, body = _query_work(u, top_k, min_score, False, False,
                                               service.root / "evidence",
                                               config.request_timeout_s)(lib)
                    out.append({"filename": u.filename, "status": status, "result": body})
                except Exception as e:  # noqa: BLE001 - each file answers for itself
                    status, message = _error_status(e, u.filename)
                    out.append({"filename": u.filename, "status": status, "error": message})
                finally:
                    u.discard()
                service.jobs.update(job.job_id, "running", f"file {i + 2} of {len(files)}"
                                    if i + 1 < len(files) else "finishing", (i + 1) / len(files))
            service.jobs.update(job.job_id, "done", "done", 1.0, 200, {"results": out})

        def guarded(lib):
            try:
                run(lib)
            except BaseException as e:
                for u in files:
                    u.discard()
                status, message = _error_status(e, "batch")
                service.jobs.update(job.job_id, "failed", "failed", 1.0, status, None, message)
                raise

        service.pool.submit("long", guarded)
        return _accepted(job.job_id)

    @app.get("/api/jobs/{job_id}", tags=["jobs"])
    def get_job(key: QueryKey, job_id: Annotated[str, PathParam(pattern="^[0-9a-f]{32}$")]) -> dict:
        job = service.jobs.get(job_id)
        if job is None or (key.scope != "admin" and job.key_id != key.key_id):
            raise HTTPException(404, f"no job {job_id}")
        return job.to_dict()

    @app.get("/api/jobs", tags=["jobs"])
    def list_jobs(key: QueryKey, limit: Annotated[int, Query(ge=1, le=1000)] = 50) -> list:
        owner = None if key.scope == "admin" else key.key_id
        return [j.to_dict() for j in service.jobs.recent(owner, limit)]

    @app.get("/api/keys", tags=["keys"])
    def list_keys(_: AdminKey) -> list:
        return [k.to_dict() for k in service.keys.list()]

    @app.post("/api/keys", tags=["keys"], status_code=201)
    def add_key(_: AdminKey, name: Annotated[str, Query(min_length=1, max_length=200)],
                scope: Literal["query", "register", "admin"],
                rate_per_min: Annotated[int | None, Query(ge=0, le=10**6)] = None) -> dict:
        try:
            k, secret = service.keys.add(name, scope, rate_per_min)
        except ValueError as e:
            raise HTTPException(422, str(e)) from None
        return {**k.to_dict(), "key": secret}

    @app.delete("/api/keys/{key_id}", tags=["keys"])
    def revoke_key(_: AdminKey, key_id: Annotated[str, PathParam(min_length=1, max_length=200)]) -> list:
        revoked = service.keys.revoke(key_id)
        if not revoked:
            raise HTTPException(404, f"no active key {key_id}")
        return [k.to_dict() for k in revoked]

    _ledger_routes(app, service)
    return app


def _work_id():
    return PathParam(min_length=1, max_length=64, pattern="^[0-9A-Za-z_-]+$")


def _ledger_routes(app: FastAPI, service: Service) -> None:
    from copytrace.ledger.verify import verify_log

    @app.get("/api/ledger/checkpoint", tags=["ledger"], response_class=PlainTextResponse)
    def checkpoint(_: QueryKey):
        with service.reader_lock:
            return PlainTextResponse(service.reader.checkpoint())

    @app.get("/api/ledger/vkey", tags=["ledger"], response_class=PlainTextResponse)
    def vkey(_: QueryKey):
        with service.reader_lock:
            return PlainTextResponse(service.reader.signer().vkey + "\n")

    @app.get("/api/ledger/verify", tags=["ledger"])
    def verify(_: AdminKey) -> dict:
        with service.reader_lock:
            problems = verify_log(service.reader.catalog, service.reader.signer().vkey)
        return {"ok": not problems, "problems": problems}

    @app.get("/api/ledger/proof/{work_id}", tags=["ledger"])
    def proof(_: QueryKey, work_id: Annotated[str, _work_id()]) -> dict:
        try:
            with service.reader_lock:
                return service.reader.prove(work_id)
        except LedgerError as e:
            raise HTTPException(404, str(e)) from None

    @app.post("/api/ledger/consistency", tags=["ledger"],
              openapi_extra={"requestBody": {"required": True, "content": {
                  "text/plain": {"schema": {"type": "string"}}}}},
              responses={409: {"description": "the log does not extend the checkpoint"}})
    async def consistency(request: Request, _: QueryKey) -> dict:
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > 64 * 1024:
                raise HTTPException(413, "a checkpoint is at most 64 KiB")
        if not body:
            raise HTTPException(400, "send the saved checkpoint as the body")

        def run():
            with service.reader_lock:
                return service.reader.consistency(body.decode("utf-8", "replace"))

        try:
            return await asyncio.to_thread(run)
        except LedgerError as e:
            raise HTTPException(409, str(e)) from None


def _install_guards(app: FastAPI, config: ServerConfig) -> None:
    """Errors as {"error": message}; cross-origin and rebinding requests refused; CORS only for
    the origins the operator named."""

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        parts = []
        for err in exc.errors():
            where = ".".join(str(x) for x in err.get("loc", ()) if x not in ("query", "path"))
            got = err.get("input")
            shown = f" (got {got!r:.60})" if isinstance(got, (str, int, float)) else ""
            parts.append(f"{where or 'request'}: {err.get('msg', 'invalid')}{shown}")
        return JSONResponse({"error": "; ".join(parts)}, status_code=422)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception):
        log.exception("internal error on %s %s", request.method, request.url.path, exc_info=exc)
        return JSONResponse({"error": "internal error (see the server's log)"}, status_code=500)

    allowed = set(config.cors_origins)

    @app.middleware("http")
    async def origin_guard(request: Request, call_next):
        host = request.headers.get("host", "")
        if config.no_auth and not is_loopback(host.rsplit(":", 1)[0] if "]" not in host
                                                else host.split("]")[0] + "]"):
            return JSONResponse({"error": f"Host {host!r} refused: a server without keys "
                                          "answers loopback names only"}, status_code=403)
        origin = request.headers.get("origin")
        if origin and origin not in allowed and origin not in (f"http://{host}",
                                                               f"https://{host}"):
            return JSONResponse({"error": f"cross-origin request from {origin} refused "
                                          "(copytrace serve --cors-origin to allow it)"},
                                status_code=403)
        return await call_next(request)

    if allowed:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=sorted(allowed),
                           allow_methods=["GET", "POST", "DELETE"],
                           allow_headers=["Authorization", "Content-Type"])


class CopytraceServer:
    """uvicorn on a socket bound at construction (port 0 picks a free one), so a busy port
    fails here, before anything is served. ``serve_forever`` blocks; ``shutdown`` from another
    thread stops it; ``server_close`` releases the socket, the workers and the files."""

    def __init__(self, address: tuple[str, int], library, config: ServerConfig | None = None
                 ) -> None:
        host, port = address
        if config is None:
            config = ServerConfig(host=host)
        elif config.host != host:
            config = ServerConfig(**{**config.__dict__, "host": host})
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.socket = socket.create_server((host, port), family=family, backlog=512)
        # Accepted connections inherit it: without, a keep-alive client waits out the delayed
        # ACK (40 ms) between the response's header and body writes.
        self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            self.app = create_app(library, config)
        except BaseException:
            self.socket.close()
            raise
        self.config = config
        self.server_port = self.socket.getsockname()[1]
        self._uv = uvicorn.Server(uvicorn.Config(self.app, log_level="warning",
                                                 access_log=False, lifespan="off",
                                                 timeout_keep_alive=10))
        self._done = threading.Event()
        self._done.set()

    def serve_forever(self) -> None:
        self._done.clear()
        try:
            self._uv.run(sockets=[self.socket])
        finally:
            self._done.set()

    def shutdown(self, timeout_s: float = 30.0) -> None:
        self._uv.should_exit = True
        self._done.wait(timeout_s)

    def server_close(self) -> None:
        self.socket.close()
        self.app.state.service.close()


def wait_until_up(url: str, timeout_s: float = 30.0) -> None:
    """Poll ``url``/api/health until it answers (for tests and scripts)."""
    import urllib.request

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(url + "/api/health", timeout=2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


__all__ = ["SCOPES", "CopytraceServer", "ServerConfig", "create_app", "wait_until_up"]

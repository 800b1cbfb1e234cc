"""``copytrace`` command line: a thin layer over ``copytrace.engine.Library``.

Exit codes: 0 success, 1 when some input failed (each failure is one line on stderr naming the
file and the cause; the other inputs are still processed), 2 usage error.
"""
from __future__ import annotations

import json
import logging
import re
import sqlite3
import sys
from pathlib import Path

import click

from copytrace.errors import CopytraceError, LibraryNotFoundError, NotMediaError

DB_HELP = "Library directory (default: $COPYTRACE_DB, else ~/.local/share/copytrace)."
CREATE_HELP = "Create an empty library when --db names none (otherwise that is an error)."


def _open(db: str | None, backend: str = "openvino", precision: str = "auto",
          create: bool = False):
    """The library, or exit: 2 when there is none and ``create`` is off (a mistyped --db must
    not answer "no match"), 1 when it cannot be opened (one line naming the file and cause)."""
    from copytrace.engine import EngineConfig, Library, default_db_path

    root = Path(db).expanduser() if db is not None else default_db_path()
    click.get_current_context().meta["copytrace.catalog"] = root / "catalog.sqlite"
    try:
        return Library.open(root, EngineConfig(backend=backend, precision=precision),
                            create=create)
    except LibraryNotFoundError as e:
        _fail(f"{e}; `copytrace add` creates one, or pass --create")
        sys.exit(2)
    except CopytraceError as e:
        _fail(str(e))
        sys.exit(1)


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _printable(text: str) -> str:
    """One line whatever the file name holds: control characters (a newline in a name) and
    bytes that are not UTF-8 are written as backslash escapes."""
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _fail(message: str) -> None:
    click.echo(f"copytrace: error: {_printable(message)}", err=True)


class _Group(click.Group):
    """A catalogue damaged past what opening it checks fails later, on a read: one line
    naming the file and the cause, never a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except sqlite3.DatabaseError as e:
            catalog = ctx.meta.get("copytrace.catalog", "catalog.sqlite")
            _fail(f"{catalog}: not a usable copytrace catalogue: {e}")
            sys.exit(1)


def _fmt_time(t: float) -> str:
    m, s = divmod(max(t, 0.0), 60.0)
    return f"{int(m):02d}:{s:06.3f}"


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More logging (-v info, -vv debug).")
@click.option("--index", "index_backend", type=click.Choice(["faiss", "milvus"]),
              envvar="COPYTRACE_INDEX", help="Where vectors are searched (default faiss: files "
                                             "in the library; env COPYTRACE_INDEX).")
@click.option("--milvus-uri", envvar="COPYTRACE_MILVUS_URI",
              help="Milvus: a file path (Milvus Lite) or http://host:19530 "
                   "(env COPYTRACE_MILVUS_URI).")
@click.version_option(package_name="copytrace")
def main(verbose: int, index_backend: str | None, milvus_uri: str | None) -> None:
    """Register works and find where suspect files copy them."""
    import os

    # The store reads these (IndexConfig.from_env), so every command sees one choice.
    if index_backend:
        os.environ["COPYTRACE_INDEX"] = index_backend
    if milvus_uri:
        os.environ["COPYTRACE_MILVUS_URI"] = milvus_uri
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if verbose < 2:  # decoders' own complaints about a bad file: its one error line says it
        logging.getLogger("PIL").setLevel(logging.CRITICAL)


@main.command()
@click.argument("paths", nargs=-1)
@click.option("--title", help="Title for the work(s) (default: the file name).")
@click.option("--db", help=DB_HELP)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per added file.")
@click.option("--precision", type=click.Choice(["auto", "fp32", "int8"]), default="auto")
@click.option("--ray", "ray_address", is_flag=False, flag_value="local", default=None,
              metavar="[ADDRESS]",
              help="Decode and describe on Ray (extra [ray]): alone, a local Ray for this run; "
                   "--ray=auto or --ray=ray://host:10001 joins a cluster. Resumes by content.")
@click.option("--workers", type=click.IntRange(min=0), default=0, show_default=True,
              help="With --ray: encoder actors, one CPU each (0: one per CPU).")
def add(paths, title, db, as_json, precision, ray_address, workers) -> None:
    """Register files or folders (recursively) as reference works. Idempotent by content."""
    from rich.progress import Progress

    if ray_address is not None and ray_address not in ("local", "auto") \
            and "://" not in ray_address and Path(ray_address).exists():
        paths, ray_address = (ray_address, *paths), "local"  # `--ray FILE`: a path, not an address
    if not paths:
        raise click.UsageError("Missing argument 'PATHS...'.")
    lib = _open(db, precision=precision, create=True)
    n_failed = 0
    with lib, Progress(*Progress.get_default_columns(), "{task.completed}/{task.total}",
                       transient=True, disable=as_json or not sys.stderr.isatty()) as progress:
        task = progress.add_task("adding", total=None)

        def report(path, res, advance: bool = True) -> None:
            nonlocal n_failed
            if advance:
                progress.advance(task)
            if isinstance(res, CopytraceError):
                n_failed += 1
                _fail(str(res))
            elif as_json:
                click.echo(json.dumps({"path": path, "created": res.created, **res.work.to_dict()}))
            else:
                state = "added" if res.created else "exists"
                click.echo(f"{res.work.work_id}\t{state}\t{_printable(path)}")

        try:
            if ray_address is None:
                lib.add_many(paths, title=title, on_result=report)
            else:
                from copytrace.ingest.ray import RayIngestConfig, add_with_ray

                def advance(p) -> None:  # counts and ETA: Ray's results arrive one by one
                    progress.update(task, total=p.files, completed=p.done,
                                    description=f"added {p.added}, known {p.known}, "
                                                f"failed {p.failed}")

                config = RayIngestConfig("" if ray_address == "local" else ray_address, workers)
                _, _, counts = add_with_ray(lib, paths, config, title=title,
                                            on_result=lambda path, res: report(path, res, False),
                                            on_progress=advance)
                logging.getLogger(__name__).info(
                    "ray: %d files, %d added, %d already registered, %d failed, %d described "
                    "in %.1f s", counts.files, counts.added, counts.known, counts.failed,
                    counts.described, counts.elapsed_s)
        except CopytraceError as e:
            _fail(str(e))
            sys.exit(1)
    sys.exit(1 if n_failed else 0)


@main.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--db", help=DB_HELP)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per query per line.")
@click.option("--top-k", type=click.IntRange(min=1), default=10, show_default=True)
@click.option(
    "--min-score", type=click.FloatRange(0.0, 1.0), default=None,
    help="Hide matches below this calibrated score (default 0.5; 0 shows every candidate).",
)
@click.option("--precision", type=click.Choice(["auto", "fp32", "int8"]), default="auto")
@click.option("--backend", type=click.Choice(["openvino", "onnxruntime", "cuda"]),
              default="openvino", help="cuda: the GPU 8-bit backend (extra [gpu])")
@click.option("--html", "html_path", help="Also write an HTML evidence report to this file.")
@click.option("--evidence", "evidence_dir",
              help="Write one evidence bundle per match under this folder "
                   "(`copytrace evidence verify` checks it offline).")
@click.option("--create", is_flag=True, help=CREATE_HELP)
def query(paths, db, as_json, top_k, min_score, precision, backend, html_path, evidence_dir,
          create) -> None:
    """Rank registered works for each query file (folders are walked recursively; files in
    them that are not media are skipped)."""
    from copytrace.engine import iter_media_paths

    lib = _open(db, backend=backend, precision=precision, create=create)
    n_failed = 0
    results = []
    with lib:
        for path, explicit in iter_media_paths(paths):
            try:
                result = lib.query(path, top_k=top_k, min_score=min_score)
            except NotMediaError as e:
                if explicit:
                    n_failed += 1
                    _fail(str(e))
                continue
            except CopytraceError as e:
                n_failed += 1
                _fail(str(e))
                continue
            results.append(result)
            if as_json:
                click.echo(result.to_json())
            else:
                _print_result(result)
                if any(m.signal == "text" for m in result.matches):
                    _print_text_passages(lib, result)
            if evidence_dir and result.matches:
                from copytrace.evidence import write_bundles

                for folder in write_bundles(lib, result, path, evidence_dir):
                    click.echo(f"evidence: {folder}", err=True)
        if html_path:  # inside: the report's header names the library's models
            from copytrace.report import write_html

            write_html(results, html_path, library=lib)
            click.echo(f"report: {html_path}", err=True)
    sys.exit(1 if n_failed else 0)


def _print_result(result) -> None:
    from rich.console import Console
    from rich.table import Table

    q = result.query
    table = Table(title=f"{q.path}  ({q.media_type}, {result.elapsed_s * 1000:.0f} ms)")
    for col in ("score", "work", "title", "signal", "query → reference"):
        table.add_column(col, overflow="fold")
    for m in result.matches:
        segs = [
            f"chars {s.query_start_char}–{s.query_end_char} → "
            f"{s.ref_start_char}–{s.ref_end_char} ({s.score:.2f})" if m.signal == "text" else
            f"{_fmt_time(s.query_start_s)}–{_fmt_time(s.query_end_s)} → "
            f"{_fmt_time(s.ref_start_s)}–{_fmt_time(s.ref_end_s)} ({s.score:.2f})"
            for s in m.segments
        ]
        table.add_row(f"{m.score:.3f}", m.work_id, m.title, m.signal, "\n".join(segs) or "-")
    if not result.matches:
        table.add_row("-", "no match", "", "", "")
    Console(width=max(Console().width, 110)).print(table)


def _print_text_passages(lib, result, max_segments: int = 3, width: int = 300) -> None:
    """Matched text passages side by side: the query's and the reference's (issue 21)."""
    from rich.console import Console
    from rich.table import Table

    from copytrace.text.decode import read_text, visible

    def cut(text: str) -> str:
        text = " ".join(text.split())
        return text if len(text) <= width else text[:width * 2 // 3] + " … " + text[-width // 3:]

    query = read_text(result.query.path)
    for m in result.matches:
        if m.signal != "text":
            continue
        ref = lib.signal("text").reference(m.work_id).decoded
        table = Table(title=f"{m.title} ({m.work_id}), score {m.score:.3f}", show_lines=True)
        table.add_column("query", overflow="fold", ratio=1)
        table.add_column("reference", overflow="fold", ratio=1)
        for s in m.segments[:max_segments]:
            table.add_row(
                f"[b]chars {s.query_start_char}–{s.query_end_char}[/b]\n"
                f"{cut(visible(query, s.query_start_char, s.query_end_char))}",
                f"[b]chars {s.ref_start_char}–{s.ref_end_char}[/b] ({s.score:.2f})\n"
                f"{cut(visible(ref, s.ref_start_char, s.ref_end_char))}")
        Console(width=max(Console().width, 110)).print(table)


@main.command("list")
@click.option("--db", help=DB_HELP)
@click.option("--json", "as_json", is_flag=True)
@click.option("--create", is_flag=True, help=CREATE_HELP)
def list_works(db, as_json, create) -> None:
    """List registered works."""
    with _open(db, create=create) as lib:
        works = lib.works()
    if as_json:
        for w in works:
            click.echo(w.to_json())
        return
    for w in works:
        click.echo(f"{w.work_id}\t{w.media_type}\t{w.title}\t{w.path}")
    click.echo(f"{len(works)} works", err=True)


@main.command()
@click.argument("work_id")
@click.option("--db", help=DB_HELP)
def show(work_id, db) -> None:
    """Show one work as JSON."""
    with _open(db) as lib:
        try:
            click.echo(json.dumps(lib.get(work_id).to_dict(), indent=2))
        except CopytraceError as e:
            _fail(str(e))
            sys.exit(1)


@main.command()
@click.argument("work_ids", nargs=-1, required=True)
@click.option("--db", help=DB_HELP)
def remove(work_ids, db) -> None:
    """Remove works (their descriptors leave the index too)."""
    failed = 0
    with _open(db) as lib:
        for work_id in work_ids:
            try:
                w = lib.remove(work_id)
                click.echo(f"{w.work_id}\tremoved\t{w.path}")
            except CopytraceError as e:
                failed += 1
                _fail(str(e))
    sys.exit(1 if failed else 0)


@main.command()
@click.option("--db", help=DB_HELP)
@click.option("--create", is_flag=True, help=CREATE_HELP)
def check(db, create) -> None:
    """Verify that the catalogue and the index files agree; repair the index files if not
    (and drop derived window statistics that disagree with their descriptors)."""
    with _open(db, create=create) as lib:
        problems = lib.store.check()
        for p in problems:
            click.echo(f"found: {p}")
        if problems:
            lib.store.catalog.drop_mismatched_stats()
            lib.store.flush()
            remaining = lib.store.check()
            for p in remaining:
                _fail(f"still inconsistent after repair: {p}")
            sys.exit(1 if remaining else 0)
        click.echo(f"ok: {lib.store.catalog.count()} works, index files agree")


@main.command()
@click.option("--db", help=DB_HELP)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True)
@click.option("--create", is_flag=True, help=CREATE_HELP)
@click.option("--max-upload-mb", type=click.IntRange(1), default=512, show_default=True,
              help="Larger uploads are refused with 413 (nothing is kept).")
@click.option("--no-auth", is_flag=True,
              help="Serve without API keys: allowed on a loopback --host only.")
@click.option("--cors-origin", "cors_origins", multiple=True,
              help="An origin (https://app.example.com) whose pages may call the API; "
                   "repeatable. None by default: cross-origin requests are refused.")
@click.option("--rate-limit", type=click.IntRange(0), default=600, show_default=True,
              help="Requests a minute per key (a key may carry its own); 0 = no limit.")
@click.option("--workers", type=click.IntRange(1), default=1, show_default=True,
              help="Engine workers for requests answered while the client waits.")
@click.option("--job-workers", type=click.IntRange(1), default=1, show_default=True,
              help="Engine workers for jobs (long media).")
@click.option("--job-above-s", type=click.FloatRange(0), default=30.0, show_default=True,
              help="Video or audio longer than this runs as a job (202 + /api/jobs/ID).")
@click.option("--sync-wait-s", type=click.FloatRange(0, min_open=True), default=20.0,
              show_default=True,
              help="Other requests still running after this many seconds continue as jobs.")
@click.option("--request-timeout-s", type=click.FloatRange(0), default=0.0, show_default=True,
              help="Stop a request's engine work (or a job's) after this many seconds and "
                   "answer 504 (a job: failed); 0 = no limit.")
def serve(db, host, port, create, max_upload_mb, no_auth, cors_origins, rate_limit, workers,
          job_workers, job_above_s, sync_wait_s, request_timeout_s) -> None:
    """Serve the HTTP API (OpenAPI at /openapi.json, docs at /docs) and the web page."""
    try:
        from copytrace.server.app import CopytraceServer, ServerConfig
    except ModuleNotFoundError as e:
        _fail(str(e))
        sys.exit(1)
    try:
        config = ServerConfig(host=host, max_upload_mb=max_upload_mb, no_auth=no_auth,
                              cors_origins=tuple(cors_origins), rate_per_min=rate_limit,
                              short_workers=workers, long_workers=job_workers,
                              job_above_s=job_above_s, sync_wait_s=sync_wait_s,
                              request_timeout_s=request_timeout_s)
    except ValueError as e:
        _fail(str(e))
        sys.exit(2)
    lib = _open(db, create=create)
    try:
        server = CopytraceServer((host, port), lib, config)
    except OSError as e:
        lib.close()
        _fail(f"cannot listen on {host}:{port}: {e.strerror or e}")
        sys.exit(1)
    except ValueError as e:  # no keys and no --no-auth
        lib.close()
        _fail(str(e))
        sys.exit(2)
    shown = f"[{host}]" if ":" in host else host
    click.echo(f"copytrace serving {lib.store.root} on http://{shown}:{server.server_port}/"
               f" ({'no keys: loopback only' if no_auth else 'API keys required'})")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        lib.close()


@main.group()
def keys() -> None:
    """API keys for `copytrace serve` (scopes: query < register < admin)."""


def _key_store(db: str | None):
    from copytrace.server.keys import KeyStore

    lib = _open(db)
    root = lib.store.root
    lib.close()
    return KeyStore(root)


@keys.command("add")
@click.argument("name")
@click.option("--scope", type=click.Choice(["query", "register", "admin"]), required=True,
              help="query: query and read; register: also add works; admin: also remove "
                   "works and manage keys.")
@click.option("--rate-limit", type=click.IntRange(0), default=None,
              help="This key's requests a minute (default: the server's --rate-limit).")
@click.option("--db", help=DB_HELP)
def keys_add(name, scope, rate_limit, db) -> None:
    """Create a key; prints it once, as the last word (only its hash is stored)."""
    store = _key_store(db)
    try:
        key, secret = store.add(name, scope, rate_limit)
    except ValueError as e:
        _fail(str(e))
        sys.exit(2)
    finally:
        store.close()
    click.echo(f"key {key.key_id} ({key.name}, scope {key.scope}); keep it, it is not shown "
               f"again: {secret}")


@keys.command("list")
@click.option("--db", help=DB_HELP)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per key per line.")
def keys_list(db, as_json) -> None:
    """The keys (never their secrets), revoked ones marked."""
    import time as _time

    store = _key_store(db)
    try:
        for k in store.list():
            if as_json:
                click.echo(json.dumps(k.to_dict()))
                continue
            when = _time.strftime("%Y-%m-%d %H:%M", _time.localtime(k.created_at))
            state = "revoked" if k.revoked_at else "active"
            rate = "" if k.rate_per_min is None else f"\t{k.rate_per_min}/min"
            click.echo(f"{k.key_id}\t{k.scope}\t{state}\t{when}\t{_printable(k.name)}{rate}")
    finally:
        store.close()


@keys.command("revoke")
@click.argument("key_ids", nargs=-1, required=True)
@click.option("--db", help=DB_HELP)
def keys_revoke(key_ids, db) -> None:
    """Revoke keys by id (or every active key of a name); exit 1 when one matches nothing."""
    store = _key_store(db)
    failed = 0
    try:
        for key_id in key_ids:
            revoked = store.revoke(key_id)
            if not revoked:
                failed += 1
                _fail(f"no active key {key_id}")
            for k in revoked:
                click.echo(f"{k.key_id}\trevoked\t{_printable(k.name)}")
    finally:
        store.close()
    sys.exit(1 if failed else 0)


@main.command()
@click.option("--samples", default="tests/data", show_default=True,
              help="Folder of sample photos (all but the last two are registered) and music "
                   "(the first track is registered).")
@click.option("--out", default="out/demo", show_default=True, help="Where the demo writes.")
def demo(samples, out) -> None:
    """Register sample photos and music, query edited copies and innocent files, write an HTML report."""
    from copytrace.demo import run_demo
    from copytrace.report import write_html

    results = run_demo(Path(samples), Path(out))
    for r in results:
        _print_result(r)
    write_html(results, str(Path(out) / "report.html"), "copytrace demo")
    click.echo(f"HTML report: {Path(out) / 'report.html'}")


@main.group()
def ledger() -> None:
    """The tamper-evident registration log: verify it, sign checkpoints, prove entries."""


def _vkey(lib, vkey: str | None) -> str:
    """The verifier key to trust: --vkey (a key or a file holding one), else the library's."""
    if vkey is None:
        return lib.store.signer().vkey
    path = Path(vkey)
    return path.read_text().strip() if path.is_file() else vkey


VKEY_HELP = ("Verifier key to trust (name+id+key, or a file holding it); default: the "
             "library's own signing key.")


@ledger.command("verify")
@click.option("--db", help=DB_HELP)
@click.option("--vkey", help=VKEY_HELP)
def ledger_verify(db, vkey) -> None:
    """Recompute every entry, tree hash and checkpoint, and every work's entry from the
    catalogue; exit 1 naming the first entry that disagrees."""
    from copytrace.ledger.verify import verify_log

    with _open(db) as lib:
        try:
            problems = verify_log(lib.store.catalog, _vkey(lib, vkey))
        except CopytraceError as e:
            _fail(str(e))
            sys.exit(1)
        if problems:
            _fail(f"{lib.store.root}: {problems[0]}"
                  + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""))
            sys.exit(1)
        log = lib.store.catalog.ledger
        click.echo(f"ok: {log.size()} log entries, {len(log.checkpoints())} checkpoints, "
                   f"{lib.store.catalog.count()} works agree")


@ledger.command("checkpoint")
@click.option("--db", help=DB_HELP)
def ledger_checkpoint(db) -> None:
    """Print the latest signed checkpoint (signing one if the log grew): publish it."""
    with _open(db) as lib:
        click.echo(lib.store.checkpoint(), nl=False)


@ledger.command("prove")
@click.argument("work_id")
@click.option("--db", help=DB_HELP)
def ledger_prove(work_id, db) -> None:
    """Inclusion proof (JSON) of a work's latest log entry in the latest checkpoint."""
    with _open(db) as lib:
        try:
            click.echo(json.dumps(lib.store.prove(work_id), indent=2))
        except CopytraceError as e:
            _fail(str(e))
            sys.exit(1)


@ledger.command("consistency")
@click.argument("old_checkpoint", type=click.Path(exists=True, dir_okay=False))
@click.option("--db", help=DB_HELP)
def ledger_consistency(old_checkpoint, db) -> None:
    """Consistency proof (JSON) from a checkpoint you saved to the log now; exit 1 when the
    log does not extend it (rolled back or rewritten)."""
    with _open(db) as lib:
        try:
            proof = lib.store.consistency(Path(old_checkpoint).read_text())
        except CopytraceError as e:
            _fail(f"{old_checkpoint}: {e}")
            sys.exit(1)
        click.echo(json.dumps(proof, indent=2))


@ledger.command("check-proof")
@click.argument("proof_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--vkey", required=True, help="Verifier key to trust (or a file holding it).")
def ledger_check_proof(proof_file, vkey) -> None:
    """Check an inclusion or consistency proof offline, with nothing but the key."""
    from copytrace.ledger.proofs import check_consistency, check_inclusion

    key = Path(vkey).read_text().strip() if Path(vkey).is_file() else vkey
    try:
        proof = json.loads(Path(proof_file).read_text())
        if proof.get("type") == "inclusion":
            entry = check_inclusion(proof, key)
            click.echo(f"ok: entry {proof['index']} ({entry.get('op')} {entry.get('work_id')}) "
                       f"is in the log of size {proof['tree_size']}")
        elif proof.get("type") == "consistency":
            check_consistency(proof, key)
            click.echo(f"ok: the log of size {proof['new_size']} extends the log of size "
                       f"{proof['old_size']}")
        else:
            raise CopytraceError("not a copytrace proof (type inclusion or consistency)")
    except (CopytraceError, ValueError, AttributeError) as e:
        _fail(f"{proof_file}: {e}")
        sys.exit(1)


@main.group()
def evidence() -> None:
    """Evidence bundles written by `copytrace query --evidence DIR`."""


@evidence.command("verify")
@click.argument("folder", type=click.Path(exists=True, file_okay=False))
@click.option("--vkey", help="The log's verifier key as its owner published it (or a file "
                             "holding it); without it the key inside each bundle is used.")
@click.option("--query", "query_file", type=click.Path(exists=True, dir_okay=False),
              help="The suspect file: check that the bundle is about these bytes.")
def evidence_verify(folder, vkey, query_file) -> None:
    """Check one bundle, or every bundle under FOLDER, offline; exit 1 on any problem."""
    from copytrace.evidence import BUNDLE_FILE, verify_bundle

    if vkey is not None and Path(vkey).is_file():
        vkey = Path(vkey).read_text().strip()
    root = Path(folder)
    bundles = [root] if (root / BUNDLE_FILE).is_file() else sorted(
        p.parent for p in root.glob(f"*/{BUNDLE_FILE}"))
    if not bundles:
        _fail(f"{folder}: no evidence bundle ({BUNDLE_FILE}) here")
        sys.exit(1)
    problems = [p for b in bundles for p in verify_bundle(b, vkey, query_file)]
    for p in problems:
        _fail(p)
    if problems:
        sys.exit(1)
    trust = "the given key" if vkey else "the key inside each bundle (pass --vkey to trust it)"
    click.echo(f"ok: {len(bundles)} bundle(s) verified against {trust}")


BENCH_DIR = Path(__file__).resolve().parents[2] / "bench"


@main.command(context_settings={"ignore_unknown_options": True, "help_option_names": []})
@click.argument("name")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def bench(name, args) -> None:
    """Run a benchmark script of the checkout's bench/ folder with ARGS, e.g.
    `copytrace bench audio --per-cell 40`; `copytrace bench list` names them,
    `copytrace bench NAME --help` shows a script's options."""
    import runpy

    if name in ("-h", "--help"):
        click.echo(click.get_current_context().get_help())
        return
    if not BENCH_DIR.is_dir():
        _fail(f"no bench/ folder at {BENCH_DIR}: benchmarks run from a source checkout")
        sys.exit(2)
    scripts = sorted(p.stem for p in BENCH_DIR.glob("*.py") if not p.stem.startswith("_"))
    if name == "list":
        click.echo("\n".join(scripts))
        return
    if name not in scripts:
        _fail(f"unknown benchmark {name!r} (known: {', '.join(scripts)})")
        sys.exit(2)
    script = BENCH_DIR / f"{name}.py"
    sys.argv = [str(script), *args]
    # As `python bench/NAME.py` runs it: the script's folder first on the path, so its
    # sibling modules (bench/_*.py) import by name.
    sys.path.insert(0, str(BENCH_DIR))
    runpy.run_path(str(script), run_name="__main__")


def _register_optional_commands() -> None:
    """Commands whose modules import heavy packages only when they run."""
    from copytrace.recipes.command import quantize_command

    main.add_command(quantize_command)


_register_optional_commands()

if __name__ == "__main__":
    main()

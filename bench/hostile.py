"""Hostile inputs through the real CLI: every file gets one line (or, if it is not media and sits
in a folder, none), nothing hangs, no traceback, memory stays bounded, the library stays sound.

    python bench/hostile.py                 # full corpus (1,120 files), ~6 min on 2 cores
    python bench/hostile.py --ci            # the bounded corpus of tests/test_hostile.py
    copytrace bench hostile --out out/hostile --json

The corpus (``bench/_hostile_corpus.py``) is split into shards; each shard is one
``copytrace add`` and one ``copytrace query --json`` over its folder (models load once per
process), each line of their output attributed to the file it names. A bounded subset of files
is then named explicitly, one ``add`` and one ``query`` process per file. Every process runs under
a wall-clock limit and an address-space limit (``RLIMIT_AS``, set in ``preexec_fn``); its peak
resident memory comes from ``wait4``. Finally ``copytrace check`` must pass on the library all
this wrote. Exit status 1 when any assertion failed; the summary goes to ``summary.json``.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

CLI = [sys.executable, "-m", "copytrace"]
ERR = "copytrace: error: "
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def printable(text: str) -> str:
    """How the CLI writes a path on one line (see ``copytrace.cli._printable``)."""
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


@dataclass
class Run:
    args: list
    rc: int
    out: str
    err: str
    wall_s: float
    rss_mb: float
    timed_out: bool


def run_cli(args: list[str], timeout_s: float, mem_bytes: int) -> Run:
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (mem_bytes, mem_bytes))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    t0 = time.monotonic()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        p = subprocess.Popen(CLI + args, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                             preexec_fn=limit,  # noqa: PLW1509 - setrlimit only, no locks
                             start_new_session=True)
        timed_out = False
        while True:
            pid, status, usage = os.wait4(p.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() - t0 > timeout_s:
                os.killpg(p.pid, signal.SIGKILL)
                _, status, usage = os.wait4(p.pid, 0)
                timed_out = True
                break
            time.sleep(0.05)
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Run(args, p.returncode, out.read().decode("utf-8", "replace"),
                   err.read().decode("utf-8", "replace"), time.monotonic() - t0,
                   usage.ru_maxrss / 1024, timed_out)


class Judge:
    """Attributes output lines to corpus files and counts what broke the contract."""

    def __init__(self, cases, max_rss_mb: float) -> None:
        self.by_printable = {printable(str(c.path)): c for c in cases}
        self.prefix_cases = [c for c in cases if c.prefix]
        self.max_rss_mb = max_rss_mb
        self.failures: list[str] = []
        self.counts = collections.Counter()
        self.outcomes = collections.Counter()
        self.peak_rss_mb = 0.0
        self.added_ids: set[str] = set()

    def fail(self, what: str) -> None:
        self.counts["failures"] += 1
        if len(self.failures) < 50:
            self.failures.append(what)

    def _case_of_error(self, line: str):
        rest = line[len(ERR):]
        for m in re.finditer(": ", rest):
            name = rest[: m.start()]
            case = self.by_printable.get(name)
            if case is None:
                case = next((c for c in self.prefix_cases if printable(str(c.path)).startswith(name + "/")),
                            None)
            if case is not None:
                return case, rest[m.end():].strip()
        return None, ""

    def _case_of_output(self, line: str, command: str):
        if command == "add":
            parts = line.split("\t")
            if len(parts) == 3 and parts[1] in ("added", "exists"):
                if parts[1] == "added":
                    self.added_ids.add(parts[0])
                return self.by_printable.get(parts[2])
            return None
        try:
            return self.by_printable.get(printable(json.loads(line)["query"]["path"]))
        except (ValueError, KeyError, TypeError):
            return None

    def process(self, run: Run, command: str) -> None:
        self.counts["processes"] += 1
        self.peak_rss_mb = max(self.peak_rss_mb, run.rss_mb)
        what = " ".join(map(str, run.args[:2])) + f" {run.args[-1]}"
        if run.timed_out:
            self.counts["hangs"] += 1
            self.fail(f"hang: {what} ran past its limit ({run.wall_s:.0f} s)")
        if "Traceback" in run.err:
            self.counts["tracebacks"] += 1
            self.fail(f"traceback: {what}: {run.err[-600:]}")
        if run.rss_mb > self.max_rss_mb:
            self.counts["over_memory"] += 1
            self.fail(f"memory: {what} peaked at {run.rss_mb:.0f} MB")

    def attribute(self, run: Run, command: str):
        """{case path: [("out"|"err", text)]} and the lines no file claims."""
        lines: dict[Path, list] = collections.defaultdict(list)
        stray = []
        for line in run.out.splitlines():
            case = self._case_of_output(line, command)
            (lines[case.path].append(("out", line)) if case else stray.append(line))
        for line in run.err.splitlines():
            case, cause = self._case_of_error(line) if line.startswith(ERR) else (None, "")
            if case is None or not cause:
                stray.append(line)
            else:
                lines[case.path].append(("err", cause))
        return lines, stray

    def expect(self, case, got: list, expected: str, where: str) -> None:
        kinds = [k for k, _ in got]
        ok = {"skip": kinds == [], "error": kinds == ["err"], "ok": kinds == ["out"],
              "any": kinds in (["err"], ["out"])}[expected]
        if ok:
            self.outcomes["skipped" if not kinds else "refused" if kinds == ["err"] else "accepted"] += 1
        else:
            self.counts["wrong_lines"] += 1
            self.fail(f"{where}: {printable(str(case.path))} ({case.kind}) expected {expected}, "
                      f"got {got[:3]}")

    def batch(self, run: Run, command: str, cases) -> None:
        self.process(run, command)
        if run.timed_out:
            return
        lines, stray = self.attribute(run, command)
        for line in stray:
            self.counts["stray_lines"] += 1
            self.fail(f"{command} {run.args[-1]}: a line naming no file: {line[:300]}")
        for case in cases:
            self.expect(case, lines.get(case.path, []), getattr(case, command), f"{command} folder")
        any_error = any(k == "err" for got in lines.values() for k, _ in got)
        if run.rc != (1 if any_error else 0):
            self.counts["wrong_exit"] += 1
            self.fail(f"{command} {run.args[-1]}: exit {run.rc}, expected {int(any_error)}")

    def single(self, run: Run, command: str, case) -> None:
        self.process(run, command)
        if run.timed_out:
            return
        lines, stray = self.attribute(run, command)
        expected = getattr(case, command)
        expected = "error" if expected == "skip" else expected  # named explicitly
        got = lines.get(case.path, [])
        self.expect(case, got, expected, f"{command} file")
        for line in stray:
            self.counts["stray_lines"] += 1
            self.fail(f"{command} {printable(str(case.path))}: a line naming no file: {line[:300]}")
        want_rc = 1 if [k for k, _ in got] == ["err"] else 0
        if run.rc != want_rc:
            self.counts["wrong_exit"] += 1
            self.fail(f"{command} {printable(str(case.path))}: exit {run.rc}, expected {want_rc}")


def pick_singles(cases, n: int):
    """All special and synthetic files, then mutated media round-robin over kinds, ``n`` in all."""
    explicit = [c for c in cases if c.explicit]
    first = [c for c in explicit if not c.kind.split("-")[0] in ("image", "audio", "video")]
    by_kind = collections.defaultdict(list)
    for c in explicit:
        if c not in first:
            by_kind[c.kind].append(c)
    rest = []
    while any(by_kind.values()):
        for kind in sorted(by_kind):
            if by_kind[kind]:
                rest.append(by_kind[kind].pop(0))
    return (first + rest)[:n]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="out/hostile", help="Work folder (emptied first).")
    ap.add_argument("--ci", action="store_true", help="The bounded corpus (about 300 files).")
    ap.add_argument("--shards", type=int, default=None, help="Folder runs (default 8, CI 2).")
    ap.add_argument("--singles", type=int, default=None,
                    help="Files also named one per process (default 120, CI 16).")
    ap.add_argument("--jobs", type=int, default=2, help="Processes at a time.")
    ap.add_argument("--timeout-s", type=float, default=300.0, help="Per folder process.")
    ap.add_argument("--single-timeout-s", type=float, default=60.0, help="Per one-file process.")
    ap.add_argument("--address-space-gb", type=float, default=3.0,
                    help="RLIMIT_AS per process (the runtimes map ~1.2 GB of libraries).")
    ap.add_argument("--max-rss-mb", type=float, default=1024.0, help="Peak resident memory allowed.")
    ap.add_argument("--json", action="store_true", help="Print the summary as JSON.")
    args = ap.parse_args(argv)
    shards = args.shards or (2 if args.ci else 8)
    n_single = args.singles if args.singles is not None else (16 if args.ci else 120)
    mem = int(args.address_space_gb * (1 << 30))

    out = Path(args.out).resolve()
    if out.exists():
        shutil.rmtree(out)  # fd-based: the paths past PATH_MAX go too
    out.mkdir(parents=True)
    t0 = time.monotonic()
    import _hostile_corpus  # bench/ is on the path (python bench/hostile.py, copytrace bench)

    corpus = _hostile_corpus.build(out / "corpus", args.ci, shards)
    build_s = time.monotonic() - t0
    lib = str(out / "library")
    judge = Judge(corpus.cases, args.max_rss_mb)
    seed = run_cli(["add", "--db", lib, "--", str(Path(__file__).resolve().parents[1] / "tests" / "data"
                                                    / "animal_cat.jpg")], 120, mem)
    if seed.rc != 0:
        print(f"hostile: cannot create the library: {seed.err}", file=sys.stderr)
        return 1
    shard_cases = collections.defaultdict(list)
    for c in corpus.cases:
        shard_cases[next(s for s in corpus.shards if str(c.path).startswith(str(s) + "/"))].append(c)

    def folder_runs(shard):
        a = run_cli(["add", "--db", lib, "--", str(shard)], args.timeout_s, mem)
        q = run_cli(["query", "--db", lib, "--json", "--", str(shard)], args.timeout_s, mem)
        return shard, a, q

    t1 = time.monotonic()
    with ThreadPoolExecutor(args.jobs) as pool:
        for shard, a, q in pool.map(folder_runs, corpus.shards):
            judge.batch(a, "add", shard_cases[shard])
            judge.batch(q, "query", shard_cases[shard])
    folder_s = time.monotonic() - t1

    singles = pick_singles(corpus.cases, n_single)

    def single_runs(case):
        a = run_cli(["add", "--db", lib, "--", str(case.path)], args.single_timeout_s, mem)
        q = run_cli(["query", "--db", lib, "--json", "--", str(case.path)], args.single_timeout_s, mem)
        return case, a, q

    t2 = time.monotonic()
    with ThreadPoolExecutor(args.jobs) as pool:
        for case, a, q in pool.map(single_runs, singles):
            judge.single(a, "add", case)
            judge.single(q, "query", case)
    single_s = time.monotonic() - t2

    check = run_cli(["check", "--db", lib], 300, mem)
    listed = run_cli(["list", "--db", lib, "--json"], 120, mem)
    registered = {json.loads(x)["work_id"] for x in listed.out.splitlines()}
    lost = judge.added_ids - registered
    check_ok = check.rc == 0 and check.out.startswith("ok:") and not lost
    if not check_ok:
        judge.fail(f"check: exit {check.rc}: {check.out.strip()} {check.err.strip()}; "
                   f"{len(lost)} reported works missing")
    for s in corpus.cases:
        for sock in s.sockets:
            sock.close()
    summary = {
        "files": len(corpus.cases),
        "kinds": len({c.kind for c in corpus.cases}),
        "by_kind": dict(sorted(collections.Counter(c.kind for c in corpus.cases).items())),
        "processes": judge.counts["processes"] + 3,
        "per_file_runs": len(singles),
        "hangs": judge.counts["hangs"],
        "tracebacks": judge.counts["tracebacks"],
        "wrong_exit_codes": judge.counts["wrong_exit"],
        "wrong_lines": judge.counts["wrong_lines"],
        "stray_lines": judge.counts["stray_lines"],
        "over_memory": judge.counts["over_memory"],
        "max_rss_mb": round(judge.peak_rss_mb, 1),
        "outcomes": dict(judge.outcomes),
        "works_registered": len(registered),
        "check_ok": check_ok,
        "build_s": round(build_s, 1),
        "folder_runs_s": round(folder_s, 1),
        "per_file_runs_s": round(single_s, 1),
        "total_s": round(time.monotonic() - t0, 1),
        "failures": judge.failures,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    if args.json:
        print(json.dumps(summary))
    else:
        for k, v in summary.items():
            if k not in ("by_kind", "failures"):
                print(f"{k:>18}: {v}")
        for f in judge.failures:
            print(f"FAIL {f}")
    return 1 if judge.counts["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())

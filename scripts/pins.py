"""The pinned install: write constraints.txt from a venv, or say how a venv drifts from it.

    python scripts/pins.py freeze > constraints.txt   # run in a venv that `make lock` filled
    python scripts/pins.py drift constraints.txt      # what the newest allowed versions change

Runs with the interpreter of the venv it describes (it reads that venv's installed packages);
no copytrace imports.
"""
from __future__ import annotations

import argparse
import re
import sys
from importlib import metadata

HEADER = """\
# Every package a copytrace install or test run uses, at the versions the test suite and the
# shipped INT8/FP32 figures were checked with. Written by `make lock` (scripts/pins.py freeze)
# from a fresh venv holding `.[dev,train]`; the Makefile and CI install through it
# (`pip install -c constraints.txt ...`). pyproject.toml keeps the ranges a library user gets.
"""


def _canon(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def installed() -> dict[str, str]:
    """Installed distributions of this interpreter, canonical name -> version (local labels
    such as torch's ``+cpu`` dropped: ``==2.13.0`` matches the local build)."""
    out = {}
    for dist in metadata.distributions():
        name = _canon(dist.metadata["Name"])
        if name != "copytrace":
            out[name] = dist.version.split("+")[0]
    return out


def read_constraints(path: str) -> dict[str, str]:
    pins = {}
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    for line in lines:
        line = line.split("#")[0].strip()
        if not line:
            continue
        m = re.fullmatch(r"([A-Za-z0-9_.\-]+)\s*==\s*([^\s;]+)", line)
        if not m:
            raise SystemExit(f"{path}: not a `name==version` pin: {line!r}")
        pins[_canon(m.group(1))] = m.group(2)
    return pins


def freeze() -> int:
    sys.stdout.write(HEADER)
    for name, version in sorted(installed().items()):
        sys.stdout.write(f"{name}=={version}\n")
    return 0


def drift(path: str) -> int:
    """Print each package whose installed version differs from its pin; 0 when none does."""
    pins, have = read_constraints(path), installed()
    rows = [(n, pins.get(n, "-"), have.get(n, "-")) for n in sorted(set(pins) | set(have))
            if pins.get(n) != have.get(n)]
    if not rows:
        print(f"drift: the newest allowed versions are the pinned ones ({path})")
        return 0
    width = max(len(n) for n, _, _ in rows)
    print(f"drift: {len(rows)} package(s) differ from {path} (pinned -> newest allowed)")
    for name, pinned, now in rows:
        print(f"  {name:<{width}}  {pinned} -> {now}")
    return 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("freeze", help="write pins for this venv's packages to stdout")
    d = sub.add_parser("drift", help="compare this venv's packages with a constraints file")
    d.add_argument("constraints")
    args = ap.parse_args()
    return freeze() if args.cmd == "freeze" else drift(args.constraints)


if __name__ == "__main__":
    sys.exit(main())

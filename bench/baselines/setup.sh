#!/usr/bin/env bash
# Create the peer-baseline venv for the image benchmark (PDQ + pHash), isolated from
# copytrace's own venv: pdqhash 0.2.8 needs numpy<2, which must never touch .venv.
# Usage: bash bench/baselines/setup.sh [VENV_DIR]   (default .stage/venvs/hashes)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
VENV="${1:-$ROOT/.stage/venvs/hashes}"
PY="${PYTHON:-python3.11}"
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet "numpy<2" "pillow>=10,<12" "pdqhash==0.2.8" "imagehash==4.3.2"
"$VENV/bin/python" -c "import pdqhash, imagehash, numpy; print('hashes venv ok: numpy', numpy.__version__)"

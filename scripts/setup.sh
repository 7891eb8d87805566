#!/usr/bin/env bash
# Create .venv and install the pinned environment of requirements-lock.txt, then udabench itself (editable).
# Usage: bash scripts/setup.sh [VENV_DIR]      (default .venv; re-running it is cheap)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${1:-.venv}
PY=${PYTHON:-python3}
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --upgrade pip
# torch first: the pinned CUDA build runs on CPUs too and is taken from the local wheel cache where present.
"$VENV/bin/python" -m pip install -q $(grep -E '^(torch|torchvision)==' requirements-lock.txt)
"$VENV/bin/python" -m pip install -q -r requirements-lock.txt
"$VENV/bin/python" -m pip install -q --no-deps --no-build-isolation -e .
"$VENV/bin/python" -c "import udabench, torch; print('udabench', udabench.__version__, '| torch', torch.__version__)"

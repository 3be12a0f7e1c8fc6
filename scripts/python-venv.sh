#!/usr/bin/env bash
# Creates (once) the repo-managed Python venv the archive tests read Delta tables with, and
# prints its python's path. The venv lives in .cache/venv/<hash of requirements.lock>, so a
# changed lock builds a new one and an unchanged one is reused as is (a marker file is written
# only after every package installed, so an interrupted install is redone, not trusted).
#
#   scripts/python-venv.sh            # prints e.g. /repo/.cache/venv/3f2a…/bin/python
#
# Exit codes: 0 ready; 1 Python 3 (with venv) is missing or the install failed. The tests decide
# what a failure means: under CI=true it fails them, never skips them.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
LOCK="$ROOT/scripts/python/requirements.lock"
PY="${SCORECAR_PYTHON:-python3}"
if ! command -v "$PY" >/dev/null 2>&1; then
  echo "python-venv: $PY not found (set SCORECAR_PYTHON to a Python >= 3.10)" >&2
  exit 1
fi
KEY="$( (cat "$LOCK"; "$PY" -c 'import sys; print(sys.version)') | sha256sum | cut -c1-16)"
DIR="$ROOT/.cache/venv/$KEY"
if [ -f "$DIR/.ready" ]; then
  echo "$DIR/bin/python"
  exit 0
fi
mkdir -p "$ROOT/.cache/venv"
# One installer at a time (test files may ask concurrently): the others wait, then reuse it.
exec 9>"$ROOT/.cache/venv/.lock"
flock 9
if [ ! -f "$DIR/.ready" ]; then
  rm -rf "$DIR"
  "$PY" -m venv "$DIR" >&2
  "$DIR/bin/python" -m pip install --disable-pip-version-check --no-input -q -r "$LOCK" >&2
  touch "$DIR/.ready"
fi
echo "$DIR/bin/python"

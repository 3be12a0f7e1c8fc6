#!/usr/bin/env bash
# Creates (once) a repo-managed Python venv and prints its python's path. Two venvs, each pinned by
# its own lock (their pins conflict: MLflow wants another pyarrow than the Delta readers):
#
#   scripts/python-venv.sh            # the Delta readers of the archive tests (requirements.lock)
#   scripts/python-venv.sh mlflow     # MLflow 3.18 for the MLflow tests (mlflow.lock)
#
# A venv lives in .cache/venv/<hash of its lock files and the Python version>, so a changed lock
# builds a new one and an unchanged one is reused as is (a marker file is written only after every
# package installed and the check passed, so an interrupted install is redone, not trusted).
# scripts/python/<name>.nodeps.lock, if present, is installed after the lock with --no-deps, and
# scripts/python/<name>.check.py, if present, must pass before the venv is marked ready.
#
# Exit codes: 0 ready; 1 Python 3 (with venv) is missing or the install failed. The tests decide
# what a failure means: under CI=true it fails them, never skips them.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
NAME="${1:-requirements}"
case "$NAME" in
  *[!a-z0-9_-]*) echo "python-venv: bad venv name '$NAME'" >&2; exit 1 ;;
esac
LOCK="$ROOT/scripts/python/$NAME.lock"
NODEPS="$ROOT/scripts/python/$NAME.nodeps.lock"
CHECK="$ROOT/scripts/python/$NAME.check.py"
if [ ! -f "$LOCK" ]; then
  echo "python-venv: no lock file $LOCK" >&2
  exit 1
fi
PY="${SCORECAR_PYTHON:-python3}"
if ! command -v "$PY" >/dev/null 2>&1; then
  echo "python-venv: $PY not found (set SCORECAR_PYTHON to a Python >= 3.10)" >&2
  exit 1
fi
KEY="$( (cat "$LOCK"; [ -f "$NODEPS" ] && cat "$NODEPS"; [ -f "$CHECK" ] && cat "$CHECK"; "$PY" -c 'import sys; print(sys.version)') | sha256sum | cut -c1-16)"
# The cache by its real path: a venv's scripts name their python by absolute path, so one made
# through a link (.ci/run links .cache to a cache outside the clone) must not depend on the link.
mkdir -p "$ROOT/.cache/venv"
CACHE="$(cd "$ROOT/.cache" && pwd -P)"
# The default venv keeps the directory name it always had.
if [ "$NAME" = requirements ]; then DIR="$CACHE/venv/$KEY"; else DIR="$CACHE/venv/$NAME-$KEY"; fi
if [ -f "$DIR/.ready" ]; then
  echo "$DIR/bin/python"
  exit 0
fi
# One installer at a time (test files may ask concurrently): the others wait, then reuse it.
exec 9>"$CACHE/venv/.lock"
flock 9
if [ ! -f "$DIR/.ready" ]; then
  rm -rf "$DIR"
  "$PY" -m venv "$DIR" >&2
  "$DIR/bin/python" -m pip install --disable-pip-version-check --no-input -q -r "$LOCK" >&2
  if [ -f "$NODEPS" ]; then
    "$DIR/bin/python" -m pip install --disable-pip-version-check --no-input -q --no-deps -r "$NODEPS" >&2
  fi
  if [ -f "$CHECK" ]; then
    "$DIR/bin/python" "$CHECK" >&2
  fi
  touch "$DIR/.ready"
fi
echo "$DIR/bin/python"

#!/usr/bin/env bash
# Install mathbot with its test tools into .venv (first run only takes long) and run the tests.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -k memory`. Tests run in parallel
# (pytest-xdist, one worker per core, at most 4); `-n 0` runs them in this process.
set -euo pipefail
cd "$(dirname "$0")/.."
python="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[dev]"
exec .venv/bin/python -m pytest -n auto --maxprocesses=4 "$@"

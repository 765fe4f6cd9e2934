#!/usr/bin/env bash
# Install mathbot into .venv (first run only takes long) and start it; settings come from .env.
# Extra arguments go to mathbot, e.g. `bash scripts/run-bot.sh chat`.
set -euo pipefail
cd "$(dirname "$0")/.."
python="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e .
exec .venv/bin/python -m bot "$@"

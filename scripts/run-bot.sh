#!/usr/bin/env bash
# Install mathbot into .venv when needed and start it; settings come from .env.
# Extra arguments go to mathbot, e.g. `bash scripts/run-bot.sh chat`.
# It installs only when .venv is missing or pyproject.toml changed since the last install
# (a stamp in .venv holds pyproject's hash), so an installed bot restarts with no network.
set -euo pipefail
cd "$(dirname "$0")/.."
python="${PYTHON:-python3}"
stamp=.venv/.mathbot-installed
wanted="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
    [ -x .venv/bin/python ] || "$python" -m venv .venv
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -e .
    echo "$wanted" > "$stamp"
fi
exec .venv/bin/python -m bot "$@"

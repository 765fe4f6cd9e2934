"""`scripts/run-bot.sh` installs only when `.venv` is missing or pyproject.toml changed."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LOGGING_PYTHON = """#!/bin/sh
echo "$*" >> "{log}"
if [ "$1 $2" = "-m venv" ]; then
    mkdir -p "$3/bin" && cp "$0" "$3/bin/python"
fi
"""


def run_bot(project: Path) -> list[str]:
    """Run the script in `project` with a stand-in python; the python commands it ran."""
    log = project / "calls.log"
    log.unlink(missing_ok=True)
    fake = project / "fake-python"
    fake.write_text(LOGGING_PYTHON.format(log=log))
    fake.chmod(0o755)
    env = {"PATH": os.environ.get("PATH", ""), "PYTHON": str(fake)}
    subprocess.run(["bash", "scripts/run-bot.sh", "chat"], cwd=project, env=env, check=True)
    return log.read_text().splitlines()


def test_run_bot_installs_only_when_needed(tmp_path: Path) -> None:
    (tmp_path / "scripts").mkdir()
    shutil.copy(REPO / "scripts" / "run-bot.sh", tmp_path / "scripts")
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "mathbot"\n')
    first = run_bot(tmp_path)
    assert first[0] == "-m venv .venv" and first[-1] == "-m bot chat"
    assert any(call.startswith("-m pip install") for call in first)

    assert run_bot(tmp_path) == ["-m bot chat"]  # installed: no network needed

    (tmp_path / "pyproject.toml").write_text('[project]\nname = "mathbot"\nversion = "2"\n')
    again = run_bot(tmp_path)
    assert again[0].startswith("-m pip install") and again[-1] == "-m bot chat"
    assert run_bot(tmp_path) == ["-m bot chat"]

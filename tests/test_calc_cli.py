"""`mathbot calc`: the sandboxed calculator from the command line, with no Discord or model key."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
NO_KEYS = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO_ROOT)}  # no token, no key, no .env
CONSOLE_SCRIPT = Path(sys.executable).with_name("mathbot")


def calc(
    tmp_path: Path, *args: str, command: tuple[str, ...] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*(command or (sys.executable, "-m", "bot")), "calc", *args],
        cwd=tmp_path,
        env=NO_KEYS,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_calc_prints_what_the_model_would_receive(tmp_path: Path) -> None:
    escape = "__import__('os').system('id')"
    done = calc(tmp_path, "2**100", "integrate(x^2, x)", escape, "1/0")
    assert done.returncode == 1  # some expressions answered an error
    assert done.stderr == ""
    lines = done.stdout.splitlines()
    first, second, refused, undefined = (json.loads(line) for line in lines)
    assert first == {
        "result": "1267650600228229401496703205376",
        "latex": "1267650600228229401496703205376",
    }
    assert lines[0] == json.dumps(first, separators=(",", ":"))  # the tool's compact JSON
    assert second == {"result": "x**3/3", "latex": "\\frac{x^{3}}{3}"}
    assert set(refused) == {"error"} and "uid=" not in done.stdout
    assert undefined == {"error": "division by zero"}


@pytest.mark.skipif(not CONSOLE_SCRIPT.exists(), reason="the package is not installed")
def test_the_mathbot_console_script_has_calc(tmp_path: Path) -> None:
    done = calc(tmp_path, "N(pi, 20)", command=(str(CONSOLE_SCRIPT),))
    assert done.returncode == 0, done.stderr  # every expression has a result
    assert json.loads(done.stdout)["result"] == "3.1415926535897932385"

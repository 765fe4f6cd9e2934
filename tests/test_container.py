"""The container recipe: the Dockerfile's health check passes with metrics off and asks
`/healthz` with them on; the image starts `python -m bot` with the memory on the volume."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

DOCKERFILE = (Path(__file__).resolve().parents[1] / "Dockerfile").read_text()


def instruction(name: str) -> str:
    """The text of the Dockerfile's `name` instruction, continuation lines joined."""
    text = DOCKERFILE.replace("\\\n", " ")
    (line,) = [line for line in text.splitlines() if line.startswith(f"{name} ")]
    return line.removeprefix(f"{name} ").strip()


def health_check(**extra: str) -> int:
    """Run the HEALTHCHECK command as Docker would (exec form), with `python` this one."""
    command = json.loads(instruction("HEALTHCHECK").partition(" CMD ")[2])
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    return subprocess.run(command, env={"PATH": path, **extra}, timeout=30).returncode


@pytest.fixture
def healthz() -> Iterator[tuple[int, list[int]]]:
    """A loopback `/healthz` answering the first status in the list it yields."""
    statuses = [200]

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(statuses[0] if self.path == "/healthz" else 404)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], statuses
    finally:
        server.shutdown()
        server.server_close()


def test_health_check_passes_when_metrics_are_off() -> None:
    assert health_check() == 0


def test_health_check_asks_healthz_when_metrics_are_on(healthz: tuple[int, list[int]]) -> None:
    port, statuses = healthz
    assert health_check(METRICS_PORT=str(port)) == 0
    statuses[0] = 503
    assert health_check(METRICS_PORT=str(port)) != 0


def test_image_runs_the_bot_as_a_user_with_its_memory_on_the_volume() -> None:
    assert json.loads(instruction("CMD")) == ["python", "-m", "bot"]
    assert instruction("FROM") == "python:3.11-slim"
    assert "SESSION_DB=/data/maths_db.db" in instruction("ENV")
    assert instruction("VOLUME") == '["/data"]'
    assert instruction("USER") not in {"root", "0"}

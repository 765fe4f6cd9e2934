"""Start-up as an operator meets it: `python -m bot` with a bad memory path, servers that are
not there yet, a typo in the settings, `--version`, and the terminal chat's first lines."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from importlib.metadata import version
from pathlib import Path

import pytest

REPO_ROOT = str(Path(__file__).resolve().parents[1])
PASSWORD = "hunter2-not-in-logs"
TIMEOUT = 60.0  # generous: two cores shared with other test workers


def env(**extra: str) -> dict[str, str]:
    """A bot's environment: fake keys and nothing inherited but PATH."""
    return {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": REPO_ROOT,
        "PYTHONUNBUFFERED": "1",
        "DISCORD_TOKEN": "fake.discord.token",
        "GOOGLE_API_KEY": "fake-google-key",
        **extra,
    }


def run(tmp_path: Path, *args: str, stdin: str = "", **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=tmp_path, env=env(**extra), input=stdin, capture_output=True, text=True,
        timeout=TIMEOUT,
    )  # fmt: skip


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port that refuses connections: bound (so nobody else takes it), never
    listening."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def test_memory_path_that_cannot_be_created_is_one_line_and_exit_2(tmp_path: Path) -> None:
    done = run(tmp_path, SESSION_DB="/proc/nope/x.db")
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    ours = [line for line in done.stderr.splitlines() if line.startswith("mathbot:")]
    assert len(ours) == 1 and "SESSION_DB" in ours[0] and "/proc/nope/x.db" in ours[0]


def test_usage_path_that_cannot_be_created_names_usage_db(tmp_path: Path) -> None:
    done = run(tmp_path, "chat", stdin="/quit\n", USAGE_DB="/proc/nope/usage.db")
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert "mathbot: USAGE_DB: cannot create" in done.stderr


@contextlib.asynccontextmanager
async def bot(tmp_path: Path, **extra: str) -> AsyncIterator[asyncio.subprocess.Process]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", cwd=tmp_path, env=env(**extra),
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def lines_until(process: asyncio.subprocess.Process, marker: str, count: int) -> str:
    """stderr up to the `count`-th line holding `marker`."""
    assert process.stderr is not None
    seen, found = [], 0
    async with asyncio.timeout(TIMEOUT):
        while found < count:
            line = (await process.stderr.readline()).decode()
            assert line, "the bot ended early:\n" + "".join(seen)
            seen.append(line)
            found += marker in line
    return "".join(seen)


async def terminate(process: asyncio.subprocess.Process) -> str:
    """SIGTERM, then the rest of stderr; the bot must stop by itself, with status 0."""
    assert process.stderr is not None
    process.send_signal(signal.SIGTERM)
    async with asyncio.timeout(TIMEOUT):
        rest = (await process.stderr.read()).decode()
        assert await process.wait() == 0, rest
    return rest


@pytest.mark.parametrize(
    ("scheme", "name"),
    [("redis", "Redis"), ("postgresql+asyncpg", "PostgreSQL")],
)
async def test_unreachable_memory_server_is_retried_with_one_line_per_try(
    tmp_path: Path, closed_port: int, scheme: str, name: str
) -> None:
    url = f"{scheme}://mathbot:{PASSWORD}@127.0.0.1:{closed_port}/0"
    async with bot(tmp_path, SESSION_DB=url) as process:
        marker = f"memory ({name} at 127.0.0.1:{closed_port}/0) is unreachable"
        log = await lines_until(process, marker, 2)
        assert "try 2 in 1 s" in log and "try 3 in 2 s" in log
        log += await terminate(process)
    assert "Traceback" not in log and PASSWORD not in log


async def test_unreachable_discord_is_retried_without_voice_warnings(
    tmp_path: Path, closed_port: int
) -> None:
    api = f"http://127.0.0.1:{closed_port}/api/v10"
    async with bot(tmp_path, SESSION_DB=str(tmp_path / "m.db"), DISCORD_API_URL=api) as process:
        log = await lines_until(process, f"Discord at 127.0.0.1:{closed_port} is unreachable", 2)
        log += await terminate(process)
    assert "Traceback" not in log
    assert "voice will NOT be supported" not in log


def test_a_setting_typo_is_warned_with_the_closest_name(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("LLM_MODLE=gemini-2.5-pro\n")
    done = run(tmp_path, "chat", stdin="/quit\n", SESSION_DB=str(tmp_path / "m.db"))
    assert done.returncode == 0, done.stderr
    assert "LLM_MODLE is not a mathbot setting and is ignored: did you mean LLM_MODEL?" in (
        done.stderr
    )


def test_version_comes_from_the_package_metadata(tmp_path: Path) -> None:
    done = run(tmp_path, "--version")
    assert done.returncode == 0
    assert done.stdout.strip() == f"mathbot {version('mathbot')}"


def test_terminal_chat_says_what_it_does_on_stderr_and_keeps_stdout_for_the_chat(
    tmp_path: Path,
) -> None:
    memory = tmp_path / "chat.db"
    done = run(tmp_path, "chat", stdin="/quit\n", SESSION_DB=str(memory), LLM_MODLE="x")
    assert done.returncode == 0, done.stderr
    status = done.stderr.index("starting the calculator")
    assert done.stderr.index(f"memory: {memory}") < status < done.stderr.index("ready")
    assert "LLM_MODLE" in done.stderr
    assert done.stdout.startswith("mathbot chat as 'local'.")
    assert "mathbot:" not in done.stdout and "LLM_MODLE" not in done.stdout
    assert done.stdout.rstrip().endswith("you>")

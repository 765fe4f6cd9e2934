"""`python -m bot` as a child process of the test, talking to the loopback fakes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path
from typing import IO

REPO_ROOT = str(Path(__file__).resolve().parents[1])
DISCORD_TOKEN = "fake.discord.token"
LLM_KEY = "fake-google-key"


def bot_env(
    *, api_url: str, gateway_url: str, llm_base_url: str, session_db: str, **extra: str
) -> dict[str, str]:
    """The environment of a bot process: the fakes' addresses, a memory file, and `extra`
    (e.g. USER_RATE_LIMIT="off"); nothing is inherited but PATH."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": REPO_ROOT,
        "PYTHONUNBUFFERED": "1",
        "DISCORD_TOKEN": DISCORD_TOKEN,
        "GOOGLE_API_KEY": LLM_KEY,
        "LLM_BASE_URL": llm_base_url,
        "SESSION_DB": session_db,
        "DISCORD_API_URL": api_url,
        "DISCORD_GATEWAY_URL": gateway_url,
    }
    env.update(extra)
    return env


class BotProcess:
    """One `python -m bot` in a process group of its own, its output kept in `log_path`.

    The group holds the bot and the calculator's worker processes, so `reap()` can end
    whatever a killed bot left behind. Use it as an async context manager: on exit the bot
    and its group are killed if still there.
    """

    def __init__(self, env: dict[str, str], *, cwd: Path, log_path: Path) -> None:
        self.env = env
        self.cwd = cwd
        self.log_path = log_path
        self._process: asyncio.subprocess.Process | None = None
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def process(self) -> asyncio.subprocess.Process:
        if self._process is None:
            raise RuntimeError("BotProcess.start() was not called")
        return self._process

    @property
    def returncode(self) -> int | None:
        return self.process.returncode

    async def start(self) -> None:
        self._log = self.log_path.open("ab")
        self._process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", cwd=self.cwd, env=self.env,
            stdin=asyncio.subprocess.DEVNULL, stdout=self._log, stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip

    def kill(self) -> None:
        """SIGKILL the bot process itself (not its workers): a crash, no clean-up at all."""
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGKILL)

    async def wait(self, timeout: float) -> int:  # noqa: ASYNC109 - a bounded wait is the point
        return await asyncio.wait_for(self.process.wait(), timeout)

    async def terminate(self, timeout: float = 15.0) -> int:  # noqa: ASYNC109
        """SIGTERM (the bot closes itself) and wait for its exit status."""
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
        return await self.wait(timeout)

    def reap(self) -> None:
        """SIGKILL what is left of the bot's process group (its group id is its pid)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)

    def output(self) -> str:
        """What the bot has logged so far (for assertion messages)."""
        if self._log is not None:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.output().splitlines()[-lines:])

    async def close(self) -> None:
        if self._process is not None:
            self.kill()
            with contextlib.suppress(TimeoutError):
                await self.wait(10)
            self.reap()
        if self._log is not None:
            self._log.close()
            self._log = None

    async def __aenter__(self) -> BotProcess:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

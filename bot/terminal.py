"""A terminal chat with the assistant: the same core and memory as the Discord bot."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import Iterator
from typing import TextIO

from .core.assistant import Assistant
from .errors import UserFacingError
from .memory.keys import user_session_id
from .render.unicode import to_discord_text

PROMPT = "you> "
COMMANDS = "Type a math question. /forget wipes this conversation, /quit (or Ctrl-D) leaves."


def chat_session_id(user: str) -> str:
    """A numeric NAME is a Discord user id, so a Discord conversation can be continued here."""
    return user_session_id(int(user)) if user.isdigit() else f"terminal:user:{user}"


class AbovePrompt:
    """A log handler's stream that writes above a prompt waiting for input: it ends the
    prompt's line first and shows the prompt again after, so no log line lands in it."""

    def __init__(self, stream: TextIO, screen: TextIO) -> None:
        self.stream = stream
        self.screen = screen
        self.prompt: str | None = None  # shown and waiting for input

    def write(self, text: str) -> int:
        if self.prompt is not None:
            self.screen.write("\n")
            self.screen.flush()
        written = self.stream.write(text)
        self.stream.flush()
        if self.prompt is not None:
            self.screen.write(self.prompt)
            self.screen.flush()
        return written

    def flush(self) -> None:
        self.stream.flush()


@contextlib.contextmanager
def logs_above_prompt() -> Iterator[AbovePrompt | None]:
    """The root logger's stderr handler writes through an `AbovePrompt`, for the block."""
    handlers = [
        h for h in logging.getLogger().handlers
        if isinstance(h, logging.StreamHandler) and h.stream is sys.stderr
    ]  # fmt: skip
    if not handlers:
        yield None
        return
    guard = AbovePrompt(sys.stderr, sys.stdout)
    for handler in handlers:
        handler.setStream(guard)  # type: ignore[arg-type]
    try:
        yield guard
    finally:
        for handler in handlers:
            handler.setStream(sys.stderr)


async def ask_line(guard: AbovePrompt | None) -> str:
    """One line from the terminal after the prompt; log lines meanwhile go above it."""
    if guard is not None:
        guard.prompt = PROMPT
    try:
        return await asyncio.to_thread(input, PROMPT)
    finally:
        if guard is not None:
            guard.prompt = None


def status(line: str) -> None:
    """What the chat is doing, on stderr: the prompt and the answers alone are on stdout."""
    print(f"mathbot: {line}", file=sys.stderr, flush=True)


async def run_chat(assistant: Assistant, user: str, memory: str) -> int:
    """Read questions from the terminal until EOF or /quit; print each answer. `memory` says
    where the conversations are kept (a file path, or a server's host:port)."""
    session_id = chat_session_id(user)
    status(f"memory: {memory} (conversation {session_id})")
    status("starting the calculator, the plotter and the model client…")
    await assistant.start()
    try:
        status("ready")
        print(f"mathbot chat as {user!r}. {COMMANDS}")
        with logs_above_prompt() as guard:
            return await converse(assistant, session_id, guard)
    finally:
        await assistant.close()


async def converse(assistant: Assistant, session_id: str, guard: AbovePrompt | None) -> int:
    """Questions and answers until EOF or /quit."""
    while True:
        try:
            line = await ask_line(guard)
        except EOFError:
            print()
            return 0
        command = line.strip().lower()
        if command in {"/quit", "/exit"}:
            return 0
        if command == "/forget":
            await assistant.forget(session_id)
            print("mathbot> Done: I have forgotten our conversation.")
            continue
        try:
            answer = to_discord_text((await assistant.ask(session_id, line)).text)
        except UserFacingError as exc:
            answer = str(exc)
        print(f"mathbot> {answer}")

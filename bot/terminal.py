"""A terminal chat with the assistant: the same core and memory as the Discord bot."""

from __future__ import annotations

import asyncio
import sys

from .core.assistant import Assistant
from .errors import UserFacingError
from .memory.keys import user_session_id
from .render.unicode import to_discord_text

PROMPT = "you> "
COMMANDS = "Type a math question. /forget wipes this conversation, /quit (or Ctrl-D) leaves."


def chat_session_id(user: str) -> str:
    """A numeric NAME is a Discord user id, so a Discord conversation can be continued here."""
    return user_session_id(int(user)) if user.isdigit() else f"terminal:user:{user}"


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
        while True:
            try:
                line = await asyncio.to_thread(input, PROMPT)
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
    finally:
        await assistant.close()

"""A terminal chat with the assistant: the same core and memory as the Discord bot."""

from __future__ import annotations

import asyncio

from .core.assistant import Assistant
from .errors import UserFacingError
from .memory.keys import user_session_id
from .render.unicode import to_discord_text

PROMPT = "you> "
COMMANDS = "Type a math question. /forget wipes this conversation, /quit (or Ctrl-D) leaves."


def chat_session_id(user: str) -> str:
    """A numeric NAME is a Discord user id, so a Discord conversation can be continued here."""
    return user_session_id(int(user)) if user.isdigit() else f"terminal:user:{user}"


async def run_chat(assistant: Assistant, user: str) -> int:
    """Read questions from the terminal until EOF or /quit; print each answer."""
    session_id = chat_session_id(user)
    await assistant.start()
    try:
        print(f"mathbot chat as {user!r} (memory: {session_id}). {COMMANDS}")
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

"""Conversation memory: session ids, the session store, and all-or-nothing turns."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from pathlib import Path
from typing import Any, Protocol

from agents import SQLiteSession, TResponseInputItem
from agents.memory import Session, SessionSettings

from ..errors import UserFacingError
from ..render.uploads import without_images
from .history import is_user_message, read_history, user_turn_starts

log = logging.getLogger(__name__)


def user_session_id(user_id: int) -> str:
    return f"discord:user:{user_id}"


def channel_session_id(channel_id: int) -> str:
    return f"discord:channel:{channel_id}"


class SessionStore(Protocol):
    """Where conversations are kept: hands out one SDK `Session` per conversation turn."""

    async def start(self) -> None: ...

    def session(self, session_id: str) -> AbstractAsyncContextManager[Session]: ...

    def turn_lock(self, session_id: str) -> AbstractAsyncContextManager[None]:
        """Held around each turn, on top of the in-process order: stores shared by several
        processes make it a cross-process lock."""
        ...

    async def close(self) -> None: ...


class SQLiteStore:
    """The SDK's `SQLiteSession` over one local file; a session object lives for one turn."""

    def __init__(self, path: str) -> None:
        self.path = path

    async def start(self) -> None:
        """Create the file and its tables once, off the event loop."""

        def create() -> None:
            if self.path != ":memory:":
                Path(self.path).expanduser().parent.mkdir(parents=True, exist_ok=True)
            SQLiteSession("mathbot:startup", self.path).close()

        await asyncio.to_thread(create)
        log.info("memory: SQLite at %s", self.path)

    @asynccontextmanager
    async def session(self, session_id: str) -> AsyncIterator[Session]:
        stored = await asyncio.to_thread(SQLiteSession, session_id, self.path)
        try:
            yield stored
        finally:
            await asyncio.to_thread(stored.close)

    def turn_lock(self, session_id: str) -> AbstractAsyncContextManager[None]:
        """One process owns the file: the in-process turn order is enough."""
        return nullcontext()

    async def close(self) -> None:
        """Nothing stays open between turns."""


class TurnSession:
    """A `Session` that holds one turn's new items and writes them in one go on `commit()`.

    The SDK saves the user's message before it calls the model; holding the items here means a
    failed or killed turn leaves nothing behind. Reads see the bounded stored history plus
    what this turn has added so far.
    """

    session_settings: SessionSettings | None = None

    def __init__(self, stored: Session, history_turns: int, *, replaces: str | None = None) -> None:
        self.session_id = stored.session_id
        self._stored = stored
        self._history_turns = history_turns
        self._replaces = replaces
        self._pending: list[TResponseInputItem] = []

    @property
    def pending(self) -> list[TResponseInputItem]:
        return list(self._pending)

    async def get_items(self, limit: int | None = None) -> list[TResponseInputItem]:
        if self._replaces is None:
            history = await read_history(self._stored, self._history_turns)
        else:  # one turn more, since the last one is dropped
            history = await read_history(self._stored, self._history_turns + 1)
            history = _without_last_turn(history, self._replaces)
            starts = user_turn_starts(history)
            if len(starts) > self._history_turns:
                history = history[starts[-self._history_turns] :]
        items = history + self._pending
        return items[-limit:] if limit else items

    async def add_items(self, items: list[TResponseInputItem]) -> None:
        self._pending.extend(items)

    async def pop_item(self) -> TResponseInputItem | None:
        return self._pending.pop() if self._pending else None

    async def clear_session(self) -> None:
        self._pending.clear()
        await self._stored.clear_session()

    async def commit(self) -> None:
        """Store the whole turn in one write (one transaction in every SDK store); images the
        user sent are stored as a note. A replacing turn first removes the turn it replaces."""
        if not self._pending:
            return
        if self._replaces is not None:
            await self._drop_last_turn()
        await self._stored.add_items(without_images(self._pending))
        self._pending = []

    async def _drop_last_turn(self) -> None:
        while (item := await self._stored.pop_item()) is not None:
            if is_user_message(item):
                return


def question_text(item: TResponseInputItem) -> str:
    """The text a user message carries (its text parts, joined)."""
    content: Any = dict(item).get("content")  # type: ignore[arg-type]
    if isinstance(content, str):
        return content
    parts = [p.get("text", "") for p in content or () if isinstance(p, dict)]
    return "\n".join(p for p in parts if p)


def _without_last_turn(
    history: list[TResponseInputItem], question: str
) -> list[TResponseInputItem]:
    """History before its last turn, which must be the one that asked `question`."""
    starts = user_turn_starts(history)
    if not starts or question_text(history[starts[-1]]) != question:
        raise UserFacingError("")  # the edited question is no longer the latest: say nothing
    return history[: starts[-1]]

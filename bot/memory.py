"""Conversation memory: session ids, the session store, and all-or-nothing turns."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from pathlib import Path
from typing import Protocol

from agents import SQLiteSession, TResponseInputItem
from agents.memory import Session, SessionSettings

from .history import read_history

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

    def __init__(self, stored: Session, history_turns: int) -> None:
        self.session_id = stored.session_id
        self._stored = stored
        self._history_turns = history_turns
        self._pending: list[TResponseInputItem] = []

    @property
    def pending(self) -> list[TResponseInputItem]:
        return list(self._pending)

    async def get_items(self, limit: int | None = None) -> list[TResponseInputItem]:
        items = await read_history(self._stored, self._history_turns) + self._pending
        return items[-limit:] if limit else items

    async def add_items(self, items: list[TResponseInputItem]) -> None:
        self._pending.extend(items)

    async def pop_item(self) -> TResponseInputItem | None:
        return self._pending.pop() if self._pending else None

    async def clear_session(self) -> None:
        self._pending.clear()
        await self._stored.clear_session()

    async def commit(self) -> None:
        """Store the whole turn in one write (one transaction in every SDK store)."""
        if self._pending:
            await self._stored.add_items(self._pending)
            self._pending = []

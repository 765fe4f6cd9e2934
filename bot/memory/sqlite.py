"""SQLite memory: the SDK's `SQLiteSession` over one local file (the default, `maths_db.db`)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from pathlib import Path

from agents import SQLiteSession, TResponseInputItem
from agents.memory import Session

from . import sqlite_rows
from .store import TurnLease

log = logging.getLogger(__name__)

IN_MEMORY = ":memory:"


class SQLiteStore:
    """The SDK's `SQLiteSession` over one local file; a session object lives for one turn."""

    def __init__(self, path: str) -> None:
        self.path = path

    async def start(self) -> None:
        """Create the file and its tables once, off the event loop."""

        def create() -> None:
            if self.path != IN_MEMORY:
                Path(self.path).expanduser().parent.mkdir(parents=True, exist_ok=True)
            self._sdk_session("mathbot:startup").close()

        await asyncio.to_thread(create)
        log.info("memory: SQLite at %s", self.path)

    @asynccontextmanager
    async def session(self, session_id: str) -> AsyncIterator[Session]:
        stored = await asyncio.to_thread(self._sdk_session, session_id)
        try:
            yield stored
        finally:
            await asyncio.to_thread(stored.close)

    def turn_lock(self, session_id: str) -> AbstractAsyncContextManager[TurnLease]:
        """One process owns the file: the in-process turn order is enough, and no other
        process can take a turn, so the lease needs no token."""
        return nullcontext(TurnLease(session_id, ""))

    async def commit_turn(
        self, lease: TurnLease, items: list[TResponseInputItem], *, replaces: str | None
    ) -> None:
        """One transaction on the file (see `sqlite_rows.write_turn`); once started, it runs
        to its end even if the turn is cancelled, so the outcome is known."""
        if self.path == IN_MEMORY:
            return  # each SDK session has a database of its own, gone with the turn
        write = asyncio.ensure_future(
            asyncio.to_thread(sqlite_rows.write_turn, self.path, lease.session_id, items, replaces)
        )
        try:
            await asyncio.shield(write)
        except asyncio.CancelledError:
            await asyncio.wait([write])
            if not write.cancelled() and write.exception() is not None:
                log.warning("a cancelled turn's write failed: %r", write.exception())
            raise

    async def close(self) -> None:
        """Nothing stays open between turns."""

    def _sdk_session(self, session_id: str) -> SQLiteSession:
        return SQLiteSession(
            session_id,
            self.path,
            sessions_table=sqlite_rows.SESSIONS_TABLE,
            messages_table=sqlite_rows.MESSAGES_TABLE,
        )

"""SQLite memory: the SDK's `SQLiteSession` over one local file (the default, `maths_db.db`)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from pathlib import Path

from agents import SQLiteSession, TResponseInputItem
from agents.memory import Session

from . import sqlite_rows
from .store import TurnLease

log = logging.getLogger(__name__)

IN_MEMORY = ":memory:"


class SQLiteStore:
    """The SDK's `SQLiteSession` over one local file; a session object lives for one turn.

    Turns are written by one thread of the store's own, one at a time in the order they
    were committed: they never wait in SQLite's busy loop for each other, nor behind other
    work in the event loop's default thread pool. (The SDK session's reads still run in
    that pool: `SQLiteSession` calls `asyncio.to_thread` itself.)
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._writer: ThreadPoolExecutor | None = None

    async def start(self) -> None:
        """Create the file and its tables once, off the event loop."""

        def create() -> None:
            if self.path != IN_MEMORY:
                Path(self.path).expanduser().parent.mkdir(parents=True, exist_ok=True)
            self._sdk_session("mathbot:startup").close()

        if self._writer is None:
            self._writer = ThreadPoolExecutor(1, thread_name_prefix="mathbot-memory")
        await asyncio.get_running_loop().run_in_executor(self._writer, create)
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
        if self._writer is None:
            raise RuntimeError("SQLiteStore.start() was not called")
        write = asyncio.get_running_loop().run_in_executor(
            self._writer, sqlite_rows.write_turn, self.path, lease.session_id, items, replaces
        )
        try:
            await asyncio.shield(write)
        except asyncio.CancelledError:
            await asyncio.wait([write])
            if not write.cancelled() and write.exception() is not None:
                log.warning("a cancelled turn's write failed: %r", write.exception())
            raise

    async def forget(self, lease: TurnLease) -> None:
        """Nothing is kept beside the session's items."""

    async def close(self) -> None:
        """Nothing stays open between turns; a write already started still finishes."""
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.shutdown(wait=False)

    def _sdk_session(self, session_id: str) -> SQLiteSession:
        return SQLiteSession(
            session_id,
            self.path,
            sessions_table=sqlite_rows.SESSIONS_TABLE,
            messages_table=sqlite_rows.MESSAGES_TABLE,
        )

"""SQLite memory: the SDK's `SQLiteSession` over one local file (the default, `maths_db.db`)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from pathlib import Path

from agents import SQLiteSession
from agents.memory import Session

log = logging.getLogger(__name__)


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

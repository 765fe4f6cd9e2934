"""One SQLite connection with a thread of its own: what the usage ledger and the preferences
use to reach their tables in the `SESSION_DB` file off the event loop.

Why not a library: `aiosqlite` does the same (a thread per connection) but would be a new
dependency for these few lines, and this one also keeps the calls out of the event loop's
default thread pool, where hostile turns' work could make them queue.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

_T = TypeVar("_T")


class SQLiteThread:
    """A connection to `path` (WAL, autocommit, 10 s busy timeout) that `setup` prepares (its
    tables, pragmas), used by one thread: calls run one at a time, in the order made."""

    def __init__(self, name: str, path: str, setup: Callable[[sqlite3.Connection], None]) -> None:
        self.name = name
        self.path = path
        self._setup = setup
        self._conn: sqlite3.Connection | None = None
        self._thread: ThreadPoolExecutor | None = None

    @property
    def is_open(self) -> bool:
        return self._conn is not None

    async def open(self) -> None:
        """Open the connection in its thread (nothing more if it is open)."""
        if self._conn is None:
            self._thread = ThreadPoolExecutor(1, thread_name_prefix=f"mathbot-{self.name}")
            self._conn = await asyncio.get_running_loop().run_in_executor(self._thread, self._open)

    async def close(self) -> None:
        """Close the connection after the calls already made."""
        conn, self._conn, thread, self._thread = self._conn, None, self._thread, None
        if conn is not None and thread is not None:
            await asyncio.get_running_loop().run_in_executor(thread, conn.close)
        if thread is not None:
            thread.shutdown(wait=False)

    async def run(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        """`work(connection)` in the connection's thread."""
        conn, thread = self._conn, self._thread
        if conn is None or thread is None:
            raise RuntimeError(
                f"the SQLite {self.name} connection is not open (start() was not called)"
            )
        return await asyncio.get_running_loop().run_in_executor(thread, work, conn)

    def _open(self) -> sqlite3.Connection:
        if self.path != ":memory:":
            Path(self.path).expanduser().parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=10.0, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            self._setup(conn)
        except BaseException:
            conn.close()
            raise
        return conn

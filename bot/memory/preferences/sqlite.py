"""Preferences as a table in the SQLite memory file, used off the event loop."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from .base import Change, Record, decode, encode

log = logging.getLogger(__name__)

TABLE = "mathbot_preferences"
_T = TypeVar("_T")


class SQLitePreferences:
    """`Preferences` as the table `mathbot_preferences (key, data)` in the SESSION_DB file.

    One connection, used off the event loop by one thread of its own: calls run one at a
    time and finish in the order they were made (so a user's messages are gated in order). An
    update reads and writes in one `BEGIN IMMEDIATE` transaction.
    """

    def __init__(self, path: str, *, table: str = TABLE) -> None:
        self.path = path
        self.table = table
        self._conn: sqlite3.Connection | None = None
        self._thread: ThreadPoolExecutor | None = None

    async def start(self) -> None:
        if self._conn is None:
            self._thread = ThreadPoolExecutor(1, thread_name_prefix="mathbot-preferences")
            self._conn = await asyncio.get_running_loop().run_in_executor(self._thread, self._open)
            log.info("preferences: SQLite at %s", self.path)

    async def close(self) -> None:
        conn, self._conn, thread, self._thread = self._conn, None, self._thread, None
        if conn is not None and thread is not None:
            await asyncio.get_running_loop().run_in_executor(thread, conn.close)
        if thread is not None:
            thread.shutdown(wait=False)

    async def read(self, keys: Sequence[str]) -> dict[str, Record]:
        wanted = list(dict.fromkeys(keys))
        if not wanted:
            return {}
        marks = ", ".join("?" for _ in wanted)
        sql = f"SELECT key, data FROM {self.table} WHERE key IN ({marks})"
        rows = await self._run(lambda c: c.execute(sql, wanted).fetchall())
        return {key: record for key, data in rows if (record := decode(key, data)) is not None}

    async def update(self, key: str, change: Change) -> Record | None:
        def apply(c: sqlite3.Connection) -> Record | None:
            c.execute("BEGIN IMMEDIATE")
            try:
                row = c.execute(f"SELECT data FROM {self.table} WHERE key = ?", (key,)).fetchone()
                new = change(decode(key, row[0]) if row else None)
                if new is None:
                    c.execute(f"DELETE FROM {self.table} WHERE key = ?", (key,))
                else:
                    c.execute(
                        f"INSERT INTO {self.table} (key, data) VALUES (?, ?) "
                        "ON CONFLICT (key) DO UPDATE SET data = excluded.data",
                        (key, encode(new)),
                    )
            except BaseException:
                c.execute("ROLLBACK")
                raise
            c.execute("COMMIT")
            return new

        return await self._run(apply)

    async def delete(self, key: str) -> None:
        sql = f"DELETE FROM {self.table} WHERE key = ?"
        await self._run(lambda c: c.execute(sql, (key,)))

    def _open(self) -> sqlite3.Connection:
        if self.path != ":memory:":
            Path(self.path).expanduser().parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=10.0, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {self.table} "
                "(key TEXT PRIMARY KEY, data TEXT NOT NULL)"
            )
        except BaseException:
            conn.close()
            raise
        return conn

    async def _run(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        conn, thread = self._conn, self._thread
        if conn is None or thread is None:
            raise RuntimeError("SQLitePreferences.start() was not called")
        return await asyncio.get_running_loop().run_in_executor(thread, work, conn)

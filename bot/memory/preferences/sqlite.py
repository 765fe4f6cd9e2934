"""Preferences as a table in the SQLite memory file, used off the event loop."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from .base import Change, Record, decode, encode

log = logging.getLogger(__name__)

TABLE = "mathbot_preferences"
_T = TypeVar("_T")


class SQLitePreferences:
    """`Preferences` as the table `mathbot_preferences (key, data)` in the SESSION_DB file.

    One connection, used from worker threads one call at a time (`asyncio.to_thread`); an
    update reads and writes in one `BEGIN IMMEDIATE` transaction.
    """

    def __init__(self, path: str, *, table: str = TABLE) -> None:
        self.path = path
        self.table = table
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    async def start(self) -> None:
        if self._conn is None:
            await asyncio.to_thread(self._open)
            log.info("preferences: SQLite at %s", self.path)

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await asyncio.to_thread(self._locked, conn.close)

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

    def _open(self) -> None:
        if self.path != ":memory:":
            Path(self.path).expanduser().parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            self.path, timeout=10.0, isolation_level=None, check_same_thread=False
        )
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {self.table} "
                "(key TEXT PRIMARY KEY, data TEXT NOT NULL)"
            )
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    async def _run(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        conn = self._conn
        if conn is None:
            raise RuntimeError("SQLitePreferences.start() was not called")
        return await asyncio.to_thread(self._locked, lambda: work(conn))

    def _locked(self, work: Callable[[], _T]) -> _T:
        with self._lock:
            return work()

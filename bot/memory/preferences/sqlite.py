"""Preferences as a table in the SQLite memory file, used off the event loop."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Sequence

from ..sqlite_thread import SQLiteThread
from .base import Change, Record, decode, encode

log = logging.getLogger(__name__)

TABLE = "mathbot_preferences"


class SQLitePreferences:
    """`Preferences` as the table `mathbot_preferences (key, data)` in the SESSION_DB file.

    One connection, used off the event loop by one thread of its own: calls run one at a
    time and finish in the order they were made (so a user's messages are gated in order). An
    update reads and writes in one `BEGIN IMMEDIATE` transaction.
    """

    def __init__(self, path: str, *, table: str = TABLE) -> None:
        self.path = path
        self.table = table
        self._db = SQLiteThread("preferences", path, self._create_table)

    async def start(self) -> None:
        if not self._db.is_open:
            await self._db.open()
            log.info("preferences: SQLite at %s", self.path)

    async def close(self) -> None:
        await self._db.close()

    async def read(self, keys: Sequence[str]) -> dict[str, Record]:
        wanted = list(dict.fromkeys(keys))
        if not wanted:
            return {}
        marks = ", ".join("?" for _ in wanted)
        sql = f"SELECT key, data FROM {self.table} WHERE key IN ({marks})"
        rows = await self._db.run(lambda c: c.execute(sql, wanted).fetchall())
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

        return await self._db.run(apply)

    async def delete(self, key: str) -> None:
        sql = f"DELETE FROM {self.table} WHERE key = ?"
        await self._db.run(lambda c: c.execute(sql, (key,)))

    def _create_table(self, conn: sqlite3.Connection) -> None:
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {self.table} (key TEXT PRIMARY KEY, data TEXT NOT NULL)"
        )

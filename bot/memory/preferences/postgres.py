"""Preferences as a table in the PostgreSQL memory database, on the memory store's engine."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from ..outage import outages_raised
from ..postgres import PostgresStore, is_postgres_outage
from .base import Change, Record, decode, encode

log = logging.getLogger(__name__)

TABLE = "mathbot_preferences"


class PostgresPreferences:
    """`Preferences` as the table `mathbot_preferences (key, data)` beside the conversations;
    the store (started first) lends its engine. An update holds a transaction-level advisory
    lock on its key, so two processes changing one record never lose a change."""

    def __init__(self, store: PostgresStore, *, table: str = TABLE) -> None:
        self._store = store
        self.table = table

    async def start(self) -> None:
        from sqlalchemy import text

        with outages_raised(is_postgres_outage, "PostgreSQL"):
            async with self._store.engine.begin() as conn:
                lock = text("SELECT pg_advisory_xact_lock(hashtext(:l))")
                await conn.execute(lock, {"l": f"mathbot:table:{self.table}"})
                await conn.execute(
                    text(
                        f"CREATE TABLE IF NOT EXISTS {self.table} "
                        "(key TEXT PRIMARY KEY, data TEXT NOT NULL)"
                    )
                )
        log.info("preferences: PostgreSQL, shared by every process")

    async def close(self) -> None:
        pass  # the engine is the store's

    async def read(self, keys: Sequence[str]) -> dict[str, Record]:
        from sqlalchemy import text

        if not keys:
            return {}
        sql = text(f"SELECT key, data FROM {self.table} WHERE key = ANY(:keys)")
        with outages_raised(is_postgres_outage, "PostgreSQL"):
            async with self._store.engine.connect() as conn:
                rows = (await conn.execute(sql, {"keys": list(keys)})).fetchall()
        return {key: record for key, data in rows if (record := decode(key, data)) is not None}

    async def update(self, key: str, change: Change) -> Record | None:
        from sqlalchemy import text

        with outages_raised(is_postgres_outage, "PostgreSQL"):
            async with self._store.engine.begin() as conn:
                lock = text("SELECT pg_advisory_xact_lock(hashtext(:k))")
                await conn.execute(lock, {"k": f"mathbot:preferences:{key}"})
                found = await conn.execute(
                    text(f"SELECT data FROM {self.table} WHERE key = :k"), {"k": key}
                )
                row = found.first()
                new = change(decode(key, row[0]) if row else None)
                if new is None:
                    await conn.execute(text(f"DELETE FROM {self.table} WHERE key = :k"), {"k": key})
                else:
                    await conn.execute(
                        text(
                            f"INSERT INTO {self.table} (key, data) VALUES (:k, :d) "
                            "ON CONFLICT (key) DO UPDATE SET data = excluded.data"
                        ),
                        {"k": key, "d": encode(new)},
                    )
        return new

    async def delete(self, key: str) -> None:
        from sqlalchemy import text

        with outages_raised(is_postgres_outage, "PostgreSQL"):
            async with self._store.engine.begin() as conn:
                await conn.execute(text(f"DELETE FROM {self.table} WHERE key = :k"), {"k": key})

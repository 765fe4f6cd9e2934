"""Usage ledger and rate limits in PostgreSQL, on the memory store's engine, for every shard."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import date
from typing import Any

from ..config.controls import RateLimit
from ..memory.outage import outages_raised
from ..memory.postgres import PostgresStore, is_postgres_outage
from .shared import cell_rate
from .usage import TABLE, TokenUsage, UsageReport

log = logging.getLogger(__name__)

RATE_TABLE = "mathbot_rate_limits"
_COLUMNS = ("input_tokens", "output_tokens", "total_tokens", "requests", "turns")
_SUMS = ", ".join(f"COALESCE(SUM({c}), 0)" for c in _COLUMNS)
_NOW = "extract(epoch FROM clock_timestamp())::float8"  # the server's clock: one for all shards


class PostgresUsageLedger:
    """`UsageLedger` as the table `mathbot_usage` (the SQLite ledger's columns) in the
    memory store's database; the store (started first) lends its engine."""

    def __init__(self, store: PostgresStore, *, table: str = TABLE) -> None:
        self._store = store
        self.table = table

    async def start(self) -> None:
        columns = ", ".join(f"{c} BIGINT NOT NULL DEFAULT 0" for c in _COLUMNS)
        await self._execute(
            f"CREATE TABLE IF NOT EXISTS {self.table} (session_id TEXT NOT NULL, "
            f"day DATE NOT NULL, {columns}, PRIMARY KEY (session_id, day))",
            f"CREATE INDEX IF NOT EXISTS {self.table}_day ON {self.table} (day)",
            lock="mathbot:usage-table",
        )
        log.info("usage: ledger in PostgreSQL, shared by every process")

    async def close(self) -> None:
        pass  # the engine is the store's

    async def record(self, key: str, usage: TokenUsage, *, day: date) -> None:
        names = ", ".join(_COLUMNS)
        values = ", ".join(f":{c}" for c in _COLUMNS)
        updates = ", ".join(f"{c} = {self.table}.{c} + excluded.{c}" for c in _COLUMNS)
        params = {c: getattr(usage, c) for c in _COLUMNS} | {"k": key, "d": day}
        await self._rows(
            f"INSERT INTO {self.table} (session_id, day, {names}) VALUES (:k, :d, {values}) "
            f"ON CONFLICT (session_id, day) DO UPDATE SET {updates}",
            params,
            fetch=False,
        )

    async def usage(self, key: str, *, day: date) -> UsageReport:
        [today] = await self._rows(
            f"SELECT {_SUMS} FROM {self.table} WHERE session_id = :k AND day = :d",
            {"k": key, "d": day},
        )
        [total] = await self._rows(
            f"SELECT {_SUMS} FROM {self.table} WHERE session_id = :k", {"k": key}
        )
        return UsageReport(TokenUsage(*today), TokenUsage(*total))

    async def day_total(self, day: date) -> int:
        [row] = await self._rows(
            f"SELECT COALESCE(SUM(total_tokens), 0) FROM {self.table} WHERE day = :d", {"d": day}
        )
        return int(row[0])

    async def top(self, day: date | None, limit: int = 10) -> list[tuple[str, TokenUsage]]:
        where = "WHERE day = :d" if day is not None else ""
        rows = await self._rows(
            f"SELECT session_id, {_SUMS} FROM {self.table} {where} GROUP BY session_id "
            f"ORDER BY COALESCE(SUM(total_tokens), 0) DESC, session_id LIMIT :n",
            {"d": day, "n": limit} if day is not None else {"n": limit},
        )
        return [(row[0], TokenUsage(*(int(v) for v in row[1:]))) for row in rows]

    async def _rows(
        self, sql: str, params: dict[str, Any], *, fetch: bool = True
    ) -> list[tuple[Any, ...]]:
        return await run_sql(self._store, sql, params, fetch=fetch)

    async def _execute(self, *statements: str, lock: str) -> None:
        await create_tables(self._store, statements, lock)


class PostgresRateLimiter:
    """`SharedRateLimiter` in the table `mathbot_rate_limits`: one row per user holding its
    theoretical arrival time, updated in one atomic statement by whichever process is asked."""

    def __init__(self, store: PostgresStore, rate: RateLimit, *, table: str = RATE_TABLE) -> None:
        self._store = store
        self.table = table
        self._interval, self._tolerance = cell_rate(rate)

    async def start(self) -> None:
        await create_tables(
            self._store,
            [
                f"CREATE TABLE IF NOT EXISTS {self.table} "
                "(user_id BIGINT PRIMARY KEY, tat DOUBLE PRECISION NOT NULL)"
            ],
            "mathbot:rate-table",
        )

    async def close(self) -> None:
        pass

    async def check(self, user_id: int) -> float | None:
        params = {"u": user_id, "t": self._interval, "tol": self._tolerance}
        allowed = await run_sql(
            self._store,
            f"INSERT INTO {self.table} AS r (user_id, tat) SELECT :u, {_NOW} + :t "
            f"ON CONFLICT (user_id) DO UPDATE SET tat = GREATEST(r.tat, excluded.tat - :t) + :t "
            f"WHERE GREATEST(r.tat, excluded.tat - :t) + :t - (excluded.tat - :t) <= :tol "
            "RETURNING tat",
            params,
        )
        if allowed:
            return None
        [row] = await run_sql(
            self._store,
            f"SELECT GREATEST(tat - {_NOW}, 0) + :t - :tol FROM {self.table} WHERE user_id = :u",
            params,
        )
        return max(float(row[0]), 0.001)


async def run_sql(
    store: PostgresStore, sql: str, params: dict[str, Any], *, fetch: bool = True
) -> list[tuple[Any, ...]]:
    """One statement in its own transaction on the store's engine; outages raise
    `StoreUnavailable`, as the memory's do."""
    from sqlalchemy import text

    with outages_raised(is_postgres_outage, "PostgreSQL"):
        async with store.engine.begin() as conn:
            result = await conn.execute(text(sql), params)
            return [tuple(row) for row in result.fetchall()] if fetch else []


async def create_tables(store: PostgresStore, statements: Sequence[str], lock: str) -> None:
    """Create tables once, serialized across processes (CREATE IF NOT EXISTS can race)."""
    from sqlalchemy import text

    with outages_raised(is_postgres_outage, "PostgreSQL"):
        async with store.engine.begin() as conn:
            await conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:l))"), {"l": lock})
            for statement in statements:
                await conn.execute(text(statement))

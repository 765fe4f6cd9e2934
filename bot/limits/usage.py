"""Token accounting: the usage ledger (per key and day) and the daily token budgets."""

from __future__ import annotations

import logging
import math
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol

from agents import Usage

from ..config.controls import Controls
from ..errors import UserFacingError
from ..memory.sqlite_rows import WAL_SYNCHRONOUS
from ..memory.sqlite_thread import SQLiteThread

log = logging.getLogger(__name__)

TABLE = "mathbot_usage"
_COLUMNS = ("input_tokens", "output_tokens", "total_tokens", "requests", "turns")
_SUMS = ", ".join(f"COALESCE(SUM({c}), 0)" for c in _COLUMNS)


@dataclass(frozen=True)
class TokenUsage:
    """Tokens and model requests spent, over `turns` questions."""

    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    requests: int = 0
    turns: int = 0

    @classmethod
    def from_sdk(cls, usage: Usage) -> TokenUsage:
        """One turn's usage from the run's `result.context_wrapper.usage` (or, for a failed
        run, `exc.run_data.context_wrapper.usage`)."""
        total = usage.total_tokens or usage.input_tokens + usage.output_tokens
        return cls(usage.input_tokens, usage.output_tokens, total, usage.requests, turns=1)

    def __add__(self, other: TokenUsage) -> TokenUsage:
        return TokenUsage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.total_tokens + other.total_tokens,
            self.requests + other.requests,
            self.turns + other.turns,
        )

    @property
    def empty(self) -> bool:
        return self.total_tokens == 0 and self.requests == 0


@dataclass(frozen=True)
class UsageReport:
    """One key's usage on one day and in total."""

    today: TokenUsage
    total: TokenUsage


class UsageLedger(Protocol):
    """Where token usage is kept, summed per key (a session or user id) and day. Days are
    the caller's (`Budget` picks them in BUDGET_TIMEZONE). Kept on /forget: it is the
    operator's accounting, not the conversation."""

    async def start(self) -> None: ...

    async def record(self, key: str, usage: TokenUsage, *, day: date) -> None: ...

    async def usage(self, key: str, *, day: date) -> UsageReport: ...

    async def day_total(self, day: date) -> int:
        """Total tokens of everyone on `day`."""
        ...

    async def top(self, day: date | None, limit: int = 10) -> list[tuple[str, TokenUsage]]:
        """The biggest users by total tokens on `day`, or of all time when `day` is None."""
        ...

    async def close(self) -> None: ...


class SQLiteUsageLedger:
    """The ledger as a table beside the conversations in the SESSION_DB SQLite file.

    One connection (WAL, `WAL_SYNCHRONOUS`, busy timeout), used off the event loop by one
    thread of its own: calls run one at a time, in order, and never queue behind other work
    in the event loop's default thread pool.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._db = SQLiteThread("usage", path, _create_ledger)

    async def start(self) -> None:
        if not self._db.is_open:
            await self._db.open()
            log.info("usage: ledger in SQLite at %s", self.path)

    async def close(self) -> None:
        await self._db.close()

    async def record(self, key: str, usage: TokenUsage, *, day: date) -> None:
        values = [getattr(usage, c) for c in _COLUMNS]
        updates = ", ".join(f"{c} = {c} + excluded.{c}" for c in _COLUMNS)
        sql = (
            f"INSERT INTO {TABLE} (session_id, day, {', '.join(_COLUMNS)}) "
            f"VALUES (?, ?, ?, ?, ?, ?, ?) "
            f"ON CONFLICT (session_id, day) DO UPDATE SET {updates}"
        )
        await self._db.run(lambda c: c.execute(sql, [key, day.isoformat(), *values]))

    async def usage(self, key: str, *, day: date) -> UsageReport:
        def read(c: sqlite3.Connection) -> UsageReport:
            today = c.execute(
                f"SELECT {_SUMS} FROM {TABLE} WHERE session_id = ? AND day = ?",
                (key, day.isoformat()),
            ).fetchone()
            total = c.execute(f"SELECT {_SUMS} FROM {TABLE} WHERE session_id = ?", (key,))
            return UsageReport(TokenUsage(*today), TokenUsage(*total.fetchone()))

        return await self._db.run(read)

    async def day_total(self, day: date) -> int:
        sql = f"SELECT COALESCE(SUM(total_tokens), 0) FROM {TABLE} WHERE day = ?"
        return await self._db.run(lambda c: int(c.execute(sql, (day.isoformat(),)).fetchone()[0]))

    async def top(self, day: date | None, limit: int = 10) -> list[tuple[str, TokenUsage]]:
        where, params = ("WHERE day = ?", [day.isoformat()]) if day else ("", [])
        sql = (
            f"SELECT session_id, {_SUMS} FROM {TABLE} {where} GROUP BY session_id "
            f"ORDER BY SUM(total_tokens) DESC, session_id LIMIT ?"
        )
        rows = await self._db.run(lambda c: c.execute(sql, [*params, limit]).fetchall())
        return [(row[0], TokenUsage(*row[1:])) for row in rows]


def _create_ledger(conn: sqlite3.Connection) -> None:
    conn.execute(WAL_SYNCHRONOUS)
    conn.execute(
        f"CREATE TABLE IF NOT EXISTS {TABLE} ("
        "session_id TEXT NOT NULL, day TEXT NOT NULL, "
        "input_tokens INTEGER NOT NULL DEFAULT 0, "
        "output_tokens INTEGER NOT NULL DEFAULT 0, "
        "total_tokens INTEGER NOT NULL DEFAULT 0, "
        "requests INTEGER NOT NULL DEFAULT 0, "
        "turns INTEGER NOT NULL DEFAULT 0, "
        "PRIMARY KEY (session_id, day))"
    )
    conn.execute(f"CREATE INDEX IF NOT EXISTS {TABLE}_day ON {TABLE} (day)")


def budget_key(user_id: int) -> str:
    """A user's key in the ledger: budgets count per user, whatever the conversation scope.
    (The same text as the user's conversation id, so ledgers written before carry over.)"""
    return f"discord:user:{user_id}"


def utc_now() -> datetime:
    return datetime.now(UTC)


class Budget:
    """The daily token budgets (per key, and for everyone) over a ledger. A day runs from
    midnight to midnight in BUDGET_TIMEZONE; `now` returns aware datetimes (injectable).

    Budgets are checked before a turn and charged after it, so the turn that crosses a
    budget finishes; the next one is refused. Admins are never refused, but are counted.
    """

    def __init__(
        self,
        ledger: UsageLedger,
        controls: Controls,
        *,
        now: Callable[[], datetime] = utc_now,
    ) -> None:
        self.ledger = ledger
        self.controls = controls
        self._now = now

    def today(self) -> date:
        return self._local_now().date()

    def resets_in(self) -> timedelta:
        """Time left until the next midnight in BUDGET_TIMEZONE."""
        now = self._local_now()
        tz = self.controls.budget_timezone
        midnight = datetime.combine(now.date() + timedelta(days=1), time(0), tzinfo=tz)
        return midnight.astimezone(UTC) - now.astimezone(UTC)

    async def check(self, key: str, *, admin: bool = False) -> None:
        """Raise `UserFacingError` when `key`'s or everyone's budget for today is spent."""
        if admin:
            return
        user_limit = self.controls.user_daily_tokens
        global_limit = self.controls.global_daily_tokens
        if user_limit is None and global_limit is None:
            return
        day = self.today()
        if user_limit is not None:
            used = (await self.ledger.usage(key, day=day)).today.total_tokens
            if used >= user_limit:
                log.info("budget: %s used %d of %d tokens today", key, used, user_limit)
                raise UserFacingError(
                    f"You've used today's token budget ({user_limit:,} tokens). "
                    f"{self._reset_sentence()}"
                )
        if global_limit is not None:
            used = await self.ledger.day_total(day)
            if used >= global_limit:
                log.warning("budget: the global %d tokens for today are spent", global_limit)
                raise UserFacingError(
                    f"I've used up today's token budget for everyone ({global_limit:,} tokens). "
                    f"{self._reset_sentence()}"
                )

    async def record(self, key: str, usage: TokenUsage | Usage) -> TokenUsage:
        """Charge one turn's usage to `key` today; a turn that spent nothing is not counted."""
        spent = usage if isinstance(usage, TokenUsage) else TokenUsage.from_sdk(usage)
        if not spent.empty:
            await self.ledger.record(key, spent, day=self.today())
        return spent

    async def report(self, key: str) -> UsageReport:
        return await self.ledger.usage(key, day=self.today())

    async def top(self, *, today: bool = True, limit: int = 10) -> list[tuple[str, TokenUsage]]:
        return await self.ledger.top(self.today() if today else None, limit)

    def describe(self, report: UsageReport, *, admin: bool = False) -> str:
        """The /usage reply: today (with what is left of the budget) and in total."""
        today, total = report.today, report.total
        line = f"Today: {today.total_tokens:,} tokens over {_questions(today.turns)}."
        limit = self.controls.user_daily_tokens
        if limit is not None and not admin:
            left = max(0, limit - today.total_tokens)
            line += f" {left:,} of your {limit:,} daily tokens left (resets {self._reset_when()})."
        return f"{line}\nIn total: {total.total_tokens:,} tokens over {_questions(total.turns)}."

    def _local_now(self) -> datetime:
        now = self._now()
        if now.tzinfo is None or now.utcoffset() is None:
            raise ValueError("Budget's clock must return timezone-aware datetimes")
        return now.astimezone(self.controls.budget_timezone)

    def _reset_sentence(self) -> str:
        return f"It resets {self._reset_when()}."

    def _reset_when(self) -> str:
        zone = self.controls.budget_timezone_name
        return f"at 00:00 {zone}, in {format_duration(self.resets_in())}"


def describe_top(rows: list[tuple[str, TokenUsage]], *, title: str) -> str:
    """The admins' top-users list as plain text, one line per key."""
    if not rows:
        return f"{title}: no usage yet."
    lines = [
        f"{i}. {key}: {u.total_tokens:,} tokens over {_questions(u.turns)}"
        for i, (key, u) in enumerate(rows, 1)
    ]
    return f"{title}:\n" + "\n".join(lines)


def format_duration(delta: timedelta) -> str:
    """`3 h 12 min`, `45 min`, `2 h`: rounded up to the minute, never `0 min`."""
    minutes = max(1, math.ceil(delta.total_seconds() / 60))
    hours, minutes = divmod(minutes, 60)
    if not hours:
        return f"{minutes} min"
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def _questions(turns: int) -> str:
    return f"{turns:,} question" + ("" if turns == 1 else "s")

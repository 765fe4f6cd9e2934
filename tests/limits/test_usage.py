"""The usage ledger (SQLite, beside the memory) and the daily token budgets (fake clock)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from agents import Usage

from bot.config.controls import Controls
from bot.errors import UserFacingError
from bot.limits.usage import (
    Budget,
    SQLiteUsageLedger,
    TokenUsage,
    UsageReport,
    describe_top,
    format_duration,
)
from bot.memory.sqlite import SQLiteStore

DAY1, DAY2 = date(2025, 3, 10), date(2025, 3, 11)


class FakeNow:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


def tokens(total: int, *, requests: int = 1) -> TokenUsage:
    return TokenUsage(total - total // 4, total // 4, total, requests, turns=1)


@pytest.fixture
async def ledger(db_path: str) -> AsyncIterator[SQLiteUsageLedger]:
    ledger = SQLiteUsageLedger(db_path)
    await ledger.start()
    yield ledger
    await ledger.close()


# --------------------------------------------------------------------------- token usage


def test_token_usage_from_the_sdk() -> None:
    sdk = Usage(requests=2, input_tokens=100, output_tokens=30, total_tokens=130)
    assert TokenUsage.from_sdk(sdk) == TokenUsage(100, 30, 130, 2, turns=1)
    no_total = Usage(requests=1, input_tokens=7, output_tokens=3, total_tokens=0)
    assert TokenUsage.from_sdk(no_total).total_tokens == 10
    assert tokens(100) + tokens(40) == TokenUsage(105, 35, 140, 2, 2)
    assert TokenUsage().empty and not tokens(1).empty


# --------------------------------------------------------------------------- ledger


async def test_record_and_report_today_and_total(ledger: SQLiteUsageLedger) -> None:
    await ledger.record("alice", tokens(100), day=DAY1)
    await ledger.record("alice", tokens(40), day=DAY1)
    await ledger.record("alice", tokens(8), day=DAY2)
    await ledger.record("bob", tokens(1000), day=DAY2)

    on_day1 = await ledger.usage("alice", day=DAY1)
    assert on_day1.today == tokens(100) + tokens(40)
    assert on_day1.total == tokens(100) + tokens(40) + tokens(8)
    on_day2 = await ledger.usage("alice", day=DAY2)
    assert on_day2 == UsageReport(today=tokens(8), total=on_day1.total)
    assert await ledger.usage("nobody", day=DAY2) == UsageReport(TokenUsage(), TokenUsage())

    assert await ledger.day_total(DAY1) == 140
    assert await ledger.day_total(DAY2) == 1008
    assert await ledger.day_total(date(2030, 1, 1)) == 0


async def test_top_users(ledger: SQLiteUsageLedger) -> None:
    await ledger.record("alice", tokens(100), day=DAY1)
    await ledger.record("bob", tokens(300), day=DAY1)
    await ledger.record("carol", tokens(50), day=DAY1)
    await ledger.record("alice", tokens(500), day=DAY2)
    await ledger.record("carol", tokens(10), day=DAY2)

    assert [(k, u.total_tokens) for k, u in await ledger.top(DAY1)] == [
        ("bob", 300),
        ("alice", 100),
        ("carol", 50),
    ]
    assert [(k, u.total_tokens) for k, u in await ledger.top(None, limit=2)] == [
        ("alice", 600),
        ("bob", 300),
    ]
    everyone = dict(await ledger.top(None))
    assert everyone["carol"] == tokens(50) + tokens(10)
    assert await ledger.top(date(2030, 1, 1)) == []


async def test_usage_survives_reopening_the_file(db_path: str) -> None:
    first = SQLiteUsageLedger(db_path)
    await first.start()
    await first.record("alice", tokens(123), day=DAY1)
    await first.close()

    second = SQLiteUsageLedger(db_path)
    await second.start()
    try:
        assert (await second.usage("alice", day=DAY2)).total == tokens(123)
        await second.record("alice", tokens(7), day=DAY1)
        assert (await second.usage("alice", day=DAY1)).today == tokens(123) + tokens(7)
    finally:
        await second.close()


async def test_lives_beside_the_memory_tables_in_wal_mode(db_path: str) -> None:
    await SQLiteStore(db_path).start()
    ledger = SQLiteUsageLedger(db_path)
    await ledger.start()
    await ledger.record("alice", tokens(10), day=DAY1)
    await ledger.close()
    with sqlite3.connect(db_path) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    assert {"agent_sessions", "agent_messages", "mathbot_usage"} <= tables
    assert mode == "wal"


async def test_concurrent_records_all_count(ledger: SQLiteUsageLedger) -> None:
    await asyncio.gather(*(ledger.record("alice", tokens(10), day=DAY1) for _ in range(50)))
    report = await ledger.usage("alice", day=DAY1)
    assert (report.today.total_tokens, report.today.turns) == (500, 50)


async def test_unstarted_or_closed_ledger_says_so(db_path: str) -> None:
    ledger = SQLiteUsageLedger(db_path)
    with pytest.raises(RuntimeError, match="start"):
        await ledger.day_total(DAY1)
    await ledger.start()
    await ledger.close()
    await ledger.close()  # idempotent
    with pytest.raises(RuntimeError):
        await ledger.record("x", tokens(1), day=DAY1)


# --------------------------------------------------------------------------- budgets


async def test_user_budget_refuses_once_spent_and_allows_the_next_day(
    ledger: SQLiteUsageLedger,
) -> None:
    now = FakeNow(datetime(2025, 3, 10, 20, 48, tzinfo=UTC))
    budget = Budget(ledger, Controls(user_daily_tokens=20_000), now=now)
    await budget.check("alice", admin=False)
    await budget.record("alice", tokens(15_000))
    await budget.check("alice", admin=False)  # under budget: the next turn may cross it
    await budget.record("alice", tokens(6_000))

    with pytest.raises(UserFacingError) as caught:
        await budget.check("alice", admin=False)
    assert str(caught.value) == (
        "You've used today's token budget (20,000 tokens). It resets at 00:00 UTC, in 3 h 12 min."
    )
    await budget.check("bob", admin=False)  # per user
    await budget.check("alice", admin=True)  # admins are never refused

    now.advance(timedelta(hours=3, minutes=11, seconds=59))
    with pytest.raises(UserFacingError, match="in 1 min"):
        await budget.check("alice", admin=False)
    now.advance(timedelta(seconds=1))  # midnight UTC: a new day
    await budget.check("alice", admin=False)
    report = await budget.report("alice")
    assert report.today == TokenUsage()
    assert report.total.total_tokens == 21_000


async def test_global_budget(ledger: SQLiteUsageLedger) -> None:
    now = FakeNow(datetime(2025, 3, 10, 12, 0, tzinfo=UTC))
    controls = Controls(user_daily_tokens=10_000, global_daily_tokens=1_500)
    budget = Budget(ledger, controls, now=now)
    await budget.record("alice", tokens(1_000))
    await budget.check("carol", admin=False)
    await budget.record("bob", tokens(600))

    with pytest.raises(UserFacingError) as caught:
        await budget.check("carol", admin=False)
    assert str(caught.value) == (
        "I've used up today's token budget for everyone (1,500 tokens). "
        "It resets at 00:00 UTC, in 12 h."
    )
    await budget.check("carol", admin=True)
    now.advance(timedelta(hours=12))
    await budget.check("carol", admin=False)


async def test_day_follows_the_budget_timezone(ledger: SQLiteUsageLedger) -> None:
    berlin = ZoneInfo("Europe/Berlin")  # UTC+1 in March before the switch
    now = FakeNow(datetime(2025, 3, 10, 22, 30, tzinfo=UTC))  # 23:30 in Berlin
    budget = Budget(ledger, Controls(user_daily_tokens=100, budget_timezone=berlin), now=now)
    assert budget.today() == date(2025, 3, 10)
    await budget.record("alice", tokens(100))
    with pytest.raises(UserFacingError) as caught:
        await budget.check("alice", admin=False)
    assert str(caught.value).endswith("It resets at 00:00 Europe/Berlin, in 30 min.")

    now.advance(timedelta(minutes=30))  # 23:00 UTC is midnight in Berlin
    assert budget.today() == date(2025, 3, 11)
    await budget.check("alice", admin=False)


def test_resets_in_counts_real_time_across_a_dst_change() -> None:
    new_york = ZoneInfo("America/New_York")  # 2025-03-09 has 23 hours there
    now = FakeNow(datetime(2025, 3, 9, 0, 0, tzinfo=new_york))
    budget = Budget(SQLiteUsageLedger(":memory:"), Controls(budget_timezone=new_york), now=now)
    assert budget.resets_in() == timedelta(hours=23)


async def test_no_budget_checks_nothing(db_path: str) -> None:
    never_started = SQLiteUsageLedger(db_path)  # would raise if it were asked
    budget = Budget(never_started, Controls())
    await budget.check("alice", admin=False)


async def test_record_takes_sdk_usage_and_skips_empty_turns(ledger: SQLiteUsageLedger) -> None:
    now = FakeNow(datetime(2025, 3, 10, 12, 0, tzinfo=UTC))
    budget = Budget(ledger, Controls(), now=now)
    spent = await budget.record(
        "alice", Usage(requests=1, input_tokens=20, output_tokens=5, total_tokens=25)
    )
    assert spent == TokenUsage(20, 5, 25, 1, 1)
    await budget.record("alice", Usage())  # a turn that never reached the model
    assert (await budget.report("alice")).today == spent
    assert await budget.top() == [("alice", spent)]
    assert await budget.top(today=False) == [("alice", spent)]


def test_naive_clock_is_refused() -> None:
    budget = Budget(SQLiteUsageLedger(":memory:"), Controls(), now=lambda: datetime(2025, 1, 1))
    with pytest.raises(ValueError, match="aware"):
        budget.today()


def test_describe_usage() -> None:
    now = FakeNow(datetime(2025, 3, 10, 22, 0, tzinfo=UTC))
    budget = Budget(SQLiteUsageLedger(":memory:"), Controls(user_daily_tokens=20_000), now=now)
    report = UsageReport(today=tokens(1_234) + tokens(100), total=tokens(45_678))
    assert budget.describe(report) == (
        "Today: 1,334 tokens over 2 questions. 18,666 of your 20,000 daily tokens left "
        "(resets at 00:00 UTC, in 2 h).\n"
        "In total: 45,678 tokens over 1 question."
    )
    assert budget.describe(report, admin=True) == (
        "Today: 1,334 tokens over 2 questions.\nIn total: 45,678 tokens over 1 question."
    )
    assert describe_top([], title="Top users today") == "Top users today: no usage yet."
    assert describe_top([("discord:user:1", tokens(5))], title="Top") == (
        "Top:\n1. discord:user:1: 5 tokens over 1 question"
    )


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(seconds=1), "1 min"),
        (timedelta(minutes=45), "45 min"),
        (timedelta(minutes=44, seconds=1), "45 min"),
        (timedelta(hours=2), "2 h"),
        (timedelta(hours=3, minutes=12), "3 h 12 min"),
        (timedelta(hours=23, minutes=59, seconds=30), "24 h"),
    ],
)
def test_format_duration(delta: timedelta, text: str) -> None:
    assert format_duration(delta) == text

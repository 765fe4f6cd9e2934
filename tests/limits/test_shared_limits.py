"""Budgets and rate limits shared by every process when memory is in PostgreSQL or Redis:
two bot instances (each with its own engine or client) see the same counts, and a restart
keeps them. Uses the servers of tests/memory/backends.py (skipped when unreachable)."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path

import pytest
from agents import Usage
from agents.testing import ModelStep, ScriptedModel, assistant_message

from bot.app import build
from bot.config.controls import Controls, RateLimit
from bot.config.settings import Settings
from bot.core.assistant import Assistant
from bot.errors import UserFacingError
from bot.limits.access import Requester
from bot.limits.postgres import PostgresRateLimiter, PostgresUsageLedger, run_sql
from bot.limits.redis import RedisRateLimiter, RedisUsageLedger
from bot.limits.usage import SQLiteUsageLedger, TokenUsage, UsageLedger
from bot.memory.postgres import PostgresStore
from bot.memory.redis import RedisStore
from bot.tools.calculator.calculator import Calculator
from bot.tools.plotting.plotter import Plotter
from tests.memory.backends import POSTGRES_URL, REDIS_URL, need

URLS = {"postgres": POSTGRES_URL, "redis": REDIS_URL}


def answers(count: int) -> ScriptedModel:
    """`count` answers of 15 tokens each (10 in, 5 out)."""
    usage = Usage(requests=1, input_tokens=10, output_tokens=5, total_tokens=15)
    return ScriptedModel(
        [ModelStep(output=[assistant_message("ok")], usage=usage) for _ in range(count)]
    )


class Shards:
    """Bot instances ("processes") on one shared SESSION_DB, each with its own engine."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.running: list[Assistant] = []

    async def start(self, model: ScriptedModel) -> Assistant:
        assistant = build(self.settings, model=model, calculator=Calculator(), plotter=Plotter())
        await assistant.start()
        self.running.append(assistant)
        return assistant

    async def stop(self, assistant: Assistant) -> None:
        self.running.remove(assistant)
        await assistant.close()


@pytest.fixture(params=["postgres", "redis"])
async def shards(
    request: pytest.FixtureRequest,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> AsyncIterator[Shards]:
    need(request.param)
    monkeypatch.chdir(tmp_path)  # a local usage file, if one were made, lands here
    shards = Shards(dataclasses.replace(settings, session_db=URLS[request.param]))
    try:
        yield shards
    finally:
        for assistant in list(shards.running):
            await shards.stop(assistant)


def someone() -> tuple[Requester, str]:
    """A user no other test (or run) uses, in a DM, and a conversation of theirs."""
    user_id = 10**17 + uuid.uuid4().int % 10**17
    return Requester(user_id=user_id), f"test:shared-limits:{uuid.uuid4().hex}"


async def test_a_daily_budget_is_counted_across_processes_and_restarts(shards: Shards) -> None:
    shards.settings = dataclasses.replace(
        shards.settings, controls=Controls(user_daily_tokens=20, user_rate=None)
    )
    first, second = await shards.start(answers(2)), await shards.start(answers(2))
    on_server = (PostgresUsageLedger, RedisUsageLedger)
    assert any(isinstance(s, on_server) for s in first.services)  # not a local file
    who, session = someone()
    assert (await first.ask(session, "one", who)).text == "ok"  # 15 of 20 used
    assert (await second.ask(session, "two", who)).text == "ok"  # 15 < 20: allowed; now 30
    with pytest.raises(UserFacingError, match="budget"):
        await first.ask(session, "three", who)
    assert "Today: 30 tokens over 2 questions" in await first.usage(who)
    await shards.stop(first)
    await shards.stop(second)
    restarted = await shards.start(answers(0))
    with pytest.raises(UserFacingError, match="budget"):
        await restarted.ask(session, "four", who)
    await restarted.forget(session)


async def test_a_rate_limit_is_counted_across_processes_and_restarts(shards: Shards) -> None:
    rate = RateLimit(count=2, period=3600, burst=2)
    shards.settings = dataclasses.replace(shards.settings, controls=Controls(user_rate=rate))
    first, second = await shards.start(answers(1)), await shards.start(answers(2))
    who, session = someone()
    other, elsewhere = someone()
    await first.ask(session, "one", who)
    await second.ask(session, "two", who)
    with pytest.raises(UserFacingError, match="too quickly") as refused:
        await first.ask(session, "three", who)
    assert "try again in 30 minutes" in refused.value.message  # one message per 1,800 s
    await shards.stop(first)
    restarted = await shards.start(answers(1))
    with pytest.raises(UserFacingError, match="too quickly"):
        await restarted.ask(session, "four", who)
    assert (await second.ask(elsewhere, "another user is not limited", other)).text == "ok"
    await restarted.forget(session)
    await restarted.forget(elsewhere)


async def test_sqlite_memory_keeps_usage_in_sqlite_and_rates_in_process(
    settings: Settings,
) -> None:
    assistant = build(settings, model=answers(0), calculator=Calculator(), plotter=Plotter())
    parts = [getattr(s, "service", s) for s in assistant.services]  # a FileStart's inner part
    assert any(isinstance(s, SQLiteUsageLedger) for s in parts)
    shared = (PostgresUsageLedger, RedisUsageLedger, PostgresRateLimiter, RedisRateLimiter)
    assert not [s for s in parts if isinstance(s, shared)]


@pytest.fixture(params=["postgres", "redis"])
async def two_ledgers(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[UsageLedger, UsageLedger]]:
    """Two ledgers on their own engines, on a table or key prefix of this test's own."""
    need(request.param)
    name = f"mathbot_usage_test_{uuid.uuid4().hex[:12]}"
    stores: list[PostgresStore | RedisStore] = []
    ledgers: list[UsageLedger] = []
    for _ in range(2):
        if request.param == "postgres":
            pg = PostgresStore(POSTGRES_URL)
            await pg.start()
            stores.append(pg)
            ledgers.append(PostgresUsageLedger(pg, table=name))
        else:
            rs = RedisStore(REDIS_URL)
            await rs.start()
            stores.append(rs)
            ledgers.append(RedisUsageLedger(rs, prefix=name))
    for ledger in ledgers:
        await ledger.start()
    try:
        yield ledgers[0], ledgers[1]
    finally:
        store = stores[0]
        if isinstance(store, PostgresStore):
            await run_sql(store, f"DROP TABLE IF EXISTS {name}", {}, fetch=False)
        else:
            keys = [k async for k in store.client.scan_iter(match=f"{name}:*")]
            if keys:
                await store.client.delete(*keys)
        for store in stores:
            await store.close()


async def test_the_ledgers_agree_across_engines(
    two_ledgers: tuple[UsageLedger, UsageLedger],
) -> None:
    writer, reader = two_ledgers
    day, other_day = date(2026, 12, 6), date(2026, 12, 7)
    spent = TokenUsage(10, 5, 15, 1, 1)
    await writer.record("discord:user:1", spent, day=day)
    await writer.record("discord:user:1", spent, day=other_day)
    await writer.record("discord:user:1", spent, day=date(2026, 12, 8))
    await writer.record("discord:user:2", spent + spent, day=day)
    report = await reader.usage("discord:user:1", day=day)
    assert report.today == spent and report.total == spent + spent + spent
    assert await reader.day_total(day) == 45
    top_today = await reader.top(day)
    assert top_today == [("discord:user:2", spent + spent), ("discord:user:1", spent)]
    top_ever = await reader.top(None, 1)
    assert top_ever == [("discord:user:1", spent + spent + spent)]

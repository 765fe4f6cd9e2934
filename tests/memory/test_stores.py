"""The memory stores against real servers: SQLite, PostgreSQL and Redis (see `backends`)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from agents.testing import ModelStep, ScriptedModel, assistant_message

from bot.config.settings import ConfigError, Settings
from bot.core.failures import GENERIC
from bot.errors import UserFacingError
from bot.memory.outage import StoreUnavailable, TurnLockTimeout
from bot.memory.postgres import PostgresStore, turn_lock_key
from bot.memory.redis import RedisStore
from bot.memory.sqlite import SQLiteStore
from bot.memory.store import SessionStore
from bot.memory.stores import open_store
from tests.memory.backends import (
    POSTGRES_URL,
    Backend,
    PostgresBackend,
    RedisBackend,
    asyncpg_dsn,
    closed_port,
    in_background,
    need_packages,
    sid,
    started,
    user_texts,
)

# --------------------------------------------------------------------------- choosing


@pytest.mark.parametrize(
    ("session_db", "kind"),
    [
        ("maths_db.db", SQLiteStore),
        ("/var/lib/mathbot/memory.db", SQLiteStore),
        (":memory:", SQLiteStore),
        ("postgresql+asyncpg://bot:pw@db.example:5432/mathbot", PostgresStore),
        ("postgresql://bot@db.example/mathbot", PostgresStore),
        ("postgres://bot@db.example/mathbot", PostgresStore),
        ("redis://127.0.0.1:6379/0", RedisStore),
        ("rediss://:pw@cache.example:6380/1", RedisStore),
    ],
)
def test_open_store_picks_the_store(session_db: str, kind: type) -> None:
    if kind is PostgresStore:
        need_packages("postgres", "asyncpg", "sqlalchemy")
    if kind is RedisStore:
        need_packages("redis", "redis")
    store = open_store(session_db)
    assert type(store) is kind
    if isinstance(store, PostgresStore):
        assert store.url.startswith("postgresql+asyncpg://")
        assert store.url.split("://")[1] == session_db.split("://")[1]


def test_open_store_rejects_other_urls_without_echoing_them() -> None:
    with pytest.raises(ConfigError, match=r"mysql://") as err:
        open_store("mysql://bot:hunter2@db.example/mathbot")
    assert "hunter2" not in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("session_db", "modules", "extra"),
    [
        ("postgresql+asyncpg://db.example/mathbot", ("asyncpg",), "postgres"),
        ("redis://cache.example", ("redis", "redis.asyncio"), "redis"),
    ],
)
def test_missing_packages_name_the_extra(
    monkeypatch: pytest.MonkeyPatch, session_db: str, modules: tuple[str, ...], extra: str
) -> None:
    for module in modules:  # as if the package were not installed
        monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(ValueError) as err:
        open_store(session_db)
    assert f'pip install "mathbot[{extra}]"' in str(err.value)
    assert "\n" not in str(err.value)


def test_lock_key_is_stable_across_processes() -> None:
    key = turn_lock_key("discord:user:42")
    assert key == 8822633321625196737  # pinned: every deployed process must agree
    assert -(2**63) <= turn_lock_key("discord:channel:7") < 2**63
    assert turn_lock_key("discord:user:43") != key
    code = "from bot.memory.postgres import turn_lock_key; print(turn_lock_key('discord:user:42'))"
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONHASHSEED": "12345"},  # another str-hash salt than ours
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        check=True,
    )
    assert int(out.stdout) == key


# --------------------------------------------------------------------------- every engine


async def test_remembers_the_conversation(settings: Settings, backend: Backend) -> None:
    model = ScriptedModel([[assistant_message("4")], [assistant_message("8")]])
    assistant = await started(settings, model, backend.new_store())
    session = sid()
    assert (await assistant.ask(session, "what is 2+2?")).text == "4"
    assert (await assistant.ask(session, "multiply that by 2")).text == "8"
    second = model.calls[1].input
    assert user_texts(second) == ["what is 2+2?", "multiply that by 2"]
    assert any(i.get("role") == "assistant" for i in second)
    await assistant.close()
    assert await backend.rows(session) == 4
    assert not await backend.lock_held(session)


async def test_failed_turn_stores_nothing(settings: Settings, backend: Backend) -> None:
    model = ScriptedModel(
        [
            RuntimeError("boom"),
            [assistant_message("4")],
            RuntimeError("boom again"),
            [assistant_message("8")],
        ]
    )
    assistant = await started(settings, model, backend.new_store())
    session = sid()
    with pytest.raises(UserFacingError) as err:
        await assistant.ask(session, "this one fails")
    assert str(err.value) == GENERIC
    assert await backend.traces(session) == []
    await assistant.ask(session, "what is 2+2?")
    with pytest.raises(UserFacingError):
        await assistant.ask(session, "this one fails too")
    assert await backend.rows(session) == 2
    assert not await backend.lock_held(session)
    await assistant.ask(session, "multiply that by 2")
    assert user_texts(model.calls[3].input) == ["what is 2+2?", "multiply that by 2"]
    await assistant.close()


async def test_forget_removes_the_session_from_the_engine(
    settings: Settings, backend: Backend
) -> None:
    model = ScriptedModel([[assistant_message("4")], [assistant_message("kept")]])
    assistant = await started(settings, model, backend.new_store())
    gone, kept = sid(), sid()
    await assistant.ask(gone, "what is 2+2?")
    await assistant.ask(kept, "keep me")
    assert await backend.traces(gone) != []
    await assistant.forget(gone)
    assert await backend.traces(gone) == []
    assert await backend.rows(kept) == 2
    assert not await backend.lock_held(gone)
    await assistant.close()


# --------------------------------------------------------------------------- shared engines


async def test_turns_are_ordered_across_processes(settings: Settings, shared: Backend) -> None:
    session = sid()
    gate, reached = asyncio.Event(), asyncio.Event()

    async def held_open(call: Any) -> list[Any]:
        reached.set()
        await gate.wait()
        return [assistant_message("4")]

    one_model = ScriptedModel([ModelStep.respond(held_open)])
    two_model = ScriptedModel([[assistant_message("8")]])
    one = await started(settings, one_model, shared.new_store())
    two = await started(settings, two_model, shared.new_store())  # its own engine/client

    first = in_background(one.ask(session, "what is 2+2?"))
    await asyncio.wait_for(reached.wait(), 5)
    assert await shared.lock_held(session)
    second = in_background(two.ask(session, "multiply that by 2"))
    await asyncio.sleep(0.4)  # ample time to overtake, were the lock not shared
    assert two_model.calls == ()
    assert not second.done()
    gate.set()
    assert (await asyncio.wait_for(first, 5)).text == "4"
    assert (await asyncio.wait_for(second, 5)).text == "8"
    assert user_texts(two_model.calls[0].input) == ["what is 2+2?", "multiply that by 2"]
    assert await shared.rows(session) == 4
    assert not await shared.lock_held(session)
    await one.close()
    await two.close()


async def test_forget_waits_for_another_process_turn(settings: Settings, shared: Backend) -> None:
    session = sid()
    gate, reached = asyncio.Event(), asyncio.Event()

    async def held_open(call: Any) -> list[Any]:
        reached.set()
        await gate.wait()
        return [assistant_message("4")]

    one = await started(settings, ScriptedModel([ModelStep.respond(held_open)]), shared.new_store())
    two = await started(settings, ScriptedModel(), shared.new_store())
    turn = in_background(one.ask(session, "what is 2+2?"))
    await asyncio.wait_for(reached.wait(), 5)
    forget = asyncio.create_task(two.forget(session))
    await asyncio.sleep(0.3)
    assert not forget.done()
    gate.set()
    await asyncio.wait_for(turn, 5)
    await asyncio.wait_for(forget, 5)
    assert await shared.traces(session) == []  # the turn landed whole, then was forgotten
    await one.close()
    await two.close()


async def test_a_dead_lock_holder_frees_the_session(settings: Settings, shared: Backend) -> None:
    """A process killed mid-turn: its connection drops (PostgreSQL) or its lock expires
    (Redis); the session is not blocked for good."""
    session = sid()
    model = ScriptedModel([[assistant_message("4")]])
    assistant = await started(settings, model, shared.new_store())
    if isinstance(shared, PostgresBackend):
        import asyncpg

        holder = await asyncpg.connect(asyncpg_dsn(POSTGRES_URL))
        await holder.execute("SELECT pg_advisory_lock($1)", turn_lock_key(session))
        turn = in_background(assistant.ask(session, "what is 2+2?"))
        await asyncio.sleep(0.3)
        assert model.calls == ()
        holder.terminate()  # the process dies: no unlock, just a closed connection
    else:
        assert isinstance(shared, RedisBackend)
        await shared.client.set(f"{shared.lock_prefix}:{session}", "dead-process", px=600)
        turn = in_background(assistant.ask(session, "what is 2+2?"))
        await asyncio.sleep(0.3)
        assert model.calls == ()
    assert (await asyncio.wait_for(turn, 5)).text == "4"
    await assistant.close()


async def test_lock_wait_is_bounded(settings: Settings, shared: Backend) -> None:
    session = sid()
    store = shared.new_store(lock_wait=0.3)
    await store.start()
    other = shared.new_store()
    await other.start()
    async with other.turn_lock(session):
        with pytest.raises(TurnLockTimeout):
            async with store.turn_lock(session):
                pytest.fail("entered a lock another process holds")
    async with store.turn_lock(session):  # free again, and the failed wait left nothing
        pass
    assert not await shared.lock_held(session)
    await store.close()
    await other.close()


async def test_cancelled_turns_free_the_session(settings: Settings, shared: Backend) -> None:
    """A turn cancelled while it waits for the lock, or while it holds it, leaves neither a
    lock nor a row behind."""
    session = sid()
    reached = asyncio.Event()

    async def never_answers(call: Any) -> list[Any]:
        reached.set()
        await asyncio.Event().wait()
        return []

    hangs = ScriptedModel([ModelStep.respond(never_answers)])
    one = await started(settings, hangs, shared.new_store())
    model = ScriptedModel([[assistant_message("4")]])
    two = await started(settings, model, shared.new_store())
    holding = in_background(one.ask(session, "first"))
    await asyncio.wait_for(reached.wait(), 5)
    waiting = in_background(two.ask(session, "second"))
    await asyncio.sleep(0.2)
    waiting.cancel()
    holding.cancel()
    for task in (waiting, holding):
        with pytest.raises(asyncio.CancelledError):
            await task
    assert not await shared.lock_held(session)
    assert await shared.traces(session) == []
    assert (await asyncio.wait_for(two.ask(session, "what is 2+2?"), 5)).text == "4"
    assert user_texts(model.calls[0].input) == ["what is 2+2?"]
    await one.close()
    await two.close()


async def test_redis_lock_is_renewed_during_a_long_turn(redis_backend: RedisBackend) -> None:
    session = sid()
    store = redis_backend.new_store(lock_timeout=0.3)  # expires unless renewed every 0.1 s
    await store.start()
    other = redis_backend.new_store()
    await other.start()
    entered = asyncio.Event()

    async def second() -> None:
        async with other.turn_lock(session):
            entered.set()

    async with store.turn_lock(session):
        waiting = asyncio.create_task(second())
        await asyncio.sleep(0.9)  # three expiries' worth
        assert not entered.is_set()
    await asyncio.wait_for(waiting, 5)
    await store.close()
    await other.close()


async def test_recovers_when_the_server_drops_its_connections(
    settings: Settings, shared: PostgresBackend | RedisBackend
) -> None:
    """What a server restart does to the pooled connections: the next turn reconnects."""
    session = sid()
    model = ScriptedModel([[assistant_message("4")], [assistant_message("8")]])
    assistant = await started(settings, model, shared.new_store())
    await assistant.ask(session, "what is 2+2?")
    assert await shared.drop_store_connections() >= 1
    assert (await assistant.ask(session, "multiply that by 2")).text == "8"
    assert user_texts(model.calls[1].input) == ["what is 2+2?", "multiply that by 2"]
    await assistant.close()


@pytest.mark.parametrize("kind", ["postgres", "redis"])
async def test_an_unreachable_server_is_store_unavailable(kind: str) -> None:
    if kind == "postgres":
        need_packages("postgres", "asyncpg", "sqlalchemy")
    else:
        need_packages("redis", "redis")
    port = closed_port()
    if kind == "postgres":
        store: SessionStore = open_store(f"postgresql+asyncpg://bot:hunter2@127.0.0.1:{port}/x")
    else:
        store = open_store(f"redis://:hunter2@127.0.0.1:{port}/0")
    with pytest.raises(StoreUnavailable) as err:
        await store.start()
    assert "hunter2" not in str(err.value)
    await store.close()

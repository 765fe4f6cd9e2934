"""The memory stores against real servers: SQLite, PostgreSQL and Redis.

PostgreSQL and Redis are the servers on this machine (override with MATHBOT_TEST_POSTGRES_URL
and MATHBOT_TEST_REDIS_URL). Every test uses its own tables or key prefix and session ids, and
removes them. An unreachable server skips its tests locally, and fails them when CI=true.
"""

from __future__ import annotations

import asyncio
import functools
import importlib.util
import os
import socket
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from agents.testing import ModelStep, ScriptedModel, assistant_message

from bot.app import build
from bot.config.settings import ConfigError, Settings
from bot.core.assistant import Answer, Assistant
from bot.core.failures import GENERIC
from bot.errors import UserFacingError
from bot.memory.outage import StoreUnavailable, TurnLockTimeout
from bot.memory.postgres import PostgresStore, turn_lock_key
from bot.memory.redis import RedisStore
from bot.memory.sqlite import SQLiteStore
from bot.memory.store import SessionStore
from bot.memory.stores import open_store
from bot.tools.calculator.calculator import Calculator
from bot.tools.plotting.plotter import Plotter

POSTGRES_URL = os.environ.get(
    "MATHBOT_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("MATHBOT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
IN_CI = os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


# --------------------------------------------------------------------------- servers


@functools.cache
def unavailable(kind: str) -> str | None:
    """Why `kind`'s server can't be used by these tests, or None when it can."""

    async def probe() -> None:
        if kind == "postgres":
            import asyncpg

            conn = await asyncpg.connect(asyncpg_dsn(POSTGRES_URL), timeout=3)
            await conn.close()
        else:
            import redis.asyncio as redis

            client = redis.from_url(REDIS_URL, socket_connect_timeout=3)
            try:
                await client.ping()
            finally:
                await client.aclose()

    def check() -> str | None:
        extra = "postgres" if kind == "postgres" else "redis"
        url = POSTGRES_URL if kind == "postgres" else REDIS_URL
        try:
            asyncio.run(probe())
        except ImportError as exc:
            return f'{kind} tests need: pip install -e ".[{extra}]" ({exc})'
        except Exception as exc:  # noqa: BLE001 - any failure is the reason to report
            return f"{kind} server unreachable at {url}: {exc!r} (see .ci/services.sh)"
        return None

    with ThreadPoolExecutor(1) as pool:  # a loop of its own, apart from the tests' loops
        return pool.submit(check).result()


def need(kind: str) -> None:
    reason = unavailable(kind) if kind != "sqlite" else None
    if reason is None:
        return
    if IN_CI:
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    pytest.skip(reason)


def need_packages(extra: str, *modules: str) -> None:
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if not missing:
        return
    reason = f'missing {", ".join(missing)}: pip install -e ".[{extra}]"'
    if IN_CI:
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    pytest.skip(reason)


def asyncpg_dsn(url: str) -> str:
    return "postgresql://" + url.split("://", 1)[1]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --------------------------------------------------------------------------- engines


class Backend:
    """One engine: makes stores ("processes") on this test's own tables or keys, and
    reads what is stored straight from the engine."""

    kind: str

    def new_store(self, **options: Any) -> SessionStore:
        raise NotImplementedError

    async def rows(self, session_id: str) -> int:
        """How many items are stored for the session."""
        raise NotImplementedError

    async def traces(self, session_id: str) -> list[str]:
        """Everything the engine still holds for the session (rows or keys)."""
        raise NotImplementedError

    async def lock_held(self, session_id: str) -> bool:
        return False

    async def cleanup(self) -> None:
        """Remove this test's tables or keys."""


class SQLiteBackend(Backend):
    kind = "sqlite"

    def __init__(self, tmp_path: Path) -> None:
        self.path = str(tmp_path / "memory.db")

    def new_store(self, **options: Any) -> SessionStore:
        return SQLiteStore(self.path)

    def _query(self, sql: str, session_id: str) -> int:
        with sqlite3.connect(self.path) as conn:
            return int(conn.execute(sql, (session_id,)).fetchone()[0])

    async def rows(self, session_id: str) -> int:
        return self._query("SELECT count(*) FROM agent_messages WHERE session_id = ?", session_id)

    async def traces(self, session_id: str) -> list[str]:
        return [
            table
            for table in ("agent_sessions", "agent_messages")
            if self._query(f"SELECT count(*) FROM {table} WHERE session_id = ?", session_id)
        ]


class PostgresBackend(Backend):
    kind = "postgres"

    def __init__(self) -> None:
        tag = uuid.uuid4().hex[:12]
        self.sessions_table = f"mbt_{tag}_sessions"
        self.messages_table = f"mbt_{tag}_messages"
        self.application_name = f"mathbot-test-{tag}"
        self._conn: Any = None

    def new_store(self, **options: Any) -> PostgresStore:
        options.setdefault("application_name", self.application_name)
        return PostgresStore(
            POSTGRES_URL,
            sessions_table=self.sessions_table,
            messages_table=self.messages_table,
            **options,
        )

    async def conn(self) -> Any:
        import asyncpg

        if self._conn is None:
            self._conn = await asyncpg.connect(asyncpg_dsn(POSTGRES_URL))
        return self._conn

    async def rows(self, session_id: str) -> int:
        conn = await self.conn()
        sql = f"SELECT count(*) FROM {self.messages_table} WHERE session_id = $1"
        return int(await conn.fetchval(sql, session_id))

    async def traces(self, session_id: str) -> list[str]:
        conn = await self.conn()
        found = []
        for table in (self.sessions_table, self.messages_table):
            sql = f"SELECT count(*) FROM {table} WHERE session_id = $1"
            if await conn.fetchval(sql, session_id):
                found.append(table)
        return found

    async def lock_held(self, session_id: str) -> bool:
        # A bigint advisory key shows in pg_locks as classid (high half) and objid (low half).
        key = turn_lock_key(session_id) & 0xFFFF_FFFF_FFFF_FFFF
        conn = await self.conn()
        held = await conn.fetchval(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 1"
            " AND classid::bigint = $1 AND objid::bigint = $2 AND granted",
            key >> 32,
            key & 0xFFFF_FFFF,
        )
        return bool(held)

    async def drop_store_connections(self) -> int:
        """Kill the stores' server connections, as a server restart does."""
        conn = await self.conn()
        return int(
            await conn.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE application_name = $1",
                self.application_name,
            )
        )

    async def cleanup(self) -> None:
        conn = await self.conn()
        await conn.execute(f"DROP TABLE IF EXISTS {self.messages_table}, {self.sessions_table}")
        await conn.close()


class RedisBackend(Backend):
    kind = "redis"

    def __init__(self) -> None:
        self.root = f"mbt:{uuid.uuid4().hex[:12]}"
        self.key_prefix = f"{self.root}:session"
        self.lock_prefix = f"{self.root}:lock"
        self.client_name = f"mathbot-test-{self.root.split(':')[1]}"
        self._client: Any = None

    def new_store(self, **options: Any) -> RedisStore:
        options.setdefault("client_name", self.client_name)
        return RedisStore(
            REDIS_URL, key_prefix=self.key_prefix, lock_prefix=self.lock_prefix, **options
        )

    @property
    def client(self) -> Any:
        if self._client is None:
            import redis.asyncio as redis

            self._client = redis.from_url(REDIS_URL, decode_responses=True)
        return self._client

    async def rows(self, session_id: str) -> int:
        return int(await self.client.llen(f"{self.key_prefix}:{session_id}:messages"))

    async def traces(self, session_id: str) -> list[str]:
        return sorted(await self.client.keys(f"{self.key_prefix}:{session_id}*"))

    async def lock_held(self, session_id: str) -> bool:
        return bool(await self.client.exists(f"{self.lock_prefix}:{session_id}"))

    async def drop_store_connections(self) -> int:
        """Kill the stores' server connections, as a server restart does."""
        killed = 0
        for client in await self.client.client_list():
            if client.get("name") == self.client_name:
                killed += await self.client.client_kill_filter(_id=client["id"])
        return killed

    async def cleanup(self) -> None:
        keys = await self.client.keys(f"{self.root}:*")
        if keys:
            await self.client.delete(*keys)
        await self.client.aclose()


async def make_backend(kind: str, tmp_path: Path) -> AsyncIterator[Backend]:
    need(kind)
    backend: Backend
    if kind == "sqlite":
        backend = SQLiteBackend(tmp_path)
    elif kind == "postgres":
        backend = PostgresBackend()
    else:
        backend = RedisBackend()
    try:
        yield backend
    finally:
        await backend.cleanup()


@pytest.fixture(params=["sqlite", "postgres", "redis"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    async for made in make_backend(request.param, tmp_path):
        yield made


@pytest.fixture(params=["postgres", "redis"])
async def shared(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    """Only the engines that several processes share."""
    async for made in make_backend(request.param, tmp_path):
        yield made


def in_background(turn: Coroutine[Any, Any, Answer]) -> asyncio.Task[Answer]:
    return asyncio.create_task(turn)


def sid() -> str:
    return f"test:{uuid.uuid4().hex}"


def user_texts(call_input: object) -> list[str]:
    assert isinstance(call_input, list)
    return [i["content"] for i in call_input if i.get("role") == "user"]


async def started(settings: Settings, model: ScriptedModel, store: SessionStore) -> Assistant:
    assistant = build(
        settings, model=model, store=store, calculator=Calculator(), plotter=Plotter()
    )
    await assistant.start()
    return assistant


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


@pytest.fixture
async def redis_backend(tmp_path: Path) -> AsyncIterator[Backend]:
    async for made in make_backend("redis", tmp_path):
        yield made


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

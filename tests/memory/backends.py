"""The memory engines the store tests run against: SQLite, and the PostgreSQL and Redis servers
on this machine (override with MATHBOT_TEST_POSTGRES_URL and MATHBOT_TEST_REDIS_URL). Every
backend uses its own tables or key prefix, and removes them. An unreachable server skips its
tests locally, and fails them when CI=true.
"""

from __future__ import annotations

import asyncio
import functools
import importlib.util
import json
import os
import socket
import sqlite3
import uuid
from collections.abc import AsyncIterator, Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from agents.testing import ScriptedModel

from bot.app import build
from bot.config.settings import Settings
from bot.core.assistant import Answer, Assistant
from bot.memory.postgres import PostgresStore, turn_lock_key
from bot.memory.redis import RedisStore
from bot.memory.sqlite import SQLiteStore
from bot.memory.store import SessionStore
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

    async def items(self, session_id: str) -> list[Any]:
        """The session's stored items, oldest first, read straight from the engine."""
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

    async def items(self, session_id: str) -> list[Any]:
        with sqlite3.connect(self.path) as conn:
            rows = conn.execute(
                "SELECT message_data FROM agent_messages WHERE session_id = ? ORDER BY id",
                (session_id,),
            ).fetchall()
        return [json.loads(data) for (data,) in rows]


class PostgresBackend(Backend):
    kind = "postgres"

    def __init__(self) -> None:
        tag = uuid.uuid4().hex[:12]
        self.sessions_table = f"mbt_{tag}_sessions"
        self.messages_table = f"mbt_{tag}_messages"
        self.fence_table = f"mbt_{tag}_fence"
        self.application_name = f"mathbot-test-{tag}"
        self._conn: Any = None

    def new_store(self, **options: Any) -> PostgresStore:
        options.setdefault("application_name", self.application_name)
        return PostgresStore(
            POSTGRES_URL,
            sessions_table=self.sessions_table,
            messages_table=self.messages_table,
            fence_table=self.fence_table,
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

    async def items(self, session_id: str) -> list[Any]:
        conn = await self.conn()
        rows = await conn.fetch(
            f"SELECT message_data FROM {self.messages_table} WHERE session_id = $1"
            " ORDER BY created_at, id",
            session_id,
        )
        return [json.loads(row[0]) for row in rows]

    async def lock_holders(self, session_id: str) -> list[int]:
        """The server pids holding the session's turn lock."""
        # A bigint advisory key shows in pg_locks as classid (high half) and objid (low half).
        key = turn_lock_key(session_id) & 0xFFFF_FFFF_FFFF_FFFF
        conn = await self.conn()
        rows = await conn.fetch(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 1"
            " AND classid::bigint = $1 AND objid::bigint = $2 AND granted",
            key >> 32,
            key & 0xFFFF_FFFF,
        )
        return [int(row[0]) for row in rows]

    async def lock_held(self, session_id: str) -> bool:
        return bool(await self.lock_holders(session_id))

    async def kill_lock_connection(self, session_id: str) -> None:
        """What a restart does to the turn lock: its connection ends, the lock is freed."""
        conn = await self.conn()
        (pid,) = await self.lock_holders(session_id)
        # With a timeout, pg_terminate_backend waits until the backend has exited.
        assert await conn.fetchval("SELECT pg_terminate_backend($1, 5000)", pid)
        assert not await self.lock_held(session_id)

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
        await conn.execute(
            f"DROP TABLE IF EXISTS {self.messages_table}, {self.sessions_table}, {self.fence_table}"
        )
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

    async def items(self, session_id: str) -> list[Any]:
        raw = await self.client.lrange(f"{self.key_prefix}:{session_id}:messages", 0, -1)
        return [json.loads(entry) for entry in raw]

    def lock_key(self, session_id: str) -> str:
        return f"{self.lock_prefix}:{session_id}"

    async def lock_held(self, session_id: str) -> bool:
        return bool(await self.client.exists(self.lock_key(session_id)))

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

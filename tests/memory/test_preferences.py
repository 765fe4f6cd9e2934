"""The preferences backends against the real SQLite, PostgreSQL and Redis: records by key, an
atomic update even between two processes' stores, and nothing lost when a store is reopened.
Every test uses its own table or hash and removes it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from bot.memory.postgres import PostgresStore
from bot.memory.preferences import open_preferences
from bot.memory.preferences.base import Preferences, Record
from bot.memory.preferences.postgres import PostgresPreferences
from bot.memory.preferences.redis import RedisPreferences
from bot.memory.preferences.sqlite import SQLitePreferences
from bot.memory.redis import RedisStore
from bot.memory.sqlite import SQLiteStore
from tests.memory.backends import POSTGRES_URL, REDIS_URL, asyncpg_dsn, need

Opener = Callable[[], Awaitable[tuple[Preferences, Callable[[], Awaitable[None]]]]]


@pytest.fixture(params=["sqlite", "postgres", "redis"])
async def opener(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Opener]:
    """Opens a started backend on its own store, as a separate process would (same table or
    hash each time); everything opened is closed and the table or hash dropped after."""
    kind: str = request.param
    need(kind)
    tag = uuid.uuid4().hex[:12]
    closers: list[Callable[[], Awaitable[None]]] = []

    async def open_one() -> tuple[Preferences, Callable[[], Awaitable[None]]]:
        prefs: Preferences
        if kind == "sqlite":
            prefs = SQLitePreferences(str(tmp_path / "maths_db.db"))
            await prefs.start()

            async def close() -> None:
                await prefs.close()
        elif kind == "postgres":
            store = PostgresStore(POSTGRES_URL, sessions_table=f"mbp_{tag}_s",
                                  messages_table=f"mbp_{tag}_m")  # fmt: skip
            await store.start()
            prefs = PostgresPreferences(store, table=f"mbp_{tag}_prefs")
            await prefs.start()

            async def close() -> None:
                await prefs.close()
                await store.close()
        else:
            rstore = RedisStore(REDIS_URL, key_prefix=f"mbp:{tag}:s", lock_prefix=f"mbp:{tag}:l")
            await rstore.start()
            prefs = RedisPreferences(rstore, name=f"mbp:{tag}:prefs")
            await prefs.start()

            async def close() -> None:
                await prefs.close()
                await rstore.close()

        closers.append(close)
        return prefs, close

    yield open_one
    for close in closers:
        await close()
    if kind == "postgres":
        import asyncpg

        conn = await asyncpg.connect(asyncpg_dsn(POSTGRES_URL), timeout=5)
        try:
            await conn.execute(f"DROP TABLE IF EXISTS mbp_{tag}_prefs, mbp_{tag}_m, mbp_{tag}_s")
        finally:
            await conn.close()
    elif kind == "redis":
        import redis.asyncio as redis

        client = redis.from_url(REDIS_URL)
        try:
            keys = await client.keys(f"mbp:{tag}:*")
            if keys:
                await client.delete(*keys)
        finally:
            await client.aclose()


async def test_records_are_read_updated_and_deleted_by_key(opener: Opener) -> None:
    prefs, _ = await opener()
    assert await prefs.read(["user:1", "guild:2"]) == {}
    assert await prefs.update("user:1", lambda old: {"style": "tutor", "was": old}) == {
        "style": "tutor", "was": None,
    }  # fmt: skip
    await prefs.update("guild:2", lambda _: {"instruction": "réponds en français", "n": [1, 2]})
    assert await prefs.read(["user:1", "guild:2", "user:3"]) == {
        "user:1": {"style": "tutor", "was": None},
        "guild:2": {"instruction": "réponds en français", "n": [1, 2]},
    }
    assert await prefs.update("user:1", lambda old: {"before": old}) == {
        "before": {"style": "tutor", "was": None}
    }
    assert await prefs.update("user:1", lambda _: None) is None  # None deletes
    await prefs.delete("guild:2")
    await prefs.delete("guild:404")  # deleting nothing is fine
    assert await prefs.read(["user:1", "guild:2"]) == {}


async def test_records_survive_reopening(opener: Opener) -> None:
    first, close = await opener()
    await first.update("user:7", lambda _: {"style": "steps"})
    await close()
    second, _ = await opener()
    assert await second.read(["user:7"]) == {"user:7": {"style": "steps"}}


async def test_concurrent_updates_from_two_processes_lose_nothing(opener: Opener) -> None:
    one, _ = await opener()
    two, _ = await opener()

    def add(name: str) -> Callable[[Record | None], Record]:
        return lambda old: {"names": sorted([*(old or {}).get("names", []), name])}

    names = [f"n{i:02d}" for i in range(20)]
    await asyncio.gather(*((one if i % 2 else two).update("guild:9", add(n))
                           for i, n in enumerate(names)))  # fmt: skip
    assert (await one.read(["guild:9"]))["guild:9"]["names"] == names


async def test_a_failing_change_leaves_the_record_as_it_was(opener: Opener) -> None:
    prefs, _ = await opener()
    await prefs.update("guild:5", lambda _: {"v": 1})

    def refuse(_: Any) -> Record:
        raise ValueError("too many channels")

    with pytest.raises(ValueError, match="too many"):
        await prefs.update("guild:5", refuse)
    assert await prefs.read(["guild:5"]) == {"guild:5": {"v": 1}}
    await prefs.update("guild:5", lambda old: {"v": (old or {})["v"] + 1})  # still usable
    assert await prefs.read(["guild:5"]) == {"guild:5": {"v": 2}}


def test_the_backend_follows_the_memory_store(tmp_path: Path) -> None:
    path = str(tmp_path / "m.db")
    found = open_preferences(SQLiteStore(path))
    assert isinstance(found, SQLitePreferences) and found.path == path
    need("postgres")
    assert isinstance(open_preferences(PostgresStore(POSTGRES_URL)), PostgresPreferences)
    need("redis")
    assert isinstance(open_preferences(RedisStore(REDIS_URL)), RedisPreferences)

"""The SQLite file's writers (turns, usage) have threads of their own: they still finish while
every thread of the event loop's default pool is blocked (e.g. by hostile users' work)."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator, Awaitable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import date

from bot.limits.usage import SQLiteUsageLedger, TokenUsage
from bot.memory import sqlite_rows
from bot.memory.sqlite import SQLiteStore
from bot.memory.store import TurnLease

POOL_THREADS = 2
GIVE_UP = 10.0  # seconds; only reached when the write is stuck behind the blocked pool


@asynccontextmanager
async def default_pool_blocked() -> AsyncIterator[None]:
    """Every thread of the loop's default executor waits on an event until the block ends."""
    loop = asyncio.get_running_loop()
    loop.set_default_executor(ThreadPoolExecutor(POOL_THREADS))
    release = threading.Event()
    started = threading.Semaphore(0)

    def hold() -> None:
        started.release()
        release.wait()

    holders = [loop.run_in_executor(None, hold) for _ in range(POOL_THREADS)]
    for _ in range(POOL_THREADS):  # every thread of the pool is now taken
        assert started.acquire(timeout=GIVE_UP)
    try:
        yield
    finally:
        release.set()
        await asyncio.gather(*holders)


async def finishes(work: Awaitable[object]) -> bool:
    """True when `work` completes while the default pool is blocked."""
    task = asyncio.ensure_future(work)
    done, _ = await asyncio.wait({task}, timeout=GIVE_UP)
    if not done:
        return False
    task.result()
    return True


def rows(path: str, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as conn:
        return conn.execute(sql).fetchall()


async def test_a_turn_is_written_while_the_default_pool_is_blocked(db_path: str) -> None:
    store = SQLiteStore(db_path)
    await store.start()
    items = [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]
    try:
        async with default_pool_blocked():
            lease = TurnLease("discord:user:1", "")
            assert await finishes(store.commit_turn(lease, items, replaces=None))  # type: ignore[arg-type]
    finally:
        await store.close()
    stored = rows(db_path, f"SELECT session_id FROM {sqlite_rows.MESSAGES_TABLE}")
    assert stored == [("discord:user:1",), ("discord:user:1",)]


async def test_usage_is_recorded_while_the_default_pool_is_blocked(db_path: str) -> None:
    ledger = SQLiteUsageLedger(db_path)
    await ledger.start()
    try:
        async with default_pool_blocked():
            spent = TokenUsage(70, 30, 100, 1, turns=1)
            assert await finishes(ledger.record("discord:user:1", spent, day=date(2025, 3, 10)))
            report = ledger.usage("discord:user:1", day=date(2025, 3, 10))
            assert await finishes(report)
    finally:
        await ledger.close()
    assert rows(db_path, "SELECT session_id, total_tokens FROM mathbot_usage") == [
        ("discord:user:1", 100)
    ]

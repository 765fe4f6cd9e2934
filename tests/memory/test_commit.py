"""Writing a turn: an edit replaces its turn in one transaction, the "is it still the latest
turn?" check runs inside it, and a turn whose lock was lost writes nothing (fencing).

Against the real engines (see `backends`). Each failure is injected where it would hurt most:
after the old turn's rows are deleted and before the new ones are written.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from agents.testing import ModelStep, ScriptedModel, assistant_message

from bot.config.settings import Settings
from bot.core.failures import LOST_TURN
from bot.errors import UserFacingError
from bot.memory import postgres_rows, redis_keys, sqlite_rows
from bot.memory.last_turn import NotLatestTurn
from bot.memory.outage import LostTurnLock, StoreUnavailable
from bot.memory.store import SessionStore
from bot.memory.turn_session import TurnSession
from tests.memory.backends import (
    Backend,
    PostgresBackend,
    RedisBackend,
    in_background,
    sid,
    started,
    user_texts,
)


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def answer(text: str) -> dict[str, Any]:
    return {
        "role": "assistant",
        "type": "message",
        "content": [{"type": "output_text", "text": text}],
    }


def tool_call(cid: str) -> dict[str, Any]:
    return {"type": "function_call", "call_id": cid, "name": "calculate", "arguments": "{}"}


def tool_output(cid: str) -> dict[str, Any]:
    return {"type": "function_call_output", "call_id": cid, "output": "4"}


FIRST = [user("q1"), answer("a1")]
LAST = [user("q2"), tool_call("c"), tool_output("c"), answer("a2")]  # tool items go with it
EDITED = [user("q2, edited"), answer("a2, edited")]


async def seeded(backend: Backend, session: str, items: list[Any]) -> SessionStore:
    """A started store whose session holds `items`, written by the SDK's own session."""
    store = backend.new_store()
    await store.start()
    async with store.session(session) as stored:
        await stored.add_items(items)
    return store


async def sdk_items(store: SessionStore, session: str) -> list[Any]:
    async with store.session(session) as stored:
        return await stored.get_items()


async def lose_lock(backend: Backend, session: str) -> None:
    """What a server restart or an expiry does to a held turn lock."""
    if isinstance(backend, PostgresBackend):
        await backend.kill_lock_connection(session)
    else:
        assert isinstance(backend, RedisBackend)
        assert await backend.client.delete(backend.lock_key(session)) == 1


# --------------------------------------------------------------------------- replacing


async def test_an_edit_replaces_the_last_turn_whole(backend: Backend) -> None:
    session = sid()
    store = await seeded(backend, session, FIRST + LAST)
    async with store.turn_lock(session) as lease:
        await store.commit_turn(lease, list(EDITED), replaces="q2")
    assert await backend.items(session) == FIRST + EDITED
    # The SDK reads the rows back in order, and its next write lands after them.
    async with store.session(session) as stored:
        await stored.add_items([user("q3"), answer("a3")])
    assert await sdk_items(store, session) == [*FIRST, *EDITED, user("q3"), answer("a3")]
    await store.close()


async def test_the_only_turn_can_be_replaced(backend: Backend) -> None:
    session = sid()
    store = await seeded(backend, session, LAST)
    async with store.turn_lock(session) as lease:
        await store.commit_turn(lease, list(EDITED), replaces="q2")
    assert await backend.items(session) == EDITED
    await store.close()


def fail_after_delete(backend: Backend, monkeypatch: pytest.MonkeyPatch) -> type[BaseException]:
    """Make replaces fail between deleting the old turn's rows and writing the new ones, the
    way each engine can fail there; the exception type the commit then raises."""
    if isinstance(backend, PostgresBackend):
        insert = postgres_rows._insert

        async def killed_first(conn: Any, *args: Any) -> None:
            from sqlalchemy import text

            pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
            admin = await backend.conn()
            assert await admin.fetchval("SELECT pg_terminate_backend($1, 5000)", pid)
            await insert(conn, *args)

        monkeypatch.setattr(postgres_rows, "_insert", killed_first)
        return StoreUnavailable
    if isinstance(backend, RedisBackend):
        from redis.asyncio.client import Pipeline

        execute = Pipeline.execute

        async def dropped_first(pipe: Any, *args: Any, **kwargs: Any) -> Any:
            assert await backend.drop_store_connections() >= 1
            return await execute(pipe, *args, **kwargs)

        monkeypatch.setattr(Pipeline, "execute", dropped_first)
        return StoreUnavailable

    def disk_full(*args: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(sqlite_rows, "_insert", disk_full)
    return OSError


async def test_a_replace_that_fails_midway_keeps_the_old_turn(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = sid()
    store = await seeded(backend, session, FIRST + LAST)
    async with store.turn_lock(session) as lease:
        with monkeypatch.context() as patched:
            raised = fail_after_delete(backend, patched)
            with pytest.raises(raised):
                await store.commit_turn(lease, list(EDITED), replaces="q2")
        assert await backend.items(session) == FIRST + LAST  # the old turn, whole
        await store.commit_turn(lease, list(EDITED), replaces="q2")  # the store still works
    assert await backend.items(session) == FIRST + EDITED
    await store.close()


async def test_a_stale_edit_is_refused_inside_the_transaction(backend: Backend) -> None:
    """The edited question was the latest when the turn read its history, but another turn
    landed before the commit: the commit's own check refuses it, and nothing changes."""
    session = sid()
    store = await seeded(backend, session, FIRST + LAST)
    async with store.turn_lock(session) as lease, store.session(session) as stored:
        turn = TurnSession(stored, 10, store=store, lease=lease, replaces="q2")
        assert await turn.get_items() == FIRST  # the early check passed
        await stored.add_items([user("q3"), answer("a3")])  # a later turn lands meanwhile
        await turn.add_items(list(EDITED))
        with pytest.raises(NotLatestTurn):
            await turn.commit()
    assert await backend.items(session) == [*FIRST, *LAST, user("q3"), answer("a3")]
    await store.close()


async def test_an_edit_of_an_older_or_unknown_question_changes_nothing(backend: Backend) -> None:
    session, empty = sid(), sid()
    store = await seeded(backend, session, FIRST + LAST)
    async with store.turn_lock(session) as lease:
        for question in ("q1", "q2, edited", ""):
            with pytest.raises(NotLatestTurn):
                await store.commit_turn(lease, list(EDITED), replaces=question)
    async with store.turn_lock(empty) as lease:
        with pytest.raises(NotLatestTurn):
            await store.commit_turn(lease, list(EDITED), replaces="q2")
    assert await backend.items(session) == FIRST + LAST
    assert await backend.traces(empty) == []
    await store.close()


async def test_the_last_turn_is_found_behind_a_long_tool_loop(backend: Backend) -> None:
    """The last turn may hold many more items than one read window."""
    session = sid()
    loop = [item for i in range(40) for item in (tool_call(f"c{i}"), tool_output(f"c{i}"))]
    long_turn = [user("q2"), *loop, answer("a2")]
    store = await seeded(backend, session, FIRST + long_turn)
    async with store.turn_lock(session) as lease:
        await store.commit_turn(lease, list(EDITED), replaces="q2")
    assert await backend.items(session) == FIRST + EDITED
    await store.close()


# --------------------------------------------------------------------------- fencing


async def test_a_commit_after_another_process_took_the_lock_writes_nothing(
    shared: Backend,
) -> None:
    session = sid()
    store = await seeded(shared, session, FIRST)
    other = shared.new_store()
    await other.start()
    async with store.turn_lock(session) as lease:
        await lose_lock(shared, session)
        async with other.turn_lock(session) as taken:  # another process's turn begins
            for replaces in (None, "q1"):
                with pytest.raises(LostTurnLock):
                    await store.commit_turn(lease, list(EDITED), replaces=replaces)
            assert await shared.items(session) == FIRST
            await other.commit_turn(taken, [user("q2"), answer("a2")], replaces=None)
    assert await shared.items(session) == [*FIRST, user("q2"), answer("a2")]
    assert not await shared.lock_held(session)
    await store.close()
    await other.close()


async def test_a_healthy_lease_commits_and_the_next_one_too(shared: Backend) -> None:
    session = sid()
    store = await seeded(shared, session, [])
    other = shared.new_store()
    await other.start()
    async with store.turn_lock(session) as lease:
        await store.commit_turn(lease, list(FIRST), replaces=None)
    async with other.turn_lock(session) as lease:
        await other.commit_turn(lease, list(LAST), replaces=None)
    async with store.turn_lock(session) as lease:
        await store.commit_turn(lease, list(EDITED), replaces="q2")
    assert await shared.items(session) == FIRST + EDITED
    await store.close()
    await other.close()


async def test_redis_refuses_a_lock_gone_or_overwritten(redis_backend: RedisBackend) -> None:
    """Redis keeps no trace of who held a lock that vanished: a missing lock is refused too."""
    session = sid()
    store = await seeded(redis_backend, session, FIRST)
    async with store.turn_lock(session) as lease:
        await lose_lock(redis_backend, session)
        with pytest.raises(LostTurnLock):
            await store.commit_turn(lease, list(LAST), replaces=None)
        await redis_backend.client.set(redis_backend.lock_key(session), "someone-else")
        with pytest.raises(LostTurnLock):
            await store.commit_turn(lease, list(LAST), replaces=None)
    assert await redis_backend.items(session) == FIRST
    await store.close()


async def test_redis_retries_when_the_lock_is_renewed_during_the_commit(
    redis_backend: RedisBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The turn's own keeper renewing the lock (PEXPIRE) trips the WATCH: read again, and
    commit."""
    session = sid()
    store = await seeded(redis_backend, session, FIRST + LAST)
    kept = redis_keys._kept
    reads = 0

    async def renewed_first(pipe: Any, list_key: str, question: str) -> int:
        nonlocal reads
        reads += 1
        if reads == 1:
            assert await redis_backend.client.pexpire(redis_backend.lock_key(session), 60_000)
        return await kept(pipe, list_key, question)

    monkeypatch.setattr(redis_keys, "_kept", renewed_first)
    async with store.turn_lock(session) as lease:
        await store.commit_turn(lease, list(EDITED), replaces="q2")
    assert reads == 2
    assert await redis_backend.items(session) == FIRST + EDITED
    await store.close()


async def test_postgres_commits_after_a_restart_when_no_one_took_the_lock(
    postgres_backend: PostgresBackend,
) -> None:
    """The fence token proves no other turn ran meanwhile: the commit is safe and kept."""
    session = sid()
    store = await seeded(postgres_backend, session, FIRST)
    async with store.turn_lock(session) as lease:
        await lose_lock(postgres_backend, session)
        await store.commit_turn(lease, list(LAST), replaces=None)
    assert await postgres_backend.items(session) == FIRST + LAST
    await store.close()


async def test_a_turn_that_lost_its_lock_tells_the_user_and_stores_nothing(
    settings: Settings, shared: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    """The whole path: a turn held open at the model loses its lock, another process answers
    a question of the same conversation, then the first turn's commit is refused."""
    session = sid()
    gate, reached = asyncio.Event(), asyncio.Event()

    async def held_open(call: Any) -> list[Any]:
        reached.set()
        await gate.wait()
        return [assistant_message("4")]

    one = await started(settings, ScriptedModel([ModelStep.respond(held_open)]), shared.new_store())
    two_model = ScriptedModel([[assistant_message("8")]])
    two = await started(settings, two_model, shared.new_store())
    first = in_background(one.ask(session, "what is 2+2?"))
    await asyncio.wait_for(reached.wait(), 5)
    await lose_lock(shared, session)
    assert (await asyncio.wait_for(two.ask(session, "what is 4+4?"), 5)).text == "8"
    gate.set()
    with caplog.at_level(logging.WARNING), pytest.raises(UserFacingError) as err:
        await asyncio.wait_for(first, 5)
    assert err.value.message == LOST_TURN
    assert any("lock was lost" in r.getMessage() for r in caplog.records)
    assert [i.get("content") for i in await shared.items(session) if i.get("role") == "user"] == [
        "what is 4+4?"
    ]
    assert user_texts(two_model.calls[0].input) == ["what is 4+4?"]
    await one.close()
    await two.close()


async def test_postgres_commit_holds_the_fence_row_until_it_ends(
    postgres_backend: PostgresBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Why a new lock holder cannot read between our fence check and our write: taking the
    lock updates the fence row, and the commit holds that row locked while it writes."""
    import asyncpg

    session = sid()
    store = await seeded(postgres_backend, session, FIRST)
    write_turn = postgres_rows.write_turn
    admin = await postgres_backend.conn()
    seen: list[str] = []

    async def probed(*args: Any) -> None:
        try:
            await admin.fetchval(
                f"SELECT token FROM {postgres_backend.fence_table}"
                " WHERE session_id = $1 FOR UPDATE NOWAIT",
                session,
            )
        except asyncpg.LockNotAvailableError:
            seen.append("locked")
        await write_turn(*args)

    monkeypatch.setattr(postgres_rows, "write_turn", probed)
    async with store.turn_lock(session) as lease:
        await store.commit_turn(lease, list(LAST), replaces=None)
    assert seen == ["locked"]
    assert await postgres_backend.items(session) == FIRST + LAST
    await store.close()


async def test_forget_leaves_no_fencing_token_and_fences_older_leases(shared: Backend) -> None:
    """`/forget` deletes everything of the session: its items, and (PostgreSQL) the fencing
    row that names it; a turn still holding a lease from before cannot write afterwards."""
    session = sid()
    store = await seeded(shared, session, FIRST)
    other = shared.new_store()
    await other.start()
    async with store.turn_lock(session) as stale:
        await lose_lock(shared, session)
        async with other.turn_lock(session) as lease, other.session(session) as stored:
            await stored.clear_session()
            await other.forget(lease)
        with pytest.raises(LostTurnLock):
            await store.commit_turn(stale, list(LAST), replaces=None)
    assert await shared.items(session) == []
    if isinstance(shared, PostgresBackend):
        admin = await shared.conn()
        rows = await admin.fetchval(
            f"SELECT count(*) FROM {shared.fence_table} WHERE session_id = $1", session
        )
        assert rows == 0
    async with store.turn_lock(session) as lease:  # a later turn starts afresh
        await store.commit_turn(lease, list(LAST), replaces=None)
    assert await shared.items(session) == LAST
    await store.close()
    await other.close()

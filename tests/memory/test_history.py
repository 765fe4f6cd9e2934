"""Bounding history to whole user turns, and the turn queue's order and cleanup."""

from __future__ import annotations

import asyncio

from agents import SQLiteSession

from bot.core.turn_order import TurnQueue
from bot.memory.history import drop_unanswered_tail, last_user_turns, read_history


def user(text: str) -> dict:
    return {"role": "user", "content": text}


def answer(text: str) -> dict:
    return {
        "role": "assistant",
        "type": "message",
        "content": [{"type": "output_text", "text": text}],
    }


def call(cid: str) -> dict:
    return {"type": "function_call", "call_id": cid, "name": "calculate", "arguments": "{}"}


def output(cid: str) -> dict:
    return {"type": "function_call_output", "call_id": cid, "output": "4"}


CONVERSATION = [
    user("q1"), call("a"), output("a"), answer("a1"),
    user("q2"), answer("a2"),
    user("q3"), call("b"), output("b"), answer("a3"),
]  # fmt: skip


def test_cut_starts_at_a_user_message() -> None:
    kept = last_user_turns(CONVERSATION, 2)
    assert kept[0] == user("q2")
    assert kept == CONVERSATION[4:]


def test_never_starts_with_a_tool_item() -> None:
    orphaned = [output("z"), answer("old"), *CONVERSATION]
    assert last_user_turns(orphaned, 10)[0] == user("q1")


def test_unanswered_question_is_dropped() -> None:
    dangling = [*CONVERSATION, user("q4"), call("c")]
    assert last_user_turns(dangling, 10) == CONVERSATION
    assert drop_unanswered_tail([user("q")]) == []


async def test_read_history_reads_only_what_it_needs() -> None:
    session = SQLiteSession("s")
    items = []
    for i in range(100):
        items += [user(f"q{i}"), call(f"c{i}"), output(f"c{i}"), answer(f"a{i}")]
    await session.add_items(items)
    limits: list[int | None] = []
    original = session.get_items

    async def spy(limit: int | None = None) -> list:
        limits.append(limit)
        return await original(limit)

    session.get_items = spy  # type: ignore[method-assign]
    kept = await read_history(session, 5)
    assert [i["content"] for i in kept if i.get("role") == "user"] == [
        f"q{i}" for i in range(95, 100)
    ]
    assert all(limit is not None and limit < 400 for limit in limits)
    session.close()


async def test_queue_is_fifo_and_empties() -> None:
    queue = TurnQueue()
    order: list[int] = []
    gate = asyncio.Event()

    async def turn(n: int, ticket) -> None:  # type: ignore[no-untyped-def]
        async with ticket:
            if n == 0:
                await gate.wait()
            order.append(n)

    tickets = [queue.enter("k") for _ in range(5)]
    tasks = [asyncio.create_task(turn(n, t)) for n, t in enumerate(tickets)]
    await asyncio.sleep(0)
    gate.set()
    await asyncio.gather(*tasks)
    assert order == [0, 1, 2, 3, 4]
    assert len(queue) == 0


async def test_cancelled_waiter_keeps_the_order() -> None:
    queue = TurnQueue()
    first, second, third = queue.enter("k"), queue.enter("k"), queue.enter("k")
    running = asyncio.Event()
    done: list[str] = []

    async def hold() -> None:
        async with first:
            running.set()
            await asyncio.Event().wait()

    holder = asyncio.create_task(hold())
    await running.wait()

    async def wait_in(ticket, name: str) -> None:  # type: ignore[no-untyped-def]
        async with ticket:
            done.append(name)

    waiter = asyncio.create_task(wait_in(second, "second"))
    last = asyncio.create_task(wait_in(third, "third"))
    await asyncio.sleep(0)
    waiter.cancel()
    await asyncio.sleep(0)
    assert done == []  # the first turn still runs: the third must keep waiting
    holder.cancel()
    await asyncio.gather(last)
    assert done == ["third"]
    assert len(queue) == 0

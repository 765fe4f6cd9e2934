"""`Slots`: free workers handed to waiting calls smallest job first, arrival order among equals."""

from __future__ import annotations

import asyncio

import pytest

from bot.workers.slots import Slots


async def _settle() -> None:
    for _ in range(100):
        await asyncio.sleep(0)


async def _queue(slots: Slots, sizes: list[int], served: list[int]) -> list[asyncio.Task[None]]:
    """One waiting call per size, started in that order; each notes its size when served."""

    async def call(size: int) -> None:
        await slots.acquire(size)
        served.append(size)

    tasks = [asyncio.create_task(call(size)) for size in sizes]
    await _settle()
    return tasks


async def test_the_smallest_waiting_job_gets_the_next_slot() -> None:
    slots = Slots(1)
    await slots.acquire()  # the only worker is busy
    served: list[int] = []
    await _queue(slots, [10_000, 45, 10_000, 3], served)
    assert served == []
    for _ in range(4):
        slots.release()
        await _settle()
    assert served == [3, 45, 10_000, 10_000]


async def test_equal_sizes_are_served_in_arrival_order() -> None:
    slots = Slots(1)
    await slots.acquire()
    order: list[str] = []

    async def call(size: int, name: str) -> None:
        await slots.acquire(size)
        order.append(name)

    tasks = []
    for name in ("a", "b", "c"):
        tasks.append(asyncio.create_task(call(7, name)))
        await _settle()
    for _ in range(3):
        slots.release()
        await _settle()
    assert order == ["a", "b", "c"] and all(task.done() for task in tasks)


async def test_a_call_that_gave_up_is_skipped_and_loses_no_slot() -> None:
    slots = Slots(1)
    await slots.acquire()
    served: list[int] = []
    small, _big = await _queue(slots, [1, 500], served)
    small.cancel()  # its deadline came
    await _settle()
    slots.release()
    await _settle()
    assert served == [500]
    slots.release()  # the big call is done: the slot is free again, no one waits
    await asyncio.wait_for(slots.acquire(), timeout=1)


async def test_a_slot_handed_as_its_call_gives_up_goes_to_the_next() -> None:
    slots = Slots(1)
    await slots.acquire()
    served: list[int] = []
    first, _second = await _queue(slots, [1, 2], served)
    slots.release()  # handed to `first`...
    first.cancel()  # ...which is cancelled before it could run
    await _settle()
    assert served == [2]


async def test_free_slots_are_taken_without_waiting() -> None:
    slots = Slots(2)
    await asyncio.wait_for(slots.acquire(9), timeout=1)
    await asyncio.wait_for(slots.acquire(1), timeout=1)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(slots.acquire(0), timeout=0.01)


def test_a_pool_needs_a_slot() -> None:
    with pytest.raises(ValueError):
        Slots(0)

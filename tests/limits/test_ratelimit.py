"""The per-user rate limit (fake clock) and the global model-call gate (no sleeps)."""

from __future__ import annotations

import asyncio
import random

import pytest

from bot.config.controls import RateLimit
from bot.errors import UserFacingError
from bot.limits.ratelimit import BUSY, ModelGate, UserRateLimiter, format_wait, rate_limited_message


class FakeClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# --------------------------------------------------------------------------- rate limiter


def test_burst_then_refusal_with_retry_after() -> None:
    clock = FakeClock()
    limiter = UserRateLimiter(5, 60.0, clock=clock)
    assert [limiter.check(7) for _ in range(5)] == [None] * 5
    assert limiter.check(7) == pytest.approx(12.0)  # one message per 12 s
    assert limiter.check(7) == pytest.approx(12.0)  # a refusal spends nothing
    assert limiter.check(8) is None  # others are not affected


def test_refill_over_time() -> None:
    clock = FakeClock()
    limiter = UserRateLimiter(5, 60.0, burst=2, clock=clock)
    assert limiter.check(1) is None and limiter.check(1) is None
    assert limiter.check(1) == pytest.approx(12.0)
    clock.advance(5.0)
    assert limiter.check(1) == pytest.approx(7.0)
    clock.advance(7.0)
    assert limiter.check(1) is None
    assert limiter.check(1) == pytest.approx(12.0)
    clock.advance(3600.0)  # refills to the burst, never beyond
    assert [limiter.check(1) for _ in range(3)] == [None, None, pytest.approx(12.0)]


def test_waiting_exactly_retry_after_is_enough() -> None:
    clock = FakeClock(0.1)
    limiter = UserRateLimiter(3, 7.0, burst=1, clock=clock)
    assert limiter.check(1) is None
    retry = limiter.check(1)
    assert retry is not None
    clock.advance(retry)
    assert limiter.check(1) is None


def test_from_rate_and_enforce() -> None:
    clock = FakeClock()
    limiter = UserRateLimiter.from_rate(RateLimit(count=1, period=30.0, burst=1), clock=clock)
    limiter.enforce(1)
    with pytest.raises(UserFacingError) as caught:
        limiter.enforce(1)
    assert str(caught.value) == (
        "You're sending messages too quickly. Please try again in 30 seconds."
    )


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.0, "1 second"),
        (0.2, "1 second"),
        (1.0, "1 second"),
        (11.5, "12 seconds"),
        (59.0, "59 seconds"),
        (60.0, "1 minute"),
        (61.0, "2 minutes"),
        (3600.0, "60 minutes"),
    ],
)
def test_format_wait(seconds: float, text: str) -> None:
    assert format_wait(seconds) == text
    assert text in rate_limited_message(seconds)


def test_memory_stays_bounded_with_100k_users() -> None:
    clock = FakeClock()
    limiter = UserRateLimiter(5, 60.0, clock=clock, prune_every=1024)
    for user in range(100_000):
        assert limiter.check(user) is None
    assert len(limiter) == 100_000  # all spent a token within the refill time: all held
    clock.advance(limiter.refill_time)  # now every bucket is full again
    for user in range(100_000, 100_000 + 1024):
        limiter.check(user)
    assert len(limiter) <= 1024  # the refilled 100k were swept


def test_memory_sweep_keeps_partly_spent_buckets() -> None:
    clock = FakeClock()
    limiter = UserRateLimiter(1, 10.0, clock=clock, prune_every=4)
    for _ in range(4):
        assert limiter.check(1) in (None, pytest.approx(10.0))
    clock.advance(5.0)  # user 1 is half refilled: must survive a sweep
    for user in range(2, 10):
        limiter.check(user)
    assert limiter.check(1) == pytest.approx(5.0)


async def settle(rounds: int = 10) -> None:
    """Let every runnable task run until it blocks (zero-time yields, not sleeps)."""
    for _ in range(rounds):
        await asyncio.sleep(0)


async def test_cap_holds_with_50_tasks_in_fifo_order() -> None:
    gate = ModelGate(max_in_flight=4, max_queued=46)
    done = [asyncio.Event() for _ in range(50)]
    entered: list[int] = []
    running = peak = 0

    async def turn(i: int) -> None:
        nonlocal running, peak
        async with gate.slot():
            running += 1
            peak = max(peak, running)
            entered.append(i)
            await done[i].wait()
            running -= 1

    tasks = [asyncio.create_task(turn(i)) for i in range(50)]
    await settle()
    assert (gate.in_flight, gate.queued, entered) == (4, 46, [0, 1, 2, 3])

    rng = random.Random(7)
    while len(entered) < 50 or running:
        busy = [i for i in entered if not done[i].is_set()]
        done[rng.choice(busy)].set()  # finish one running turn at random
        await settle()
        assert running <= 4 and gate.in_flight <= 4
    await asyncio.gather(*tasks)
    assert peak == 4
    assert entered == list(range(50))  # first come, first served
    assert (gate.in_flight, gate.queued) == (0, 0)


async def test_overflow_is_refused_immediately() -> None:
    gate = ModelGate(max_in_flight=1, max_queued=2)
    release = asyncio.Event()

    async def hold() -> None:
        async with gate.slot():
            await release.wait()

    tasks = [asyncio.create_task(hold()) for _ in range(3)]
    await settle()
    assert (gate.in_flight, gate.queued) == (1, 2)

    entering = gate.slot().__aenter__()
    with pytest.raises(UserFacingError) as caught:
        entering.send(None)  # refused on the first step: no waiting at all
    assert str(caught.value) == BUSY == "I'm busy right now — please try again shortly."

    release.set()
    await asyncio.gather(*tasks)
    assert (gate.in_flight, gate.queued) == (0, 0)
    async with gate.slot():  # usable again
        assert gate.in_flight == 1


async def test_no_queue_means_busy_as_soon_as_full() -> None:
    gate = ModelGate(max_in_flight=2, max_queued=0)
    async with gate.slot(), gate.slot():
        with pytest.raises(UserFacingError):
            async with gate.slot():
                pass
    assert gate.in_flight == 0


async def test_cancelled_waiter_frees_its_place() -> None:
    gate = ModelGate(max_in_flight=1, max_queued=1)
    holder = gate.slot()
    await holder.__aenter__()
    got: list[str] = []

    async def wait(name: str) -> None:
        async with gate.slot():
            got.append(name)

    first = asyncio.create_task(wait("first"))
    await settle()
    assert gate.queued == 1
    first.cancel()
    await settle()
    assert first.cancelled() and gate.queued == 0

    second = asyncio.create_task(wait("second"))  # the freed place can be taken
    await settle()
    assert gate.queued == 1
    await holder.__aexit__(None, None, None)
    await second
    assert got == ["second"]
    assert (gate.in_flight, gate.queued) == (0, 0)


async def test_waiter_cancelled_as_it_is_handed_the_slot_passes_it_on() -> None:
    gate = ModelGate(max_in_flight=1, max_queued=5)
    holder = gate.slot()
    await holder.__aenter__()
    got: list[str] = []

    async def wait(name: str) -> None:
        async with gate.slot():
            got.append(name)

    a = asyncio.create_task(wait("a"))
    b = asyncio.create_task(wait("b"))
    await settle()
    await holder.__aexit__(None, None, None)  # hands the slot to a...
    a.cancel()  # ...which is cancelled before it could resume
    await asyncio.gather(a, b, return_exceptions=True)
    assert a.cancelled()
    assert got == ["b"]
    assert (gate.in_flight, gate.queued) == (0, 0)


async def test_errors_and_cancellation_inside_the_slot_free_it() -> None:
    gate = ModelGate(max_in_flight=1, max_queued=0)
    with pytest.raises(ZeroDivisionError):
        async with gate.slot():
            _ = 1 / 0
    assert gate.in_flight == 0

    started = asyncio.Event()

    async def hang() -> None:
        async with gate.slot():
            started.set()
            await asyncio.Event().wait()

    task = asyncio.create_task(hang())
    await started.wait()
    assert gate.in_flight == 1
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert gate.in_flight == 0


async def test_random_cancellations_leak_no_slots() -> None:
    gate = ModelGate(max_in_flight=3, max_queued=20)
    rng = random.Random(3)
    finish = asyncio.Event()
    running = peak = 0

    async def turn() -> None:
        nonlocal running, peak
        async with gate.slot():
            running += 1
            peak = max(peak, running)
            try:
                await finish.wait()
            finally:
                running -= 1

    tasks = [asyncio.create_task(turn()) for _ in range(23)]
    await settle()
    for task in rng.sample(tasks, 12):
        task.cancel()
        if rng.random() < 0.5:
            await settle(1)
    await settle()
    assert gate.in_flight <= 3
    finish.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert sum(isinstance(r, asyncio.CancelledError) for r in results) == 12
    assert peak <= 3
    assert (gate.in_flight, gate.queued) == (0, 0)


def test_gate_rejects_bad_sizes() -> None:
    with pytest.raises(ValueError):
        ModelGate(0, 1)
    with pytest.raises(ValueError):
        ModelGate(1, -1)

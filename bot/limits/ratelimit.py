"""Flow control: a per-user message rate limit and a global cap on model calls in flight."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from ..config.controls import RateLimit
from ..errors import UserFacingError

log = logging.getLogger(__name__)

BUSY = "I'm busy right now — please try again shortly."
_EPSILON = 1e-9


def format_wait(seconds: float) -> str:
    """A short human duration, rounded up: `1 second`, `12 seconds`, `3 minutes`."""
    whole = max(1, math.ceil(seconds - _EPSILON))
    if whole < 60:
        return f"{whole} second" + ("s" if whole != 1 else "")
    minutes = math.ceil(whole / 60)
    return f"{minutes} minute" + ("s" if minutes != 1 else "")


def rate_limited_message(retry_after: float) -> str:
    """What a user who sends too fast is told."""
    return f"You're sending messages too quickly. Please try again in {format_wait(retry_after)}."


class _Bucket:
    __slots__ = ("stamp", "tokens")

    def __init__(self, tokens: float, stamp: float) -> None:
        self.tokens = tokens
        self.stamp = stamp


class UserRateLimiter:
    """A token bucket per user: `count` messages per `period` seconds, `burst` at once.

    Only users who spent tokens recently are held: buckets that have refilled are dropped by
    a lazy sweep, run once `prune_every` calls have passed and either as many calls as there
    are buckets or a whole refill time (burst / rate). That keeps each call O(1) amortized
    and memory proportional to the users seen within about one refill time. Admin bypass is
    the caller's job.
    """

    def __init__(
        self,
        count: int,
        period: float,
        *,
        burst: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        prune_every: int = 1024,
    ) -> None:
        if count < 1 or period <= 0 or (burst is not None and burst < 1):
            raise ValueError("count, period and burst must be positive")
        self.rate = count / period
        self.capacity = float(burst if burst is not None else count)
        self._clock = clock
        self._prune_every = prune_every
        self.refill_time = self.capacity / self.rate
        self._buckets: dict[int, _Bucket] = {}
        self._calls = 0
        self._pruned_at = -math.inf

    @classmethod
    def from_rate(
        cls,
        rate: RateLimit,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> UserRateLimiter:
        return cls(rate.count, rate.period, burst=rate.burst, clock=clock)

    def __len__(self) -> int:
        """How many users are held (those not yet refilled, until the next sweep)."""
        return len(self._buckets)

    def check(self, user_id: int) -> float | None:
        """None if `user_id` may send now (a token is spent), else seconds until they may."""
        now = self._clock()
        self._calls += 1
        if self._calls >= self._prune_every and (
            self._calls >= len(self._buckets) or now - self._pruned_at >= self.refill_time
        ):
            self._prune(now)
        bucket = self._buckets.get(user_id)
        tokens = self.capacity if bucket is None else self._level(bucket, now)
        if tokens >= 1.0 - _EPSILON:
            if bucket is None:
                self._buckets[user_id] = _Bucket(max(0.0, tokens - 1.0), now)
            else:
                bucket.tokens, bucket.stamp = max(0.0, tokens - 1.0), now
            return None
        return (1.0 - tokens) / self.rate

    def enforce(self, user_id: int) -> None:
        """`check`, raising `UserFacingError` with the retry time when refused."""
        retry_after = self.check(user_id)
        if retry_after is not None:
            raise UserFacingError(rate_limited_message(retry_after))

    def _level(self, bucket: _Bucket, now: float) -> float:
        elapsed = max(0.0, now - bucket.stamp)
        return min(self.capacity, bucket.tokens + elapsed * self.rate)

    def _prune(self, now: float) -> None:
        self._calls, self._pruned_at = 0, now
        full = [uid for uid, b in self._buckets.items() if self._level(b, now) >= self.capacity]
        for uid in full:
            del self._buckets[uid]


class ModelGate:
    """At most `max_in_flight` model calls at once; up to `max_queued` more wait, first come
    first served; beyond that, `slot()` refuses at once with `UserFacingError(BUSY)`.

    A freed slot is handed straight to the oldest waiter, so late arrivals can't jump the
    queue. A waiter that is cancelled gives up its place (or passes on the slot it was just
    handed): no slot leaks. `on_busy` is called for each refusal (for the metrics).
    """

    def __init__(
        self,
        max_in_flight: int,
        max_queued: int,
        *,
        on_busy: Callable[[], None] | None = None,
    ) -> None:
        if max_in_flight < 1 or max_queued < 0:
            raise ValueError("max_in_flight must be >= 1 and max_queued >= 0")
        self.max_in_flight = max_in_flight
        self.max_queued = max_queued
        self._in_flight = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._on_busy = on_busy

    @property
    def in_flight(self) -> int:
        """Slots held (including one just handed to a waiter that hasn't resumed yet)."""
        return self._in_flight

    @property
    def queued(self) -> int:
        return sum(1 for w in self._waiters if not w.done())

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one model-call slot for the body of `async with`."""
        await self._acquire()
        try:
            yield
        finally:
            self._release()

    async def _acquire(self) -> None:
        if self._in_flight < self.max_in_flight and not self.queued:
            self._in_flight += 1
            return
        if self.queued >= self.max_queued:
            log.warning(
                "model gate full: %d in flight, %d queued; refusing a turn",
                self._in_flight,
                self.queued,
            )
            if self._on_busy is not None:
                self._on_busy()
            raise UserFacingError(BUSY)
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._release()  # the slot was handed over as we were cancelled: pass it on
            else:
                waiter.cancel()
                self._discard(waiter)
            raise

    def _release(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot passes to the waiter: in_flight unchanged
                return
        self._in_flight -= 1

    def _discard(self, waiter: asyncio.Future[None]) -> None:
        with contextlib.suppress(ValueError):
            self._waiters.remove(waiter)

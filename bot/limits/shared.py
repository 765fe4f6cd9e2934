"""Limits shared by every process: the protocol of a rate limiter kept in a server, and its
arithmetic (the generic cell rate algorithm, equivalent to `UserRateLimiter`'s token bucket)."""

from __future__ import annotations

from typing import Protocol

from ..config.controls import RateLimit


class SharedRateLimiter(Protocol):
    """A per-user rate limit kept where every process (and the next start) sees it."""

    async def start(self) -> None: ...

    async def check(self, user_id: int) -> float | None:
        """None if `user_id` may send now (it is counted), else seconds until they may."""
        ...

    async def close(self) -> None: ...


def cell_rate(rate: RateLimit) -> tuple[float, float]:
    """`(interval, tolerance)` for `rate`: a message is allowed when the user's theoretical
    arrival time, pushed back by `interval` for it, stays within `tolerance` of now. With
    `burst` messages at once and `count` per `period`, that is `UserRateLimiter`'s bucket."""
    interval = rate.period / rate.count
    return interval, rate.burst * interval

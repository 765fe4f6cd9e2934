"""`Slots`: a pool's free workers, handed to waiting calls smallest job first."""

from __future__ import annotations

import asyncio
import heapq
import itertools

__all__ = ["Slots"]


class Slots:
    """Up to `count` holders at once; a call that has to wait is served before every waiting
    call with a larger `size`, and in arrival order among equal sizes.

    A semaphore serves waiters first come, first served: a short answer's render waited behind
    every long (hostile) one queued before it (bench/bench_hostile.py `--honest-math`).
    Hand-written because asyncio's `Semaphore` has no order but arrival, and the waiting
    must stay cancellable (a call gives up at its deadline).
    """

    def __init__(self, count: int) -> None:
        if count < 1:
            raise ValueError("at least one slot")
        self._free = count
        self._waiting: list[tuple[int, int, asyncio.Future[None]]] = []
        self._arrival = itertools.count()

    async def acquire(self, size: int = 0) -> None:
        """Take a slot, waiting behind smaller jobs if none is free; cancellable."""
        if self._free > 0 and not self._waiting:
            self._free -= 1
            return
        handed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiting, (size, next(self._arrival), handed))
        try:
            await handed
        except asyncio.CancelledError:
            if handed.done() and not handed.cancelled():
                self.release()  # the slot came just as the call gave up: pass it on
            raise

    def release(self) -> None:
        """Give the slot back: to the smallest waiting job, else to the free ones."""
        while self._waiting:
            _size, _arrival, handed = heapq.heappop(self._waiting)
            if not handed.done():  # a call that gave up is skipped
                handed.set_result(None)
                return
        self._free += 1

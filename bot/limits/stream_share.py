"""Long answers' share of the event loop: past its first chunks, a streamed answer is read at a
pace that every long answer shares, so one user's long answer never slows another's short one."""

from __future__ import annotations

import asyncio

from aiolimiter import AsyncLimiter

__all__ = ["StreamPacer"]

#: Chunks of an answer read at full speed: 1,000 to 2,000 characters at the 4 to 8 characters
#: per chunk some endpoints send, far more in Gemini's larger chunks. Past them, an answer
#: alone is still read as fast as a model writes (see below); only many at once are slowed.
FREE_CHUNKS = 256
#: What every long answer together may read per second: under a tenth of the event loop at
#: the ~80 µs a streamed chunk costs (parsing, the SDK's events, drafts), whatever the number
#: of long answers. A model writes 50 to 200 chunks a second, so this only ever slows answers
#: that many users steer into being long at once. bench/bench_hostile.py, streaming on: honest
#: p99 under hostile load 141-217 ms at 2,000 (goal missed in 2 runs of 3), 113-152 ms at 1,000.
SHARED_CHUNKS_PER_SECOND = 1_000
#: Chunks read between two give-ways to the other tasks: each slice stays under a millisecond.
SLICE_CHUNKS = 4
#: Chunks the long answers may read in a burst after a pause (10 slices, 40 ms of the pace).
BURST_CHUNKS = 10 * SLICE_CHUNKS


class StreamPacer:
    """Paces the reading of streamed answers (`pace`, called after each chunk).

    A stream's chunks may all have arrived already, and an `async for` over buffered data
    never suspends: without giving way, one long answer would hold the loop for seconds.
    Every `slice_chunks` chunks the stream gives way to the other tasks; past its first
    `free_chunks`, it also waits for its share of `chunks_per_second`, a leaky bucket that all
    long answers draw from in turn (`aiolimiter`, first come first served). Short answers
    only ever give way.
    """

    def __init__(
        self,
        *,
        free_chunks: int = FREE_CHUNKS,
        chunks_per_second: float = SHARED_CHUNKS_PER_SECOND,
        slice_chunks: int = SLICE_CHUNKS,
        burst_chunks: int = BURST_CHUNKS,
    ) -> None:
        if slice_chunks < 1 or burst_chunks < slice_chunks or chunks_per_second <= 0:
            raise ValueError("a slice of at least 1 chunk, a burst of at least a slice")
        self._free = free_chunks
        self._slice = slice_chunks
        self._long_answers = AsyncLimiter(burst_chunks, burst_chunks / chunks_per_second)

    async def pace(self, chunks_read: int) -> None:
        """Called after each chunk of a stream, with how many it has read so far."""
        if chunks_read % self._slice:
            return
        if chunks_read > self._free:
            await self._long_answers.acquire(self._slice)
        await asyncio.sleep(0)

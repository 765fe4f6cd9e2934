"""Per-session turn order: one turn at a time, in the order the turns were queued."""

from __future__ import annotations

import asyncio
from types import TracebackType


class TurnQueue:
    """FIFO tickets per key. Holds nothing for keys that have no turn queued."""

    def __init__(self) -> None:
        self._tails: dict[str, asyncio.Future[None]] = {}

    def enter(self, key: str) -> Ticket:
        """Take a place in `key`'s queue now (synchronously); wait for it with `async with`."""
        loop = asyncio.get_running_loop()
        previous = self._tails.get(key)
        mine: asyncio.Future[None] = loop.create_future()
        self._tails[key] = mine
        return Ticket(self, key, previous, mine)

    def __len__(self) -> int:
        return len(self._tails)

    def _forget(self, key: str, future: asyncio.Future[None]) -> None:
        if self._tails.get(key) is future:
            del self._tails[key]


class Ticket:
    """A place in a `TurnQueue`. Released on exit, or by `release()` if never entered."""

    def __init__(
        self,
        queue: TurnQueue,
        key: str,
        previous: asyncio.Future[None] | None,
        mine: asyncio.Future[None],
    ) -> None:
        self._queue = queue
        self._key = key
        self._previous = previous
        self._mine = mine

    @property
    def key(self) -> str:
        """The queue this place is in (a session id)."""
        return self._key

    async def __aenter__(self) -> Ticket:
        if self._previous is not None:
            try:
                await asyncio.shield(self._previous)
            except asyncio.CancelledError:
                self.release()
                raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def release(self) -> None:
        """Let the next turn go once every earlier turn is done too. Idempotent."""
        if self._mine.done():
            return
        if self._previous is None or self._previous.done():
            self._finish()
        else:
            self._previous.add_done_callback(lambda _f: self._finish())

    def _finish(self) -> None:
        if not self._mine.done():
            self._mine.set_result(None)
        self._queue._forget(self._key, self._mine)

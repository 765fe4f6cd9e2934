"""What tools may spend: per turn, a number of calls and of seconds; per user, one call at a
time (so that one user never holds every worker)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from .base import to_json
from .turn_context import TurnContext

log = logging.getLogger(__name__)

__all__ = ["ToolGate", "ToolLimits", "UserLocks"]


@dataclass(frozen=True, slots=True)
class ToolLimits:
    """The tool work one turn may ask for."""

    #: Tool calls one turn may start.
    max_calls: int = 12
    #: Seconds one turn's tool calls may take, waiting for their turn and running.
    max_seconds: float = 20.0

    def used_up(self) -> str:
        """What a call past the limits answers, for the model to act on."""
        return (
            "the tool budget of this question is used up (at most "
            f"{self.max_calls} tool calls and {self.max_seconds:g} s of tool time per "
            "question): answer with what you have, and say what is left undone"
        )


class UserLocks:
    """One lock per key (a user), kept only while someone holds or waits for it: memory is
    bounded by the users with a call in flight, not by the users ever seen."""

    def __init__(self) -> None:
        self._locks: dict[Hashable, tuple[asyncio.Lock, int]] = {}

    def __len__(self) -> int:
        return len(self._locks)

    @asynccontextmanager
    async def hold(self, key: Hashable) -> AsyncIterator[None]:
        """Hold `key`'s lock (waiting for the key's earlier holders) for the block."""
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


class ToolGate:
    """Runs each tool call within its turn's limits and one at a time per user.

    A call past the turn's limits answers the model at once and runs nothing; a call that
    reaches the turn's time limit while it waits or runs is stopped (a worker running it is
    killed) and answers the same.
    """

    def __init__(self, limits: ToolLimits, users: UserLocks) -> None:
        self._limits = limits
        self._users = users

    def backstop(self, tool_timeout: float) -> float:
        """The agent SDK's limit on one call of a tool whose own limit is `tool_timeout`: a
        call may first wait its turn, for at most the turn's tool time."""
        return tool_timeout + self._limits.max_seconds

    async def run(self, context: TurnContext, work: Callable[[], Awaitable[str]]) -> str:
        """`work()`'s answer, or the JSON error saying that the turn's budget is used up."""
        tally = context.tools
        loop = asyncio.get_running_loop()
        now = loop.time()
        if tally.calls >= self._limits.max_calls or tally.spent(now) >= self._limits.max_seconds:
            log.info("tool call refused: the turn's tool budget is used up")
            return to_json({"error": self._limits.used_up()})
        tally.begin(now)
        try:
            async with asyncio.timeout_at(tally.deadline(self._limits.max_seconds, now)) as scope:
                async with self._users.hold(context.user):
                    return await work()
        except TimeoutError:
            if not scope.expired():
                raise
            log.info("tool call stopped: the turn's tool time is used up")
            return to_json({"error": self._limits.used_up()})
        finally:
            tally.end(loop.time())

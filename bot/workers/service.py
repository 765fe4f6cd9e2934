"""`PooledService`: a service of the bot process whose work runs in a worker pool it owns."""

from __future__ import annotations

from typing import ClassVar, Self

from .pool import PoolClosed, WorkerPool

__all__ = ["PooledService"]

#: How much longer than the client's own deadline the agent SDK lets one tool call take.
_TOOL_TIMEOUT_MARGIN = 10.0


class PooledService:
    """A service's side in the bot process (a tool's client, the renderer): owns the worker
    pool its work runs in, and that pool's life (start, close, start on first use).

    `name` is what its answers call it ("the calculator is closed").
    """

    name: ClassVar[str]

    def __init__(self, workers: WorkerPool) -> None:
        self._workers = workers

    @property
    def timeout(self) -> float:
        """The hard wall-clock limit of one call, in seconds."""
        return self._workers.timeout

    @property
    def tool_timeout(self) -> float:
        """The agent SDK's limit on one call of the tool: a backstop well behind `timeout`."""
        return self._workers.timeout + _TOOL_TIMEOUT_MARGIN

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Start the worker pool and wait until a worker is warmed up (idempotent)."""
        try:
            await self._workers.start()
        except PoolClosed:
            raise RuntimeError(f"the {self.name} is closed") from None

    async def close(self) -> None:
        """Stop the workers (a call being worked on is abandoned)."""
        await self._workers.close()

    async def _start_on_first_use(self) -> str | None:
        """Start the pool if that was never done (normally it is, up front); the error to
        answer with when it cannot start, else None."""
        if not self._workers.running and not self._workers.closed:
            try:
                await self.start()
            except RuntimeError as exc:
                return str(exc)
        return None

"""Handlers at work, so that shutting down lets them finish their answers first."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

log = logging.getLogger(__name__)


class InFlight:
    """The tasks answering someone right now; `drain()` stops new ones and waits for these."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[object]] = set()
        self.closing = False

    @asynccontextmanager
    async def track(self) -> AsyncIterator[None]:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            yield
        finally:
            if task is not None:
                self._tasks.discard(task)

    async def drain(self, grace: float) -> None:
        """Refuse new work, then wait up to `grace` seconds for the answers under way."""
        self.closing = True
        current = asyncio.current_task()
        pending = {t for t in self._tasks if t is not current and not t.done()}
        if not pending:
            return
        log.info("waiting up to %gs for %d answer(s) under way", grace, len(pending))
        _, late = await asyncio.wait(pending, timeout=grace)
        if late:
            log.warning("shutting down with %d answer(s) unfinished", len(late))

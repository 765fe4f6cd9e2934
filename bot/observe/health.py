"""The health check: connected to Discord, and the memory store answers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from ..memory.store import SessionStore

log = logging.getLogger(__name__)

PROBE_SESSION = "mathbot:health"


class Health:
    """`problem()` is None when healthy, else one line saying what is wrong.

    `connected` says whether the bot is connected to Discord (the adapter reports it);
    the store is asked for one item of a session nobody uses, within `timeout` seconds.
    """

    def __init__(
        self, store: SessionStore, connected: Callable[[], bool], *, timeout: float = 3.0
    ) -> None:
        self._store = store
        self._connected = connected
        self._timeout = timeout

    async def problem(self) -> str | None:
        if not self._connected():
            return "not connected to Discord"
        try:
            async with asyncio.timeout(self._timeout), self._store.session(PROBE_SESSION) as s:
                await s.get_items(1)
        except TimeoutError:
            return f"the memory store did not answer within {self._timeout:g} s"
        except Exception as exc:  # noqa: BLE001 - any failure is a reason to report
            log.info("health: memory store check failed: %r", exc)
            return f"the memory store is not answering ({type(exc).__name__})"
        return None

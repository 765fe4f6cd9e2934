"""The protocol every memory store follows: one SDK `Session` per turn, and a turn lock."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Protocol

from agents.memory import Session


class SessionStore(Protocol):
    """Where conversations are kept: hands out one SDK `Session` per conversation turn."""

    async def start(self) -> None: ...

    def session(self, session_id: str) -> AbstractAsyncContextManager[Session]: ...

    def turn_lock(self, session_id: str) -> AbstractAsyncContextManager[None]:
        """Held around each turn, on top of the in-process order: stores shared by several
        processes make it a cross-process lock."""
        ...

    async def close(self) -> None: ...

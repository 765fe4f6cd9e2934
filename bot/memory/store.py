"""The protocol every memory store follows: one SDK `Session` per turn, a turn lock that
hands out a lease, and a turn's write, fenced by that lease, in one transaction."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol

from agents import TResponseInputItem
from agents.memory import Session


@dataclass(frozen=True)
class TurnLease:
    """This process's hold on a session's turn lock, from `turn_lock()` to the commit.

    `token` is what the store checks when the turn is written: a store that several
    processes share gives each hold a token of its own ("" for one that needs none).
    """

    session_id: str
    token: str


class SessionStore(Protocol):
    """Where conversations are kept: hands out one SDK `Session` per conversation turn."""

    async def start(self) -> None: ...

    def session(self, session_id: str) -> AbstractAsyncContextManager[Session]: ...

    def turn_lock(self, session_id: str) -> AbstractAsyncContextManager[TurnLease]:
        """Held around each turn, on top of the in-process order: stores shared by several
        processes make it a cross-process lock."""
        ...

    async def commit_turn(
        self, lease: TurnLease, items: list[TResponseInputItem], *, replaces: str | None
    ) -> None:
        """Append a turn's items to the session, in one transaction.

        With `replaces`, the same transaction first removes the session's last turn, which
        must be the one that asked `replaces` (else `NotLatestTurn`, and nothing changes).
        A lease that no longer holds the lock (it expired, or its server restarted and
        another process took it) is refused with `LostTurnLock`: nothing is written.
        """
        ...

    async def forget(self, lease: TurnLease) -> None:
        """Delete what the store keeps of the session beside its items (e.g. a fencing token),
        once `/forget` has cleared them under `lease`; a later turn starts afresh."""
        ...

    async def close(self) -> None: ...

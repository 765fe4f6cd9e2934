"""Whole turns: a turn's new items held back and written in one go, or not at all."""

from __future__ import annotations

from agents import TResponseInputItem
from agents.memory import Session, SessionSettings

from ..render.uploads import without_images
from .history import read_history, user_turn_starts
from .last_turn import NotLatestTurn, last_turn_start
from .store import SessionStore, TurnLease

__all__ = ["NotLatestTurn", "TurnSession"]


class TurnSession:
    """A `Session` that holds one turn's new items and writes them in one go on `commit()`.

    The SDK saves the user's message before it calls the model; holding the items here means a
    failed or killed turn leaves nothing behind. Reads see the bounded stored history plus
    what this turn has added so far. The write goes through the store, fenced by the turn's
    `lease`.
    """

    session_settings: SessionSettings | None = None

    def __init__(
        self,
        stored: Session,
        history_turns: int,
        *,
        store: SessionStore,
        lease: TurnLease,
        replaces: str | None = None,
    ) -> None:
        if lease.session_id != stored.session_id:
            raise ValueError("the lease is for another session")
        self.session_id = stored.session_id
        self._stored = stored
        self._history_turns = history_turns
        self._store = store
        self._lease = lease
        self._replaces = replaces
        self._pending: list[TResponseInputItem] = []

    async def get_items(self, limit: int | None = None) -> list[TResponseInputItem]:
        if self._replaces is None:
            history = await read_history(self._stored, self._history_turns)
        else:  # one turn more, since the last one is dropped
            history = await read_history(self._stored, self._history_turns + 1)
            # Checked here too, so that a stale edit costs no model call; the commit checks
            # it again, in its transaction.
            history = history[: last_turn_start(history, self._replaces, complete=True)]
            starts = user_turn_starts(history)
            if len(starts) > self._history_turns:
                history = history[starts[-self._history_turns] :]
        items = history + self._pending
        return items[-limit:] if limit else items

    async def add_items(self, items: list[TResponseInputItem]) -> None:
        self._pending.extend(items)

    async def pop_item(self) -> TResponseInputItem | None:
        return self._pending.pop() if self._pending else None

    async def clear_session(self) -> None:
        self._pending.clear()
        await self._stored.clear_session()

    async def commit(self) -> None:
        """Store the whole turn in one transaction (replacing the last turn if this one
        `replaces` it); images the user sent are stored as a note. Raises `NotLatestTurn` or
        `LostTurnLock` with nothing written."""
        if not self._pending:
            return
        items = without_images(self._pending)
        await self._store.commit_turn(self._lease, items, replaces=self._replaces)
        self._pending = []

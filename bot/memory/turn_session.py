"""Whole turns: a turn's new items held back and written in one go, or not at all."""

from __future__ import annotations

from typing import Any

from agents import TResponseInputItem
from agents.memory import Session, SessionSettings

from ..render.uploads import without_images
from .history import is_user_message, read_history, user_turn_starts


class NotLatestTurn(Exception):
    """An edited question is no longer the conversation's latest: its turn is not replaced."""


class TurnSession:
    """A `Session` that holds one turn's new items and writes them in one go on `commit()`.

    The SDK saves the user's message before it calls the model; holding the items here means a
    failed or killed turn leaves nothing behind. Reads see the bounded stored history plus
    what this turn has added so far.
    """

    session_settings: SessionSettings | None = None

    def __init__(self, stored: Session, history_turns: int, *, replaces: str | None = None) -> None:
        self.session_id = stored.session_id
        self._stored = stored
        self._history_turns = history_turns
        self._replaces = replaces
        self._pending: list[TResponseInputItem] = []

    async def get_items(self, limit: int | None = None) -> list[TResponseInputItem]:
        if self._replaces is None:
            history = await read_history(self._stored, self._history_turns)
        else:  # one turn more, since the last one is dropped
            history = await read_history(self._stored, self._history_turns + 1)
            history = _without_last_turn(history, self._replaces)
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
        """Store the whole turn in one write (one transaction in every SDK store); images the
        user sent are stored as a note. A replacing turn first removes the turn it replaces."""
        if not self._pending:
            return
        if self._replaces is not None:
            await self._drop_last_turn()
        await self._stored.add_items(without_images(self._pending))
        self._pending = []

    async def _drop_last_turn(self) -> None:
        while (item := await self._stored.pop_item()) is not None:
            if is_user_message(item):
                return


def question_text(item: TResponseInputItem) -> str:
    """The text a user message carries (its text parts, joined)."""
    content: Any = dict(item).get("content")  # type: ignore[arg-type]
    if isinstance(content, str):
        return content
    parts = [p.get("text", "") for p in content or () if isinstance(p, dict)]
    return "\n".join(p for p in parts if p)


def _without_last_turn(
    history: list[TResponseInputItem], question: str
) -> list[TResponseInputItem]:
    """History before its last turn, which must be the one that asked `question`."""
    starts = user_turn_starts(history)
    if not starts or question_text(history[starts[-1]]) != question:
        raise NotLatestTurn(question)
    return history[: starts[-1]]

"""Bounded history: the last N user turns of a stored conversation, never a half turn."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from agents import TResponseInputItem
from agents.memory import Session

# A turn is usually 2 items (question, answer); tool calls add 2 per call.
_ITEMS_PER_TURN_GUESS = 4


def is_user_message(item: TResponseInputItem | dict[str, Any]) -> bool:
    """True for a message the user typed (the start of a turn)."""
    data: dict[str, Any] = dict(item)  # type: ignore[arg-type]
    return data.get("role") == "user" and data.get("type", "message") == "message"


def user_turn_starts(items: Sequence[TResponseInputItem]) -> list[int]:
    """Indexes of the items that start a user turn."""
    return [i for i, item in enumerate(items) if is_user_message(item)]


def last_user_turns(items: Sequence[TResponseInputItem], turns: int) -> list[TResponseInputItem]:
    """The last `turns` user turns, cut at a user message (never at a tool call or output).

    A trailing turn that never got an answer is dropped, so a request never carries a
    dangling question.
    """
    starts = user_turn_starts(items)
    if not starts:
        return []
    kept = list(items[starts[-turns] if len(starts) > turns else starts[0] :])
    return drop_unanswered_tail(kept)


def drop_unanswered_tail(items: list[TResponseInputItem]) -> list[TResponseInputItem]:
    """Remove the last turn if nothing the assistant said follows its question."""
    starts = user_turn_starts(items)
    if not starts:
        return items
    tail = items[starts[-1] + 1 :]
    answered = any(dict(item).get("role") == "assistant" for item in tail)  # type: ignore[arg-type]
    return items if answered else items[: starts[-1]]


async def read_history(session: Session, turns: int) -> list[TResponseInputItem]:
    """Read just enough of `session` to hold its last `turns` user turns."""
    limit = max(turns, 1) * _ITEMS_PER_TURN_GUESS
    while True:
        items = await session.get_items(limit=limit)
        if len(items) < limit or len(user_turn_starts(items)) > turns:
            return last_user_turns(items, turns)
        limit *= 4

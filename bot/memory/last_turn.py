"""The turn an edit replaces: finding where the stored conversation's last turn starts, and
checking that it is the one that asked the edited question."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from agents import TResponseInputItem

from .history import is_user_message


class NotLatestTurn(Exception):
    """An edited question is no longer the conversation's latest: its turn is not replaced."""


def question_text(item: TResponseInputItem | dict[str, Any]) -> str:
    """The text a user message carries (its text parts, joined)."""
    content: Any = dict(item).get("content")  # type: ignore[arg-type]
    if isinstance(content, str):
        return content
    parts = [p.get("text", "") for p in content or () if isinstance(p, dict)]
    return "\n".join(p for p in parts if p)


def stored_item(raw: Any) -> dict[str, Any] | None:
    """A stored row's or list entry's item; None for one the SDK would skip as unreadable."""
    try:
        item = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError, TypeError):
        return None
    return item if isinstance(item, dict) else None


def last_turn_start(
    tail: Sequence[TResponseInputItem | dict[str, Any] | None], question: str, *, complete: bool
) -> int | None:
    """Where the last turn starts in `tail`, the newest stored items oldest first (None for
    an item that could not be read).

    None means `tail` holds no user message and is not the whole conversation (`complete`
    false): read a longer tail. Raises `NotLatestTurn` when the last turn did not ask
    `question`, or when there is no turn at all.
    """
    for index in range(len(tail) - 1, -1, -1):
        item = tail[index]
        if item is not None and is_user_message(item):
            if question_text(item) != question:
                raise NotLatestTurn(question)
            return index
    if complete:
        raise NotLatestTurn(question)
    return None

"""Reading a stored conversation back: exchanges to show, and the export file."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from agents import TResponseInputItem

from .history import user_turn_starts
from .last_turn import question_text

EXPORT_FORMAT = "mathbot.conversation/1"
SHOWN_CHARS = 400


@dataclass(frozen=True)
class Exchange:
    """One user turn: the question, the tools used, and the answer."""

    question: str
    tools: tuple[str, ...]
    answer: str


def exchanges(items: Sequence[TResponseInputItem]) -> list[Exchange]:
    """The stored items grouped into user turns, oldest first."""
    starts = user_turn_starts(items)
    found = []
    for begin, end in zip(starts, [*starts[1:], len(items)], strict=True):
        turn = [dict(item) for item in items[begin:end]]  # type: ignore[call-overload]
        tools = tuple(
            f"{i.get('name')}({_arguments(i.get('arguments'))})"
            for i in turn
            if i.get("type") == "function_call"
        )
        answers = [_answer_text(i) for i in turn if i.get("role") == "assistant"]
        found.append(Exchange(question_text(items[begin]), tools, "\n".join(a for a in answers)))
    return found


def describe(items: Sequence[TResponseInputItem], shown: int, sent: int) -> str:
    """The /history text: the last `shown` exchanges, and how much of it the model gets."""
    turns = exchanges(items)
    if not turns:
        return "I don't remember anything of our conversation yet."
    last = turns[-shown:]
    header = (
        f"Your last {len(last)} of {len(turns)} stored exchanges. "
        f"With each question the model gets the last {min(sent, len(turns))} of them."
    )
    lines = [header]
    for turn in last:
        lines.append(f"**You:** {_clip(turn.question)}")
        if turn.tools:
            lines.append(f"*used:* `{_clip(', '.join(turn.tools), 200)}`")
        lines.append(f"**mathbot:** {_clip(turn.answer)}")
    return "\n".join(lines)


def export_json(session_id: str, items: Sequence[TResponseInputItem], history_turns: int) -> bytes:
    """The whole stored conversation as a JSON document (format `mathbot.conversation/1`)."""
    document: dict[str, Any] = {
        "format": EXPORT_FORMAT,
        "session_id": session_id,
        "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "history_turns_sent": history_turns,
        "exchanges": [
            {"question": e.question, "tools": list(e.tools), "answer": e.answer}
            for e in exchanges(items)
        ],
        "items": list(items),
    }
    return json.dumps(document, ensure_ascii=False, indent=2).encode("utf-8")


def _answer_text(item: dict[str, Any]) -> str:
    content = item.get("content")
    if isinstance(content, str):
        return content
    return "".join(p.get("text", "") for p in content or () if isinstance(p, dict))


def _arguments(raw: Any) -> str:
    try:
        data = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return str(raw)
    if isinstance(data, dict) and len(data) == 1:
        return str(next(iter(data.values())))
    return json.dumps(data, ensure_ascii=False)


def _clip(text: str, limit: int = SHOWN_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"

"""What a long answer's messages show: its beginning, cut at a safe place, bounded in size."""

from __future__ import annotations

import re

from .discord_limits import MESSAGE_CHARS
from .spans import code_spans, display_spans, outside_code

__all__ = ["MAX_ANSWER_MESSAGES", "SHOWN_CHARS", "shown_part"]

# An answer is sent as at most this many messages; a longer one shows its beginning and
# attaches the whole answer (as the model wrote it, Markdown and LaTeX) as `answer.md`.
MAX_ANSWER_MESSAGES = 5
# The most of an answer's text that is rendered: what its messages can hold. Rendering makes
# text shorter or about as long (`$x^2$` -> `x²`), so the shown messages are filled.
SHOWN_CHARS = MAX_ANSWER_MESSAGES * MESSAGE_CHARS

_TILDE_FENCE = re.compile(r"^[ \t]*~~~", re.MULTILINE)


def shown_part(text: str, limit: int = SHOWN_CHARS) -> str:
    """`text` if it has at most `limit` characters, else its beginning, of at most `limit`
    characters plus a closing fence, cut where it breaks nothing.

    The cut falls at the last paragraph break of the second half of the first `limit`
    characters, else at a line break, else a space (so never inside an inline formula of a
    paragraph that goes on), and before a display formula that would be left open. A code
    block left open by the cut is closed. Work is linear in `limit`, not in `text`.
    """
    if len(text) <= limit:
        return text
    window = text[:limit]
    cut = _soft_cut(window)
    head = window[:cut]
    spans = code_spans(head)
    closer = _unclosed_fence(head, spans[-1][0]) if spans and spans[-1][1] == len(head) else None
    if closer is None:
        head = head[: _before_open_display(head)]
        return head.rstrip()
    return head.rstrip() + "\n" + closer


def _soft_cut(window: str) -> int:
    """Where to end the window: a paragraph break, line break or space in its second half."""
    half = len(window) // 2
    for separator in ("\n\n", "\n", " "):
        at = window.rfind(separator, half)
        if at != -1:
            return at
    return len(window)


def _unclosed_fence(head: str, start: int) -> str | None:
    """The fence that closes the code block opened at `start` and left open at the end of
    `head`, or None when the code span there is closed (or inline)."""
    opener = head[start:].lstrip(" \t")
    if opener.startswith("~~~"):
        return None if _TILDE_FENCE.search(head, head.index("~~~", start) + 3) else "~~~"
    run = len(opener) - len(opener.lstrip("`"))
    if run < 3:
        return None
    return None if head.find("```", start + run) != -1 else "```"


def _before_open_display(head: str) -> int:
    """The end of `head` or, when a display formula is opened in its last prose and not
    closed, where that formula starts (unless that would drop most of the text: a run of
    unclosed openers is not math, and is shown as it is)."""
    last = None
    for start, end, is_code in outside_code(head):
        if not is_code:
            last = (start, end)
    if last is None:
        return len(head)
    prose = head[last[0] : last[1]]
    pos = 0
    for _, end, _ in display_spans(prose):
        pos = end
    rest = prose[pos:]
    opener = min((i for i in (rest.find("$$"), rest.find("\\[")) if i != -1), default=-1)
    at = last[0] + pos + opener
    return at if opener != -1 and at >= len(head) // 2 else len(head)

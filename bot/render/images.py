"""Pictures shown with an answer (formulas, graphs): file name, PNG bytes and alt text."""

from __future__ import annotations

from dataclasses import dataclass

from .discord_limits import ATTACHMENT_DESCRIPTION_CHARS


@dataclass(frozen=True)
class Image:
    """A PNG to attach to an answer; `description` is its alt text (what it shows, in words),
    for people who cannot see it."""

    name: str
    png: bytes
    description: str = ""


def alt_text(text: str) -> str:
    """`text` as an attachment description: on one line, cut to Discord's limit."""
    line = " ".join(text[: 2 * ATTACHMENT_DESCRIPTION_CHARS].split())
    if len(line) > ATTACHMENT_DESCRIPTION_CHARS:
        line = line[: ATTACHMENT_DESCRIPTION_CHARS - 1] + "…"
    return line

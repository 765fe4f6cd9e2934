"""Cutting an answer into Discord-sized messages without breaking code or display math."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from .discord_limits import MESSAGE_CHARS

_FENCE = re.compile(r"^\s*(```|~~~)")
_MATH_OPEN = re.compile(r"^\s*(\$\$|\\\[)")
_MATH_CLOSERS = {"$$": "$$", "\\[": "\\]"}


@dataclass
class _Block:
    """Lines that belong together: a code block, a display-math block, or one line."""

    lines: list[str]
    fence: str | None = None  # the opening fence line of a code block

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def split_message(text: str, limit: int = MESSAGE_CHARS) -> list[str]:
    """Split `text` into non-empty chunks of at most `limit` characters.

    Cuts fall at line boundaries. A code block is never cut open: when it must continue in the
    next message it is closed and reopened with the same fence. A display-math block is kept
    whole unless it alone is longer than a message.
    """
    if limit < 20:
        raise ValueError("limit too small")
    chunks: list[str] = []
    current: list[str] = []  # the pieces of the message being filled, joined by newlines
    size = 0  # its length once joined (counted, not rebuilt for every line)
    for block in _blocks(text.strip("\n")):
        for piece in _fit(block, limit):
            joined = size + 1 + len(piece) if current else len(piece)
            if joined <= limit:
                current.append(piece)
                size = joined
                continue
            _close_message(chunks, current)
            current, size = [piece], len(piece)
    _close_message(chunks, current)
    return chunks


def _close_message(chunks: list[str], pieces: list[str]) -> None:
    message = "\n".join(pieces)
    if message.strip():
        chunks.append(message)


def _blocks(text: str) -> list[_Block]:
    """`text` as blocks, in time linear in its length (each closer is looked up, not searched)."""
    blocks: list[_Block] = []
    lines = text.split("\n")
    closers = _Closers(lines)
    i = 0
    while i < len(lines):
        line = lines[i]
        end = _block_end(lines, i, closers)
        if end is None:
            blocks.append(_Block([line]))
            i += 1
            continue
        fence = line if _FENCE.match(line) else None
        blocks.append(_Block(lines[i : end + 1], fence=fence))
        i = end + 1
    return blocks


class _Closers:
    """For each line, the index of the next line (after it) that closes each kind of block.

    Built in one backward pass, so finding where a block ends costs one lookup instead of a
    scan of the later lines (which made a run of unclosed openers quadratic).
    """

    def __init__(self, lines: list[str]) -> None:
        kinds: dict[str, Callable[[str], bool]] = {
            "```": lambda line: line.strip().startswith("```"),
            "~~~": lambda line: line.strip().startswith("~~~"),
            "$$": lambda line: "$$" in line,
            "\\]": lambda line: "\\]" in line,
        }
        self._next: dict[str, list[int]] = {}
        for kind, closes in kinds.items():
            after = [-1] * len(lines)
            nearest = -1
            for j in range(len(lines) - 1, -1, -1):
                after[j] = nearest
                if closes(lines[j]):
                    nearest = j
            self._next[kind] = after

    def after(self, kind: str, start: int) -> int | None:
        """The first line after `start` closing a block of `kind`, or None."""
        found = self._next[kind][start]
        return None if found == -1 else found


def _block_end(lines: list[str], start: int, closers: _Closers) -> int | None:
    """Index of the line closing the block opened at `start`, if one is opened there."""
    line = lines[start]
    fence = _FENCE.match(line)
    if fence:
        end = closers.after(fence.group(1), start)
        return len(lines) - 1 if end is None else end  # unclosed: runs to the end
    math = _MATH_OPEN.match(line)
    if math:
        closer = _MATH_CLOSERS[math.group(1)]
        rest = line.strip()[len(math.group(1)) :]
        if closer in rest:
            return None  # opens and closes on one line: an ordinary line
        return closers.after(closer, start)
    return None


def _fit(block: _Block, limit: int) -> list[str]:
    """The block as pieces of at most `limit` characters each."""
    if len(block.text) <= limit:
        return [block.text]
    if block.fence is not None:
        return _split_code(block, limit)
    return _split_words(block.text, limit)


def _split_code(block: _Block, limit: int) -> list[str]:
    """Split a long code block between its lines, closing and reopening the fence."""
    opener = block.fence or "```"
    marker = _FENCE.match(opener)
    closer = marker.group(1) if marker else "```"
    body = block.lines[1:]
    if body and body[-1].strip().startswith(closer):
        body = body[:-1]
    room = limit - len(opener) - len(closer) - 2
    pieces: list[str] = []
    current: list[str] = []
    size = 0
    for line in (part for raw in body for part in _split_words(raw, room) or [""]):
        if current and size + len(line) + 1 > room:
            pieces.append("\n".join([opener, *current, closer]))
            current, size = [], 0
        current.append(line)
        size += len(line) + 1
    if current:
        pieces.append("\n".join([opener, *current, closer]))
    return pieces


def _split_words(text: str, limit: int) -> list[str]:
    """Split text longer than `limit`, preferring line breaks, then spaces, then anywhere."""
    pieces: list[str] = []
    rest = text
    while len(rest) > limit:
        cut = rest.rfind("\n", 0, limit + 1)
        if cut <= 0:
            cut = rest.rfind(" ", 0, limit + 1)
        if cut <= 0:
            cut = limit
        pieces.append(rest[:cut])
        rest = rest[cut:].lstrip("\n ") if cut < len(rest) else ""
    if rest:
        pieces.append(rest)
    return [p for p in pieces if p.strip()]

"""Streamed drafts that read like answers: inline math shown as Unicode, converted incrementally."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .unicode import to_discord_text

__all__ = ["DraftRenderer"]

# Characters that may start or end code or math; the text between them changes no state.
_SPECIAL = re.compile(r"[`$\\\n~]")
_BACKTICKS = re.compile(r"`+")


@dataclass
class _State:
    """Where the scanner is: inside a code block or span, display math, or inline math."""

    code: str | None = None  # "```", "`", "``", "~~~" (a tilde fence), "~~~\n" (its last line)
    display: str | None = None  # "$$" or "\\["
    inline: str | None = None  # "$" or "\\("
    line_blank: bool = True  # the line so far holds only spaces

    @property
    def quiet(self) -> bool:
        """Nothing is open: text before this point renders the same whatever follows."""
        return self.code is None and self.display is None and self.inline is None


class DraftRenderer:
    """The draft of an answer being written, with its inline math as Unicode.

    `update(more)` takes the text written since the last call. Only the part that has become
    complete (where no code, display math or inline formula is still open) is converted, and
    only once: the converted prefix is kept, so each update's conversion work is bounded by
    the new text (plus what was still open before it), not by the answer's length. An open
    formula at the end (`$x^` before its closing `$`) is shown raw until it is closed. Kept
    within the first `limit` characters of the answer. Not thread-safe: one caller at a time
    (e.g. one `asyncio.to_thread` after another).
    """

    def __init__(self, *, limit: int, heading: str = "") -> None:
        self._limit = limit
        self._heading_source = heading
        self._heading: str | None = None
        self.converted = 0  # characters of the answer given to the converter so far
        self.reset()

    def reset(self) -> None:
        """Start over (the model begins a new answer)."""
        self._done: list[str] = []  # converted text
        self._tail = ""  # text not converted yet
        self._pos = 0  # how far into `_tail` the scanner has read
        self._quiet = 0  # the last point of `_tail` where nothing was open
        self._size = 0  # characters of the answer taken so far
        self._state = _State()

    def update(self, more: str) -> str:
        """Add `more` and return the draft: the heading, then the answer so far."""
        more = more[: self._limit - self._size]
        self._size += len(more)
        self._tail += more
        self._scan()
        if self._quiet:
            complete, self._tail = self._tail[: self._quiet], self._tail[self._quiet :]
            self._pos -= self._quiet
            self._quiet = 0
            self.converted += len(complete)
            self._done.append(to_discord_text(complete))
        return self.show()

    def show(self, body: str | None = None) -> str:
        """The draft: the heading, then `body` (default: the answer so far)."""
        if self._heading is None:
            self._heading = to_discord_text(self._heading_source)
        if body is None:
            body = "".join(self._done) + self._tail
        return f"{self._heading}\n{body}" if self._heading else body

    def _scan(self) -> None:
        """Read `_tail` from `_pos` as far as it can be read without knowing what comes next,
        noting in `_quiet` the last point where nothing is open."""
        text, state = self._tail, self._state
        pos = self._pos
        while True:
            found = _SPECIAL.search(text, pos)
            end = len(text) if found is None else found.start()
            if state.quiet:  # plain text up to the next special character changes nothing
                self._quiet = end
            if text[pos:end].strip(" \t"):
                state.line_blank = False
            if found is None:
                pos = end
                break
            step = self._step(text, end)
            if step is None:  # the character's meaning depends on text not written yet
                pos = end
                break
            pos = step
        if state.quiet:
            self._quiet = pos
        self._pos = pos

    def _step(self, text: str, at: int) -> int | None:
        """Read the special character at `at`; where to go on, or None to wait for more."""
        state, char = self._state, text[at]
        if char == "\n":
            return self._newline(text, at)
        if state.code is not None:
            return self._in_code(text, at)
        if char == "`":
            run = _BACKTICKS.match(text, at)
            assert run is not None
            if run.end() == len(text):
                return None  # the run may go on
            self._open_code("```" if len(run.group()) >= 3 else run.group())
            return run.end()
        if char == "~":
            if state.line_blank:
                if len(text) - at < 3:
                    return None
                if text.startswith("~~~", at):
                    self._open_code("~~~")
                    return at + 3
            state.line_blank = False
            return at + 1
        state.line_blank = False
        if at + 1 >= len(text):
            return None  # `\` and `$` mean what the next character says
        if char == "\\":
            return self._backslash(text, at)
        return self._dollar(text, at)

    def _open_code(self, fence: str) -> None:
        """Code starts: math never continues across it (it is found between code spans)."""
        state = self._state
        state.code, state.display, state.inline = fence, None, None
        state.line_blank = False

    def _newline(self, text: str, at: int) -> int:
        state = self._state
        if state.code == "~~~\n":
            state.code = None
        elif state.line_blank and state.code is None:
            state.inline = None  # a blank line ends a paragraph: no inline formula crosses it
        state.line_blank = True
        return at + 1

    def _in_code(self, text: str, at: int) -> int | None:
        state = self._state
        char = text[at]
        if state.code in ("~~~", "~~~\n"):
            if state.code == "~~~" and state.line_blank and text.startswith("~", at):
                if len(text) - at < 3:
                    return None
                if text.startswith("~~~", at):
                    state.code = "~~~\n"  # closed: the fence's line ends the block
                    return at + 3
            if char not in " \t":
                state.line_blank = False
            return at + 1
        state.line_blank = False
        if char != "`":
            return at + 1
        run = _BACKTICKS.match(text, at)
        assert run is not None
        if run.end() == len(text):
            return None
        closes = len(run.group()) >= 3 if state.code == "```" else run.group() == state.code
        if closes:
            state.code = None
            return at + 3 if len(run.group()) >= 3 else run.end()
        return run.end()

    def _backslash(self, text: str, at: int) -> int:
        state = self._state
        pair = text[at : at + 2]
        if state.display == "\\[" and pair == "\\]":
            state.display = None
        elif state.display is None and state.inline is None and pair == "\\[":
            state.display = "\\["
        elif state.display is None and state.inline is None and pair == "\\(":
            state.inline = "\\("
        elif state.inline == "\\(" and pair == "\\)":
            state.inline = None
        return at + 2  # an escaped character (`\$`) is never a delimiter

    def _dollar(self, text: str, at: int) -> int | None:
        state = self._state
        after = text[at + 1]
        if after == "$":
            if state.display == "$$":
                state.display = None
            elif state.display is None and state.inline != "\\(":
                state.display, state.inline = "$$", None
            return at + 2
        if state.display is not None or state.inline == "\\(":
            return at + 1
        before = text[at - 1] if at > 0 else " "
        if state.inline == "$" and not before.isspace() and not after.isdigit():
            state.inline = None  # closed
        elif not after.isspace():
            state.inline = "$"  # opens (a `$` inside a formula starts a new one)
        else:
            state.inline = None  # neither opens nor closes: an open formula is not one
        return at + 1

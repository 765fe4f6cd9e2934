"""Where math and code are in an answer's text: code, display and inline spans, brace depth."""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterator

__all__ = ["brace_depth", "code_spans", "display_spans", "inline_spans", "outside_code"]

_CODE_START = re.compile(r"`+|^[ \t]*~~~", re.MULTILINE)
_TILDE_FENCE = re.compile(r"^[ \t]*~~~", re.MULTILINE)
_BLANK_LINE = re.compile(r"\n[ \t]*\n")


def code_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of every code block and inline code span, as Discord would show them.

    A run of three or more backticks opens a code block that runs to the next ``` (or to the
    end of the text); a run of one or two backticks is inline code when a run of the same length
    closes it. A `~~~` fence at the start of a line is treated as a code block too, as the
    message splitter does. Linear time: every search starts past the previous one, except at
    most one failed search for a closing run of each length (1 and 2).
    """
    spans: list[tuple[int, int]] = []
    n = len(text)
    pos = 0
    while (opener := _CODE_START.search(text, pos)) is not None:
        start, token = opener.start(), opener.group()
        if token.endswith("~"):
            close = _TILDE_FENCE.search(text, opener.end())
            end = n if close is None else text.find("\n", close.end())
            end = n if end == -1 else end
        elif len(token) >= 3:
            close_at = text.find("```", opener.end())
            end = n if close_at == -1 else close_at + 3
        else:
            match = re.compile(rf"(?<!`)`{{{len(token)}}}(?!`)").search(text, opener.end())
            if match is None:
                pos = opener.end()  # a lone backtick is just a character
                continue
            end = match.end()
        spans.append((start, end))
        pos = end
    return spans


def outside_code(text: str) -> Iterator[tuple[int, int, bool]]:
    """Cut `text` into consecutive (start, end, is_code) pieces."""
    pos = 0
    for start, end in code_spans(text):
        if start > pos:
            yield pos, start, False
        yield start, end, True
        pos = end
    if pos < len(text) or not text:
        yield pos, len(text), False


_DISPLAY_OPEN = re.compile(r"(?<!\\)\$\$|\\\[")
_DISPLAY_CLOSE = {"$$": re.compile(r"(?<!\\)\$\$"), "\\[": re.compile(r"\\\]")}


def display_spans(prose: str) -> list[tuple[int, int, str]]:
    """(start, end, latex) of each display-math block (`$$…$$`, `\\[…\\]`) in code-free text.

    Unclosed and empty blocks are not math. Linear time: the next closer of each kind is
    remembered, so a run of unclosed openers does not rescan the text.
    """
    spans: list[tuple[int, int, str]] = []
    next_close: dict[str, tuple[int, int]] = {}  # opener -> (close start, close end); -1: none
    pos = 0
    while (match := _DISPLAY_OPEN.search(prose, pos)) is not None:
        opener = match.group()
        cached = next_close.get(opener)
        if cached is None or (cached[0] != -1 and cached[0] < match.end()):
            close = _DISPLAY_CLOSE[opener].search(prose, match.end())
            cached = (-1, -1) if close is None else (close.start(), close.end())
            next_close[opener] = cached
        if cached[0] == -1:
            pos = match.end()  # unclosed: left as it is
            continue
        latex = prose[match.end() : cached[0]].strip()
        if latex:
            spans.append((match.start(), cached[1], latex))
        pos = cached[1]
    return spans


# A `$` followed by an amount and a space ("$5 and $10") opens only a formula with math in it.
_MONEY = re.compile(r"\$\d+(?:[.,]\d+)*(?:\s|$)")
_MATH_SIGNAL = re.compile(r"[\\^_{}=<>]")
_INLINE_CANDIDATE = re.compile(r"\\\(|\$")


def inline_spans(prose: str) -> list[tuple[int, int, str]]:
    """(start, end, latex) of each inline formula (`$…$`, `\\(…\\)`) in display-free prose.

    `$` opens only when followed by a non-space, and closes only when preceded by a non-space
    and not followed by a digit, in the same paragraph. A `$` followed by digits and a space
    (money: "$5 and $10") opens only when the formula has math in it (a command, `^`, `_`,
    braces, `=`, `<`, `>`), so `$0 < x$` is math. A formula has no `$` inside; `\\$` and `$$`
    are never delimiters. Linear-logarithmic in the text length (each `$` is looked up by
    bisection, never found by rescanning a formula).
    """
    n = len(prose)
    dollars = {
        i
        for i in range(n)
        if prose[i] == "$"
        and (i == 0 or prose[i - 1] not in "\\$")
        and (i + 1 == n or prose[i + 1] != "$")
    }
    closers = sorted(
        i
        for i in dollars
        if i > 0 and not prose[i - 1].isspace() and not (i + 1 < n and prose[i + 1].isdigit())
    )
    breaks = [m.start() for m in _BLANK_LINE.finditer(prose)]
    every_dollar = [i for i, ch in enumerate(prose) if ch == "$"]

    def same_paragraph(a: int, b: int) -> bool:
        k = bisect.bisect_left(breaks, a)
        return k == len(breaks) or breaks[k] > b

    spans: list[tuple[int, int, str]] = []
    pos = 0
    paren_close = -2  # position of the next `\)` at or after `pos`; -1 when there is none
    while (match := _INLINE_CANDIDATE.search(prose, pos)) is not None:
        start = match.start()
        if match.group() == "$":
            pos = start + 1
            if start not in dollars or start + 1 == n or prose[start + 1].isspace():
                continue
            k = bisect.bisect_right(closers, start + 1)
            if k == len(closers) or not same_paragraph(start, closers[k]):
                continue
            end = closers[k]
            inner = bisect.bisect_right(every_dollar, start)  # the first `$` after `start`
            if every_dollar[inner] < end:
                continue  # a `$` inside: found by lookup, not by scanning the formula again
            latex = prose[start + 1 : end]
            if _MONEY.match(prose, start) and not _MATH_SIGNAL.search(latex):
                continue
            spans.append((start, end + 1, latex))
            pos = end + 1
            continue
        pos = start + 2
        if paren_close != -1 and paren_close < start:
            paren_close = prose.find("\\)", start + 2)
        if paren_close != -1 and same_paragraph(start, paren_close):
            latex = prose[start + 2 : paren_close]
            if latex.strip():
                spans.append((start, paren_close + 2, latex))
                pos = paren_close + 2
    return spans


def brace_depth(latex: str) -> int | None:
    """Deepest brace nesting in `latex`, or None when its braces are unbalanced."""
    depth = deepest = 0
    escaped = False
    for ch in latex:
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == "{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch == "}":
            depth -= 1
            if depth < 0:
                return None
    return deepest if depth == 0 else None

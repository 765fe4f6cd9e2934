"""Answer assembly: display math as `[formula N]` lines plus PNGs, inline math as Unicode."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from .discord_limits import ATTACHMENTS_PER_MESSAGE
from .formula_png import render_latex_png
from .images import Image, alt_text
from .spans import display_spans, outside_code
from .unicode import formula_text, to_discord_text

__all__ = ["FORMULA_BUDGET_SECONDS", "PreparedAnswer", "formulas_as_code", "prepare_answer"]

log = logging.getLogger(__name__)

FORMULA_BUDGET_SECONDS = 3.0  # time to draw all the formula images of one answer


def _placeholder(number: int) -> str:
    return f"[formula {number}]"


def _split_display(text: str) -> list[str | tuple[str]]:
    """`text` as prose strings and 1-tuples `(latex,)` for display blocks outside code."""
    parts: list[str | tuple[str]] = []
    prose: list[str] = []
    for start, end, is_code in outside_code(text):
        chunk = text[start:end]
        if is_code:
            prose.append(chunk)
            continue
        pos = 0
        for d_start, d_end, latex in display_spans(chunk):
            prose.append(chunk[pos:d_start])
            parts.append("".join(prose))
            parts.append((latex,))
            prose = []
            pos = d_end
        prose.append(chunk[pos:])
    parts.append("".join(prose))
    return parts


def _join_blocks(parts: list[str | tuple[str]], block: Callable[[str], str]) -> str:
    """Join prose with `block(latex)` for each display block, each block on lines of its own.

    Built as a list of pieces (the text is joined once), so it is linear in the answer's length
    however many blocks it has.
    """
    out: list[str] = []
    after_block = False
    for part in parts:
        if isinstance(part, str):
            if after_block:
                part = part.lstrip(" \t")
                if part and not part.startswith("\n"):
                    part = "\n" + part
                after_block = not part
            out.append(part)
            continue
        while out and not out[-1].rstrip(" \t"):
            out.pop()  # only blanks: nothing to keep before the block
        if out:
            out[-1] = out[-1].rstrip(" \t")
            if not out[-1].endswith("\n"):
                out.append("\n")
        out.append(block(part[0]))
        after_block = True
    return "".join(out)


def _code_block(latex: str) -> str:
    # Display math is only found outside code, so `latex` holds no ``` that could close this.
    return f"```latex\n{latex}\n```"


@dataclass(frozen=True)
class PreparedAnswer:
    """An answer ready for Discord: text to send and PNG images to attach.

    `images` are `formula-1.png`, `formula-2.png`, …, each described by its formula in plain
    text; the text shows `[formula N]` where image N belongs.
    """

    text: str
    images: tuple[Image, ...] = ()


def prepare_answer(
    text: str,
    *,
    budget: float = FORMULA_BUDGET_SECONDS,
    clock: Callable[[], float] = time.monotonic,
) -> PreparedAnswer:
    """Make a model's Markdown answer Discord-ready: display math as images, inline as Unicode.

    Each display formula that renders becomes a `[formula N]` line plus the attachment
    `formula-N.png` (numbered by image), described by the formula in plain text. One that
    does not render, or beyond the first `ATTACHMENTS_PER_MESSAGE` images (one Discord
    message's worth), is kept as its LaTeX source in a ```latex code block. The images of one
    answer share a time budget of `budget` seconds (as `clock` tells): once it is spent, the
    remaining formulas are shown as code, and so is a formula whose drawing ran past it. The
    rest of the text then goes through `to_discord_text`.
    Rendering is CPU work (tens of milliseconds per formula): call this from a worker thread,
    e.g. `await asyncio.to_thread(prepare_answer, t)`.
    """
    parts = _split_display(text)
    images: list[Image] = []
    deadline = clock() + budget

    def block(latex: str) -> str:
        if len(images) < ATTACHMENTS_PER_MESSAGE and clock() < deadline:
            png = render_latex_png(latex)
            if png is not None and clock() <= deadline:
                name = f"formula-{len(images) + 1}.png"
                images.append(Image(name, png, alt_text(formula_text(latex))))
                return _placeholder(len(images))
            if png is not None:
                log.info("a formula overran the answer's %.1f s image budget", budget)
        return _code_block(latex)

    joined = _join_blocks(parts, block)
    return PreparedAnswer(text=to_discord_text(joined), images=tuple(images))


def formulas_as_code(text: str) -> PreparedAnswer:
    """`text` with every display formula as a ```latex code block and inline math as written:
    what an answer shows when its rendering could not be finished in time. Linear in `text`."""
    return PreparedAnswer(text=_join_blocks(_split_display(text), _code_block))

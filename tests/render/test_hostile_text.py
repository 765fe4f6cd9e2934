"""Hostile answer text: splitting and span scanning stay linear in the answer's length."""

from __future__ import annotations

import gc
import sys
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

import pytest

from bot.render import spans, splitting
from bot.render.spans import code_spans, display_spans, inline_spans
from bot.render.splitting import split_message

# Discord's limit, a fact of its API (not the code's constant).
DISCORD_MESSAGE_CHARS = 2000
SIZE = 45_000  # the answer size that froze the bot in issue #12

BOMBS = {
    "unclosed display openers": "\\[\n",
    "unclosed $$ openers": "$$\n",
    "unclosed fences": "```\n",
    "unclosed tilde fences": "~~~x\n",
    "dollars that never close": "$a ",
    "inline parens": "\\(a ",
    "backtick pairs": "``a ",
    "one-line display blocks": "\\[x\\]\n",
}


def bomb(unit: str, size: int) -> str:
    text = (unit * (size // len(unit) + 1))[:size]
    return text + "x$"  # one closer at the very end: every opener finds a formula full of `$`


def lines_run(function: Callable[[str], Any], text: str, modules: tuple[Any, ...]) -> int:
    """Python lines executed in `modules` while `function(text)` runs: a count of work done
    that does not depend on the machine's speed or load."""
    files = {module.__file__ for module in modules}
    count = 0

    def tracer(frame: FrameType, event: str, arg: Any) -> Any:
        nonlocal count
        if frame.f_code.co_filename not in files:
            return None
        if event == "line":
            count += 1
        return tracer

    sys.settrace(tracer)
    try:
        function(text)
    finally:
        sys.settrace(None)
    return count


def cpu_seconds(function: Callable[[str], Any], *texts: str) -> list[float]:
    """For each text, the least CPU time of five calls (the least is the one least disturbed
    by other processes), the texts taking turns so that a busy spell hits them alike; with
    the garbage collector paused: its passes cost in proportion to the whole test process's
    heap, not to the text."""
    best = [float("inf")] * len(texts)
    gc.collect()
    gc.disable()
    try:
        for _ in range(5):
            for index, text in enumerate(texts):
                start = time.process_time()
                function(text)
                best[index] = min(best[index], time.process_time() - start)
    finally:
        gc.enable()
    return best


@pytest.mark.parametrize("unit", BOMBS.values(), ids=BOMBS.keys())
def test_splitting_work_grows_linearly(unit: str) -> None:
    small = lines_run(split_message, bomb(unit, SIZE), (splitting,))
    large = lines_run(split_message, bomb(unit, 2 * SIZE), (splitting,))
    assert large <= 2.2 * small, (small, large)  # quadratic work would be 4x


@pytest.mark.parametrize("unit", BOMBS.values(), ids=BOMBS.keys())
def test_span_scanning_work_grows_linearly(unit: str) -> None:
    def scan(text: str) -> None:
        code_spans(text)
        display_spans(text)
        inline_spans(text)

    small = lines_run(scan, bomb(unit, SIZE), (spans,))
    large = lines_run(scan, bomb(unit, 2 * SIZE), (spans,))
    assert large <= 2.2 * small, (small, large)


@pytest.mark.parametrize("unit", BOMBS.values(), ids=BOMBS.keys())
def test_hostile_text_cpu_time_grows_linearly(unit: str) -> None:
    """Work done inside C (a `str` search per opener) is not seen by line counts: CPU time at
    twice the size must stay well under the 4x of quadratic work."""

    def both(text: str) -> None:
        split_message(text)
        inline_spans(text)
        display_spans(text)

    small, large = cpu_seconds(both, bomb(unit, 2 * SIZE), bomb(unit, 4 * SIZE))
    assert large <= 3.0 * small + 0.005, (small, large)


@pytest.mark.parametrize("unit", BOMBS.values(), ids=BOMBS.keys())
def test_hostile_text_splits_within_discord_limit(unit: str) -> None:
    chunks = split_message(bomb(unit, SIZE))
    assert chunks
    assert all(0 < len(chunk) <= DISCORD_MESSAGE_CHARS for chunk in chunks)

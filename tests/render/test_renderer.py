"""Tests of the `Renderer`: answers rendered in worker processes, and sent even when a worker
overruns."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator

import pytest

from bot.render.answer import PreparedAnswer, prepare_answer
from bot.render.renderer import Renderer
from bot.workers.pool import WorkerFunction

HERE = "tests.render.test_renderer"


def spin(text: str) -> PreparedAnswer:
    """A rendering that never ends (in a worker: the pool must kill it)."""
    while True:
        pass


def slow_first(text: str) -> PreparedAnswer:
    """Takes a second for the text "first", no time for the others."""
    if text == "$first$":
        time.sleep(1.0)
    return PreparedAnswer(text=text)


def where(text: str) -> PreparedAnswer:
    """Which process rendered `text`."""
    return PreparedAnswer(text=str(os.getpid()))


@pytest.fixture
async def renderer() -> AsyncIterator[Renderer]:
    async with Renderer(max_workers=1) as real:
        yield real


async def test_math_is_rendered_in_a_worker_process(renderer: Renderer) -> None:
    prepared = await renderer.prepare("Since $x^2 \\ge 0$:\n$$\\frac{a}{b}$$\ndone")
    assert "x² ≥ 0" in prepared.text
    assert "[formula 1]" in prepared.text
    [image] = prepared.images
    assert image.png.startswith(b"\x89PNG\r\n\x1a\n")


async def test_the_bot_process_renders_nothing_itself() -> None:
    async with Renderer(max_workers=1, prepare=WorkerFunction(HERE, "where"), warm_up=None) as r:
        prepared = await r.prepare("$x$")
    assert int(prepared.text) != os.getpid()


async def test_a_short_answer_is_rendered_before_long_ones_waiting_with_it() -> None:
    done: list[int] = []
    async with Renderer(
        max_workers=1, prepare=WorkerFunction(HERE, "slow_first"), warm_up=None
    ) as renderer:

        async def render(text: str) -> None:
            await renderer.prepare(text)
            done.append(len(text))

        # The only worker is busy for a second; meanwhile two long answers, then a short one.
        texts = ["$first$", "$x$ " * 2_500, "$y$ " * 2_000, "$2+2=4$"]
        await asyncio.gather(*(render(text) for text in texts))
    assert done == [len(text) for text in (texts[0], texts[3], texts[2], texts[1])]


async def test_an_overrunning_render_still_gives_the_answer_with_formulas_as_code() -> None:
    spinning = Renderer(timeout=0.5, max_workers=1, prepare=WorkerFunction(HERE, "spin"))
    async with spinning:
        prepared = await spinning.prepare("So $y = 2$ and\n$$x^2 + 1$$\nis positive.")
    assert prepared.images == ()
    assert "```latex\nx^2 + 1\n```" in prepared.text
    assert "So $y = 2$ and" in prepared.text  # inline math as written
    assert prepared.text.endswith("is positive.")


PLAIN = (
    "Yes. **Bold**, _italic_, ~~struck~~ and a list:\n- one\n- two",
    "```python\nprint('code')\n```\nand `inline` code, 5 < 6 > 4, 100% {braces}",
)


@pytest.mark.parametrize("text", PLAIN)
async def test_text_without_math_is_answered_as_the_worker_would_without_one(text: str) -> None:
    async with Renderer(max_workers=1, prepare=WorkerFunction(HERE, "where"), warm_up=None) as r:
        prepared = await r.prepare(text)
    assert prepared == prepare_answer(text)  # what the real rendering gives

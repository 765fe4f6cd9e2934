"""Tests of `render`: a long answer's work is bounded by what its messages show."""

from __future__ import annotations

import re

from bot.discord_app.replies import Document, render
from bot.render.answer import PreparedAnswer
from bot.render.renderer import Renderer
from bot.workers.pool import WorkerFunction

# What five Discord messages hold (Discord: 2,000 characters a message), the most an answer shows.
FIVE_MESSAGES = 5 * 2000


def counted(text: str) -> PreparedAnswer:
    """Stands in for the converter (in the worker): says how many characters it was handed."""
    return PreparedAnswer(text=f"converted {len(text)} characters")


async def test_a_200_kb_answer_converts_only_what_five_messages_show() -> None:
    step = "Step {}: $x_{{{}}}^2 + y^2$ is " + "positive, " * 20
    text = "\n\n".join(step.format(i, i) for i in range(1100))
    assert len(text) > 200_000
    counting = Renderer(
        max_workers=1, prepare=WorkerFunction("tests.discord_app.test_replies", "counted")
    )
    async with counting:
        pieces = await render(counting, text)
    match = re.search(r"converted (\d+) characters", pieces[0].text)
    assert match is not None
    assert int(match.group(1)) <= FIVE_MESSAGES + len("\n```")
    [document] = [f for p in pieces for f in p.images if isinstance(f, Document)]
    assert document.name == "answer.md"
    assert document.data == text.encode()  # the whole answer, as written
    assert "answer.md" in pieces[-1].text  # and the user is told so

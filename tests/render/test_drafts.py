"""The incremental draft renderer: Unicode math while an answer is written, bounded work."""

from __future__ import annotations

import pytest

from bot.render.drafts import DraftRenderer
from bot.render.unicode import to_discord_text
from tests.render.samples import ROOTS

ANSWER = (
    "The derivative of $x^3$ is $3x^2$, by the power rule; `$keep$` is code.\n\n"
    "```python\nprint('$x^2$')\n```\n"
    "It costs $5 and $10, and $\\frac{1}{2}$ is a half.\n" + ROOTS + "\n"
)


def fed(text: str, step: int, renderer: DraftRenderer | None = None) -> list[str]:
    """The drafts shown while `text` arrives `step` characters at a time."""
    renderer = renderer or DraftRenderer(limit=100_000)
    return [renderer.update(text[i : i + step]) for i in range(0, len(text), step)]


def test_closed_formulas_show_as_unicode_and_an_open_one_stays_raw() -> None:
    renderer = DraftRenderer(limit=1000)
    assert renderer.update("so $x^2$ grows and $y") == "so x² grows and $y"
    assert renderer.update("^2$ too.") == "so x² grows and y² too."


@pytest.mark.parametrize("step", [1, 3, 7, 50])
def test_a_whole_answer_drafts_to_what_the_final_text_shows(step: int) -> None:
    assert fed(ANSWER, step)[-1] == to_discord_text(ANSWER)


def test_math_in_code_is_never_converted() -> None:
    drafts = fed("see `$x^2$` and\n```\n$y^2$\n```\nthen $z^2$.", 2)
    assert "`$x^2$`" in drafts[-1] and "\n$y^2$\n" in drafts[-1] and "z²" in drafts[-1]
    assert not any("x²" in d or "y²" in d for d in drafts)


def test_the_heading_stays_on_top_and_a_reset_starts_the_answer_over() -> None:
    renderer = DraftRenderer(limit=1000, heading="> what is $x^2$ at 3?")
    assert renderer.update("Let me compute") == "> what is x² at 3?\nLet me compute"
    renderer.reset()
    assert renderer.update("It is $9$.") == "> what is x² at 3?\nIt is 9."
    assert renderer.show("*calculating…*") == "> what is x² at 3?\n*calculating…*"


def test_only_the_first_limit_characters_are_drafted() -> None:
    renderer = DraftRenderer(limit=10)
    renderer.update("0123456789abcdef")
    assert renderer.update("more") == "0123456789"


def lines(count: int) -> str:
    return "".join(f"Step {k}: $x^{{{k}}} + \\alpha_{k}$ grows.\n" for k in range(count))


@pytest.mark.parametrize("step", [5, 40])
def test_work_per_update_is_bounded_by_the_new_text_not_the_answer(step: int) -> None:
    """Characters given to the LaTeX converter per update, counted: the same bound for a short
    and a 20 times longer answer, and each character converted exactly once."""
    worst: dict[int, int] = {}
    for count in (20, 400):
        text = lines(count)
        renderer = DraftRenderer(limit=100_000)
        before, per_update = 0, []
        for i in range(0, len(text), step):
            renderer.update(text[i : i + step])
            per_update.append(renderer.converted - before)
            before = renderer.converted
        assert renderer.converted == len(text)
        formula = len("$x^{399} + \\alpha_399$")
        assert max(per_update) <= step + formula + 1  # + a `$` waiting for the next character
        worst[count] = max(per_update)
    assert worst[400] <= worst[20] + 6  # six more digits at most: longer formula numbers

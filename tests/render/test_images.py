"""Alt text of the pictures shown with an answer: the formula in words, within Discord's limit."""

from __future__ import annotations

from bot.render.answer import prepare_answer
from bot.render.images import alt_text
from tests.render.samples import QUADRATIC

DISCORD_DESCRIPTION_LIMIT = 1024  # characters of an attachment's description (Discord's API)


def test_a_formula_image_is_described_by_the_formula_in_plain_text() -> None:
    [image] = prepare_answer(f"The roots:\n$${QUADRATIC}$$").images
    assert image.description == "x = (-b ± √(b² - 4ac))/(2a)"


def test_alt_text_is_one_line_cut_to_discords_limit() -> None:
    assert alt_text("a\n  b\tc") == "a b c"
    long = alt_text("x + " * 2000)
    assert len(long) == DISCORD_DESCRIPTION_LIMIT and long.endswith("…")

"""Tests of `shown_part`: a long answer's beginning, bounded, never cut inside math or code."""

from __future__ import annotations

from bot.render.shown import shown_part
from bot.render.spans import code_spans, display_spans

# What five Discord messages hold (Discord: 2,000 characters a message), the most an answer shows.
FIVE_MESSAGES = 5 * 2000
FENCE = len("\n```")


def test_an_answer_that_fits_is_kept_whole() -> None:
    text = "Short: $x^2$.\n\n$$\\int_0^1 x\\,dx$$\n" + "word " * 1000
    assert shown_part(text) == text


def test_a_long_answer_is_cut_to_what_five_messages_hold() -> None:
    text = "\n\n".join(f"Paragraph {i}: " + "more words here " * 20 for i in range(1000))
    assert len(text) > 300_000
    shown = shown_part(text)
    assert FIVE_MESSAGES // 2 <= len(shown) <= FIVE_MESSAGES
    assert text.startswith(shown)
    assert text[len(shown) :].lstrip(" ").startswith("\n\n")  # at a paragraph break


def test_the_cut_never_falls_inside_a_display_formula() -> None:
    formula = "$$\n" + "\n".join(f"a_{{{i}}} + b_{{{i}}} \\\\" for i in range(400)) + "\n$$"
    text = "Intro line.\n" * 600 + formula + "\nAfter.\n" * 1000
    start = text.index("$$")
    assert start < FIVE_MESSAGES < start + len(formula)  # the plain cut would fall inside it
    shown = shown_part(text)
    assert "$$" not in shown
    assert shown == text[:start].rstrip()


def test_a_code_block_cut_open_is_closed() -> None:
    code = "```python\n" + "\n".join(f"print({i})" for i in range(3000)) + "\n```"
    text = "Here is the program:\n\n" + code + "\n\nThat is all."
    shown = shown_part(text)
    assert len(shown) <= FIVE_MESSAGES + FENCE
    assert shown.endswith("\n```")
    assert len(code_spans(shown)) == 1
    assert shown.count("```") == 2  # opened and closed: one whole code block


def test_inline_formulas_are_cut_between_formulas() -> None:
    text = "$x^2$ " * 40_000  # 240 KB on one line
    shown = shown_part(text)
    assert len(shown) <= FIVE_MESSAGES
    assert shown.endswith("$x^2$")


def test_a_run_of_unclosed_openers_still_shows_text() -> None:
    text = "\\[\n" * 50_000  # not math: nothing closes them
    shown = shown_part(text)
    assert FIVE_MESSAGES // 2 <= len(shown) <= FIVE_MESSAGES
    assert display_spans(shown) == []

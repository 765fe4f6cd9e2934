"""Where code, display math and inline math are in an answer's text."""

from __future__ import annotations

from bot.render.spans import brace_depth, code_spans, display_spans, inline_spans, outside_code
from tests.render.samples import ROOTS


def test_display_spans_both_syntaxes_multiline_stripped() -> None:
    assert [latex for _, _, latex in display_spans(ROOTS)] == [
        "x = \\frac{-b \\pm \\sqrt{b^2-4ac}}{2a}",
        "\\begin{aligned}\na &= b \\\\\n  &= c\n\\end{aligned}",
    ]


def test_display_spans_skip_unclosed_and_empty_blocks() -> None:
    assert display_spans("$$ $$ empty, \\[ unclosed, $$ unclosed too") == []


def test_code_spans_cover_blocks_and_inline_code() -> None:
    text = "```\n$$inside code$$\n```\n`\\[inline code\\]`\nafter"
    assert code_spans(text) == [(0, 23), (24, 41)]
    assert list(outside_code(text)) == [
        (0, 23, True),
        (23, 24, False),
        (24, 41, True),
        (41, 47, False),
    ]


def test_inline_spans_skip_money() -> None:
    assert inline_spans("Between $5 and $10, choose $n$.") == [(27, 30, "n")]


def test_brace_depth() -> None:
    assert brace_depth("x") == 0
    assert brace_depth("\\frac{a}{b^{2}}") == 2
    assert brace_depth("\\{x\\}") == 0  # escaped braces do not count
    assert brace_depth("{x") is None and brace_depth("x}{") is None

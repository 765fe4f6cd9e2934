"""Tests of a plot request's helpers, in process: the point and function-name parsers."""

from __future__ import annotations

import pytest

from bot.tools.plotting.request import function_source, split_point


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1", ("1", None)),
        ("pi/2", ("pi/2", None)),
        ("1, 0", ("1", "0")),
        ("(1, 0)", ("1", "0")),
        ("[2, sqrt(2)]", ("2", "sqrt(2)")),
        ("(1+2)*(3)", ("(1+2)*(3)", None)),
        ("atan2(1, 2), 3", ("atan2(1, 2)", "3")),
    ],
)
async def test_split_point(text: str, expected: tuple[str, str | None]) -> None:
    assert split_point(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("y = x^2", "x^2"),
        ("f(x) = sin(x)", "sin(x)"),
        ("g_1(t)= t", "t"),
        ("sin(x) = 1/2", "sin(x) = 1/2"),
        ("y == 2", "y == 2"),
        ("x^2", "x^2"),
    ],
)
async def test_function_source(text: str, expected: str) -> None:
    assert function_source(text) == expected

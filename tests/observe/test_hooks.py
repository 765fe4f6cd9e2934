"""How a tool's answer counts in the metrics: `{"error": ...}` is an error, anything else ok."""

from __future__ import annotations

import pytest

from bot.observe.hooks import tool_outcome


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        ('{"result":"4","latex":"4"}', "ok"),
        ('{"error":"division by zero"}', "error"),
        (' {"error": "timed out after 2 s"}', "error"),
        ("{not json", "ok"),
        ("[1, 2]", "ok"),
        (None, "ok"),
    ],
)
def test_tool_outcome(result: object, expected: str) -> None:
    assert tool_outcome(result) == expected

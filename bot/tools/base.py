"""What every tool shares: its error type and its JSON answers."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["ToolError", "to_json"]


class ToolError(Exception):
    """A problem with a tool's input, worded so that the model can act on it."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


def to_json(payload: dict[str, Any]) -> str:
    """A tool's answer as the compact JSON the model reads."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False)

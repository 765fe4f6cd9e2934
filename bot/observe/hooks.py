"""The Agents SDK run hooks that report model tokens and tool calls to `Metrics`."""

from __future__ import annotations

import json
from typing import Any

from agents import Agent, ModelResponse, RunContextWrapper, RunHooks
from agents.tool import Tool

from .metrics import Metrics


class MetricsHooks(RunHooks[Any]):
    """Counts each model response's tokens and each tool call's outcome: a tool answer that
    is a JSON object with an `error` key (how mathbot's tools report failures) is `error`."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    async def on_llm_end(
        self, context: RunContextWrapper[Any], agent: Agent[Any], response: ModelResponse
    ) -> None:
        usage = response.usage
        self._metrics.tokens(usage.input_tokens, usage.output_tokens)

    async def on_tool_end(
        self, context: RunContextWrapper[Any], agent: Agent[Any], tool: Tool, result: object
    ) -> None:
        self._metrics.tool_call(tool.name, tool_outcome(result))


def tool_outcome(result: object) -> str:
    """`error` for a tool answer like `{"error": ...}`, else `ok`."""
    if isinstance(result, str) and result.lstrip().startswith("{"):
        try:
            parsed = json.loads(result)
        except ValueError:
            return "ok"
        if isinstance(parsed, dict) and "error" in parsed:
            return "error"
    return "ok"

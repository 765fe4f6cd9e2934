"""Tests of the `calculate` agent tool, through the Agents SDK."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from bot.tools.calculator.calculator import Calculator
from bot.tools.calculator.tool import calculate_tool

# One calculator (and one worker pool) for the whole module, on the module's event loop.
pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def calc() -> AsyncIterator[Calculator]:
    async with Calculator(timeout=2.0, max_workers=1, memory_mb=512) as calculator:
        yield calculator


async def test_tool_schema(calc: Calculator) -> None:
    tool = calculate_tool(calc)
    assert tool.name == "calculate"
    assert tool.params_json_schema["required"] == ["expression"]
    assert tool.params_json_schema["properties"]["expression"]["type"] == "string"
    assert "N(expr, digits)" in tool.description


async def test_tool_through_the_sdk(calc: Calculator) -> None:
    from agents import Agent, RunConfig, Runner
    from agents.items import ToolCallOutputItem
    from agents.testing import ScriptedModel, assistant_message, function_call

    model = ScriptedModel(
        [
            [function_call("calculate", {"expression": "2**100"}, call_id="call-1")],
            [function_call("calculate", {"expression": "1/0"}, call_id="call-2")],
            [assistant_message("2^100 = 1267650600228229401496703205376")],
        ]
    )
    agent = Agent(
        name="mathbot", instructions="Do math.", model=model, tools=[calculate_tool(calc)]
    )
    result = await Runner.run(agent, "What is 2^100?", run_config=RunConfig(tracing_disabled=True))
    outputs = [item.output for item in result.new_items if isinstance(item, ToolCallOutputItem)]
    assert [json.loads(output) for output in outputs] == [
        {"result": "1267650600228229401496703205376", "latex": "1267650600228229401496703205376"},
        {"error": "division by zero"},
    ]
    assert result.final_output == "2^100 = 1267650600228229401496703205376"
    # The model saw the exact tool output on its next turn.
    last_input = model.calls[-1].input
    assert any(isinstance(item, dict) and item.get("output") == outputs[0] for item in last_input)

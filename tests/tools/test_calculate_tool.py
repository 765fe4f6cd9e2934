"""Tests of the `calculate` agent tool, through the Agents SDK."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from bot.tools.budget import ToolGate, ToolLimits, UserLocks
from bot.tools.calculator.calculator import Calculator
from bot.tools.calculator.tool import calculate_tool
from bot.tools.turn_context import TurnContext

# One calculator (and one worker pool) for the whole module, on the module's event loop.
pytestmark = pytest.mark.asyncio(loop_scope="module")
GATE = ToolGate(ToolLimits(), UserLocks())


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def calc() -> AsyncIterator[Calculator]:
    async with Calculator(timeout=120.0, max_workers=1, memory_mb=512) as calculator:
        yield calculator


async def test_tool_schema(calc: Calculator) -> None:
    tool = calculate_tool(calc, GATE)
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
        name="mathbot", instructions="Do math.", model=model, tools=[calculate_tool(calc, GATE)]
    )
    result = await Runner.run(
        agent, "What is 2^100?", context=TurnContext(), run_config=RunConfig(tracing_disabled=True)
    )
    outputs = [item.output for item in result.new_items if isinstance(item, ToolCallOutputItem)]
    assert [json.loads(output) for output in outputs] == [
        {"result": "1267650600228229401496703205376", "latex": "1267650600228229401496703205376"},
        {"error": "division by zero"},
    ]
    assert result.final_output == "2^100 = 1267650600228229401496703205376"
    # The model saw the exact tool output on its next turn.
    last_input = model.calls[-1].input
    assert any(isinstance(item, dict) and item.get("output") == outputs[0] for item in last_input)


async def test_the_description_stays_compact_and_names_the_families(calc: Calculator) -> None:
    description = calculate_tool(calc, GATE).description
    assert len(description.encode()) <= 2_200  # 1,889 bytes before issue #13
    for name in ("dsolve", "solveset", "mean", "normal_cdf", "convert_to", "modinv", "linsolve"):
        assert name in description


CLAIMS = [
    ("2x + 3 = 7 => x = 2", "verified", "{2}"),
    ("x^2 = 4 => x = 2", "false", "-2"),
    ("d/dx x^3 = 3x^2", "verified", "verified"),
    ("d/dx x^3 = 3x", "false", "at x = 2"),
    ("(x+1)^2 = x^2+2x+1", "verified", "identical"),
    ("(x+1)^2 = x^2+1", "false", "left side is 9 and the right side is 5"),
    ("3/4 + 1/6 = 11/12", "verified", "verified"),
    ("2 + 2 = 5", "false", "differ"),
    ("x^2 - 5x + 6 = 0 ⇒ (x-2)(x-3) = 0", "verified", "{2, 3}"),
    ("2x < 6 => x < 3", "verified", "verified"),
    ("sqrt(x^2) = x", "false", "x = -1"),
]


@pytest.mark.parametrize(("claim", "verdict", "detail"), CLAIMS)
async def test_check_verifies_one_step(
    calc: Calculator, claim: str, verdict: str, detail: str
) -> None:
    answer = await calc.check_dict(claim)
    assert answer["verdict"] == verdict, answer
    assert detail in answer["detail"]


async def test_check_refuses_several_steps_and_bad_claims(calc: Calculator) -> None:
    assert "one step at a time" in (await calc.check_dict("a = 1 => b = 2 => c = 3"))["error"]
    assert "error" in await calc.check_dict("")
    assert "error" in await calc.check_dict("__import__('os')")


async def test_check_tool_through_the_sdk(calc: Calculator) -> None:
    from agents import Agent, RunConfig, Runner
    from agents.items import ToolCallOutputItem
    from agents.testing import ScriptedModel, assistant_message, function_call

    from bot.tools.calculator.tool import check_tool

    model = ScriptedModel(
        [
            [function_call("check", {"claim": "2x + 3 = 7 => x = 2"}, call_id="c1")],
            [function_call("check", {"claim": "(x+1)^2 = x^2 + 1"}, call_id="c2")],
            [assistant_message("2x + 3 = 7 ⇒ x = 2 ✓")],
        ]
    )
    agent = Agent(
        name="mathbot", instructions="Do math.", model=model, tools=[check_tool(calc, GATE)]
    )
    result = await Runner.run(
        agent, "Solve 2x+3=7", context=TurnContext(), run_config=RunConfig(tracing_disabled=True)
    )
    outputs = [
        json.loads(item.output) for item in result.new_items if isinstance(item, ToolCallOutputItem)
    ]
    assert [o["verdict"] for o in outputs] == ["verified", "false"]
    assert result.final_output.endswith("✓")

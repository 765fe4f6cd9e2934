"""Tests of the `plot` agent tool, through the Agents SDK: its schema, answers and pictures."""

from __future__ import annotations

import json
import struct
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from bot.tools.budget import ToolGate, ToolLimits, UserLocks
from bot.tools.plotting.plotter import Plotter
from bot.tools.plotting.request import PlotLimits
from bot.tools.plotting.tool import plot_tool
from bot.tools.turn_context import TurnContext

# One plotter (and one worker pool) for the whole module, on the module's event loop.
pytestmark = pytest.mark.asyncio(loop_scope="module")

WIDTH, HEIGHT = PlotLimits().width_px, PlotLimits().height_px
GATE = ToolGate(ToolLimits(), UserLocks())


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def plotter() -> AsyncIterator[Plotter]:
    async with Plotter(timeout=120.0, max_workers=1, memory_mb=768) as p:
        yield p


def png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert png[12:16] == b"IHDR"
    width, height = struct.unpack(">II", png[16:24])
    return width, height


async def test_tool_schema_is_strict(plotter: Plotter) -> None:
    from agents.strict_schema import ensure_strict_json_schema

    tool = plot_tool(plotter, GATE)
    schema = tool.params_json_schema
    assert tool.name == "plot" and tool.strict_json_schema
    assert schema["additionalProperties"] is False
    assert sorted(schema["required"]) == sorted(schema["properties"])
    assert "ctx" not in schema["properties"]
    properties = schema["properties"]
    assert properties["functions"] == {
        "default": [],
        "description": properties["functions"]["description"],
        "items": {"type": "string"},
        "title": "Functions",
        "type": "array",
    }
    assert properties["x_min"]["type"] == "string"
    assert properties["data"]["items"] == {"type": "number"}
    assert properties["data_kind"]["enum"] == ["line", "scatter", "bar", "histogram"]
    assert properties["log_y"]["type"] == "boolean"
    assert all(p.get("description") for p in properties.values())
    assert ensure_strict_json_schema(json.loads(json.dumps(schema))) == schema
    assert "mark_points" in tool.description or "JSON" in tool.description


async def test_tool_through_the_sdk(plotter: Plotter) -> None:
    from agents import Agent, RunConfig, Runner
    from agents.items import ToolCallOutputItem
    from agents.testing import ScriptedModel, assistant_message, function_call

    model = ScriptedModel(
        [
            [
                function_call(
                    "plot",
                    {"functions": ["sin(x)"], "x_min": "0", "x_max": "2*pi", "title": "sin"},
                    call_id="p1",
                )
            ],
            [function_call("plot", {"functions": ["sqrt(-1-x^2)"]}, call_id="p2")],
            [assistant_message("Here is sin(x) on [0, 2π].")],
        ]
    )
    agent = Agent(
        name="mathbot", instructions="Plot.", model=model, tools=[plot_tool(plotter, GATE)]
    )
    context = TurnContext()
    result = await Runner.run(
        agent, "plot sin", context=context, run_config=RunConfig(tracing_disabled=True)
    )
    assert result.final_output == "Here is sin(x) on [0, 2π]."
    assert len(context.images) == 1
    [image] = context.images
    assert image.name == "plot-1.png" and png_size(image.png) == (WIDTH, HEIGHT)
    outputs = [item.output for item in result.new_items if isinstance(item, ToolCallOutputItem)]
    first, second = (json.loads(output) for output in outputs)
    assert first["image"] == "plot-1.png"
    assert first["functions"][0]["f"] == "sin(x)" and first["x_range"] == [0, 6.28319]
    assert second == {"error": second["error"]} and "not a real number" in second["error"]
    for output in outputs:  # the model sees compact text, never the picture
        assert isinstance(output, str) and len(output) < 2_000
        assert "PNG" not in output and "\\x89" not in output
    last_input = model.calls[-1].input
    assert any(isinstance(item, dict) and item.get("output") == outputs[0] for item in last_input)


async def test_tool_reports_when_the_turn_has_no_room_for_images(plotter: Plotter) -> None:
    from agents import RunContextWrapper
    from agents.tool_context import ToolContext

    tool = plot_tool(plotter, GATE)
    context = TurnContext(images=[(f"x-{i}.png", b"") for i in range(10)])
    arguments = json.dumps({"functions": ["x"]})
    ctx = ToolContext(
        context=context, tool_name="plot", tool_call_id="c1", tool_arguments=arguments
    )
    assert isinstance(ctx, RunContextWrapper)
    summary = json.loads(await tool.on_invoke_tool(ctx, arguments))
    assert summary["image"] is None and "not attached" in summary["note"]
    assert len(context.images) == 10


async def test_tool_accepts_what_models_commonly_send_instead(plotter: Plotter) -> None:
    from agents.tool_context import ToolContext

    tool = plot_tool(plotter, GATE)
    context = TurnContext()
    arguments = json.dumps(
        {
            "functions": "x^2",
            "x_min": 0,
            "x_max": 2.5,
            "samples": 0,
            "mark_points": [1],
            "title": None,
            "log_y": None,
            "data": None,
            "data_kind": None,
        }
    )
    ctx = ToolContext(
        context=context, tool_name="plot", tool_call_id="c1", tool_arguments=arguments
    )
    summary = json.loads(await tool.on_invoke_tool(ctx, arguments))
    assert summary["x_range"] == [0, 2.5]
    assert summary["marked"] == [{"x": 1, "y": 1}]
    assert [image.name for image in context.images] == ["plot-1.png"]

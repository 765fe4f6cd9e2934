"""Graphs end to end: the model calls `plot`, the picture reaches Discord, memory stays small."""

from __future__ import annotations

import json
import struct

from bot.memory.keys import user_session_id
from bot.tools.plotting.request import PlotLimits
from tests.fakes.llm_server import FakeLLM
from tests.harness import ALICE, ALICE_DM, World

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(data: bytes) -> tuple[int, int]:
    assert data.startswith(PNG_SIGNATURE)
    width, height = struct.unpack(">II", data[16:24])  # the IHDR chunk comes first
    return width, height


async def test_a_plot_reaches_discord_as_a_png_of_the_configured_size(world: World) -> None:
    world.llm.tool_call(
        "plot",
        {"functions": ["sin(x)", "cos(x)"], "x_min": "0", "x_max": "2*pi", "title": "sin, cos"},
        call_id="p1",
    )
    world.llm.reply("Here is the graph of sin and cos.")
    await world.discord.user_message(
        channel_id=ALICE_DM, author_id=ALICE, content="plot sin(x) and cos(x) from 0 to 2π"
    )
    [answer] = await world.discord.wait_for_messages(ALICE_DM, 1, timeout=20)
    assert answer["content"] == "Here is the graph of sin and cos."
    assert [a["filename"] for a in answer["attachments"]] == ["plot-1.png"]
    upload = next(r for r in world.discord.requests if r.files)
    name, data, _ = upload.files[0]
    limits = PlotLimits()
    assert name == "plot-1.png" and png_size(data) == (limits.width_px, limits.height_px)

    tool = next(m for m in FakeLLM.messages(world.llm.requests[1]) if m["role"] == "tool")
    summary = json.loads(tool["content"])
    assert summary["image"] == "plot-1.png"
    assert [f["f"] for f in summary["functions"]] == ["sin(x)", "cos(x)"]
    stored = json.dumps(world.rows(user_session_id(ALICE)))
    assert "plot-1.png" in stored and "iVBOR" not in stored and len(stored) < 10_000


async def test_a_bad_plot_request_gets_an_error_the_model_can_act_on(world: World) -> None:
    world.llm.tool_call("plot", {"functions": ["__import__('os')"]}, call_id="p1")
    world.llm.reply("I could not draw that.")
    await world.discord.user_message(channel_id=ALICE_DM, author_id=ALICE, content="plot os")
    [answer] = await world.discord.wait_for_messages(ALICE_DM, 1, timeout=20)
    assert answer["attachments"] == []
    tool = next(m for m in FakeLLM.messages(world.llm.requests[1]) if m["role"] == "tool")
    assert "error" in json.loads(tool["content"])

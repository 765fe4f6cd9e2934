"""Exact math end to end: the model calls `calculate`, and math reads well on Discord."""

from __future__ import annotations

import json

from tests.fakes.llm_server import FakeLLM
from tests.harness import ALICE, ALICE_DM, World

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def tool_outputs(request: dict) -> list[dict]:
    return [json.loads(m["content"]) for m in FakeLLM.messages(request) if m["role"] == "tool"]


async def ask_in_dm(world: World, text: str) -> None:
    await world.discord.user_message(channel_id=ALICE_DM, author_id=ALICE, content=text)


async def test_the_model_calls_calculate_and_the_answer_reaches_discord(world: World) -> None:
    world.llm.tool_call("calculate", {"expression": "2**100"}, call_id="call_a")
    world.llm.reply("2^100 = 1267650600228229401496703205376")
    await ask_in_dm(world, "what is 2^100?")
    [answer] = await world.discord.wait_for_messages(ALICE_DM, 1, timeout=15)
    assert answer["content"] == "2^100 = 1267650600228229401496703205376"
    first, second = world.llm.requests
    assert [t["function"]["name"] for t in first["tools"]] == ["calculate", "check", "plot"]
    [output] = tool_outputs(second)
    assert output["result"] == "1267650600228229401496703205376"
    assert output["latex"] == "1267650600228229401496703205376"


async def test_hostile_expression_fails_fast_and_the_bot_stays_responsive(world: World) -> None:
    world.llm.tool_call("calculate", {"expression": "factorial(10**8)"}, call_id="c1")
    world.llm.tool_call("calculate", {"expression": "__import__('os').system('id')"}, call_id="c2")
    world.llm.reply("That is too large to compute.")
    await ask_in_dm(world, "what is (10^8)!?")
    await world.discord.wait_for_messages(ALICE_DM, 1, timeout=15)
    errors = [tool_outputs(r) for r in world.llm.requests[1:]]
    assert "error" in errors[0][0] and "too large" in errors[0][0]["error"]
    assert "error" in errors[1][-1]
    world.llm.tool_call("calculate", {"expression": "2+2"}, call_id="c3")
    world.llm.reply("4")
    await ask_in_dm(world, "and 2+2?")
    answers = await world.discord.wait_for_messages(ALICE_DM, 2, timeout=15)
    assert answers[1]["content"] == "4"
    assert tool_outputs(world.llm.requests[-1])[-1]["result"] == "4"


async def test_display_math_arrives_as_a_png_and_inline_math_as_unicode(world: World) -> None:
    # The per-answer image budget is tested on its own clock (tests/render/test_answer.py); the
    # renderer's workers preload matplotlib and draw a formula before the first answer.
    world.llm.reply(
        "The roots are\n$$x = \\frac{-b \\pm \\sqrt{b^2 - 4ac}}{2a}$$\nwhen $a \\neq 0$ and $x^2$."
    )
    await ask_in_dm(world, "quadratic formula?")
    [answer] = await world.discord.wait_for_messages(ALICE_DM, 1, timeout=15)
    assert "[formula 1]" in answer["content"]
    assert "a ≠ 0" in answer["content"] and "x²" in answer["content"]
    assert "\\frac" not in answer["content"]
    [attachment] = answer["attachments"]
    assert attachment["filename"] == "formula-1.png"
    upload = next(r for r in world.discord.requests if r.files)
    name, data, _ = upload.files[0]
    assert name == "formula-1.png" and data.startswith(PNG_SIGNATURE)


async def test_unrenderable_display_math_is_kept_as_source(world: World) -> None:
    world.llm.reply("Here:\n$$\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}$$")
    await ask_in_dm(world, "a matrix")
    [answer] = await world.discord.wait_for_messages(ALICE_DM, 1, timeout=15)
    assert answer["attachments"] == []
    assert "```latex" in answer["content"] and "pmatrix" in answer["content"]


FAMILY_CALLS = [
    ("dsolve(y'' + y = 0, y(x), ics=[y(0) = 1, y'(0) = 0])", "Eq(y(x), cos(x))"),
    ("|x - 1| < 3", "(-2, 4)"),
    ("variance([2, 4, 4, 4, 5, 5, 7, 9])", "32/7"),
    ("convert_to(5*mile, km)", "25146*kilometer/3125"),
    ("(1+2i)*(3-i)", "5 + 5*I"),
    ("sin(30°) + 2²²", "8388609/2"),
    ("Matrix([[1, 2], [3, 4]]).inv()", "Matrix([[-2, 1], [3/2, -1/2]])"),
]


async def test_each_family_reaches_discord_through_a_scripted_turn(world: World) -> None:
    for n, (expression, _) in enumerate(FAMILY_CALLS):
        world.llm.tool_call("calculate", {"expression": expression}, call_id=f"f{n}")
    world.llm.reply("y = cos x ✓")
    await ask_in_dm(world, "a bit of everything")
    [answer] = await world.discord.wait_for_messages(ALICE_DM, 1, timeout=30)
    assert answer["content"] == "y = cos x ✓"
    outputs = [tool_outputs(r)[-1] for r in world.llm.requests[1:]]
    assert [o.get("result") for o in outputs] == [result for _, result in FAMILY_CALLS]
    assert "sample" in outputs[2]["note"] and "imaginary unit" in outputs[4]["note"]

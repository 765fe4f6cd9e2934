"""Tool floods end to end: a turn's tool budget, and one user never takes every worker."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from bot.tools.calculator.calculator import Calculator
from tests.fakes.llm_server import FakeLLM
from tests.harness import ALICE, ALICE_DM, BOB, BOB_DM, World

#: What the bot promises (docs/security.md): at most this many tool calls per question.
CALLS_PER_QUESTION = 12
HARD_INTEGRAL = "integrate(exp(sin(x**3))*log(x)**7/(1+x**17), x)"


@pytest.fixture
async def calculator() -> AsyncIterator[Calculator]:
    """Two workers, as in production, that give up on a calculation after 1.5 s."""
    calc = Calculator(timeout=1.5, max_workers=2)
    yield calc
    await calc.close()


def tool_outputs(request: dict) -> list[dict]:
    return [json.loads(m["content"]) for m in FakeLLM.messages(request) if m["role"] == "tool"]


async def test_a_turn_that_calls_the_calculator_30_times_gets_the_budget_error(
    world: World,
) -> None:
    world.llm.tool_calls([("calculate", {"expression": f"{n}*3"}, f"c{n}") for n in range(30)])
    world.llm.tool_call("calculate", {"expression": "2+2"}, call_id="one-more")
    world.llm.reply("Here is what I could compute.")
    await world.discord.user_message(channel_id=ALICE_DM, author_id=ALICE, content="flood")
    [answer] = await world.discord.wait_for_messages(ALICE_DM, 1, timeout=30)
    assert answer["content"] == "Here is what I could compute."
    flood = tool_outputs(world.llm.requests[1])
    assert len(flood) == 30
    assert [o.get("result") for o in flood[:CALLS_PER_QUESTION]] == [
        str(3 * n) for n in range(CALLS_PER_QUESTION)
    ]
    for output in [*flood[CALLS_PER_QUESTION:], tool_outputs(world.llm.requests[2])[-1]]:
        assert "tool budget of this question is used up" in output["error"]
        assert "answer with what you have" in output["error"]
    # The next question has a budget of its own.
    world.llm.tool_call("calculate", {"expression": "2+2"}, call_id="next")
    world.llm.reply("4")
    await world.discord.user_message(channel_id=ALICE_DM, author_id=ALICE, content="2+2?")
    await world.discord.wait_for_messages(ALICE_DM, 2, timeout=15)
    assert tool_outputs(world.llm.requests[-1])[-1]["result"] == "4"


async def test_another_users_2_plus_2_is_answered_while_one_user_runs_two_hostile_calculations(
    world: World,
) -> None:
    await world.calculator.start()
    world.llm.tool_calls(
        [("calculate", {"expression": HARD_INTEGRAL}, "h1"),
         ("calculate", {"expression": HARD_INTEGRAL}, "h2")]
    )  # fmt: skip
    world.llm.tool_call("calculate", {"expression": "2+2"}, call_id="bob")
    world.llm.reply("2 + 2 = 4")
    world.llm.reply("That integral has no closed form I can compute in time.")
    await world.discord.user_message(channel_id=ALICE_DM, author_id=ALICE, content="integrate!")
    await world.llm.wait_for_requests(1, timeout=15)
    await world.discord.user_message(channel_id=BOB_DM, author_id=BOB, content="2+2?")
    [bob] = await world.discord.wait_for_messages(BOB_DM, 1, timeout=15)
    assert bob["content"] == "2 + 2 = 4"
    assert world.discord.messages(ALICE_DM) == []  # Alice's calculations still run
    bob_request = next(r for r in world.llm.requests if "2+2?" in FakeLLM.user_texts(r))
    assert world.llm.requests.index(bob_request) == 1
    assert tool_outputs(world.llm.requests[2]) == [{"result": "4", "latex": "4"}]
    [alice] = await world.discord.wait_for_messages(ALICE_DM, 1, timeout=15)
    assert "no closed form" in alice["content"]
    assert tool_outputs(world.llm.requests[3]) == [{"error": "timed out after 1.5 s"}] * 2

"""Tests of the tool budget: calls and tool time per turn, one evaluation at a time per user."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from bot.tools.budget import ToolGate, ToolLimits, UserLocks
from bot.tools.calculator.calculator import Calculator
from bot.tools.calculator.tool import calculate_tool
from bot.tools.turn_context import ToolTally, TurnContext

# One calculator (and one worker pool) for the whole module, on the module's event loop.
pytestmark = pytest.mark.asyncio(loop_scope="module")

#: What the bot promises (docs/security.md): at most this many tool calls per question.
CALLS_PER_QUESTION = 12
HARD_INTEGRAL = "integrate(exp(sin(x**3))*log(x)**7/(1+x**17), x)"
USED_UP = "the tool budget of this question is used up"
# Far beyond any tool time tested here: waits that end by an event are bounded by it only so
# that a broken gate fails instead of hanging.
GENEROUS_SECONDS = 120.0


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def calc() -> AsyncIterator[Calculator]:
    async with Calculator(timeout=GENEROUS_SECONDS, max_workers=2, memory_mb=512) as calculator:
        yield calculator


def gate(**limits: float) -> ToolGate:
    return ToolGate(ToolLimits(**limits), UserLocks())  # type: ignore[arg-type]


async def test_a_turn_that_calls_the_calculator_30_times_is_told_after_the_cap(
    calc: Calculator,
) -> None:
    from agents import Agent, RunConfig, Runner
    from agents.items import ToolCallOutputItem
    from agents.testing import ScriptedModel, assistant_message, function_call

    calls = [
        function_call("calculate", {"expression": f"{n}+1"}, call_id=f"c{n}") for n in range(30)
    ]
    model = ScriptedModel(
        [
            calls,
            [function_call("calculate", {"expression": "2+2"}, call_id="late")],
            [assistant_message("done")],
        ]
    )
    tool = calculate_tool(calc, gate())
    agent = Agent(name="mathbot", instructions="Do math.", model=model, tools=[tool])
    context = TurnContext(user=1)
    result = await Runner.run(
        agent, "flood", context=context, run_config=RunConfig(tracing_disabled=True)
    )
    outputs = [
        json.loads(item.output) for item in result.new_items if isinstance(item, ToolCallOutputItem)
    ]
    assert len(outputs) == 31
    answered = [o["result"] for o in outputs if "result" in o]
    refused = [o["error"] for o in outputs if "error" in o]
    assert answered == [str(n + 1) for n in range(CALLS_PER_QUESTION)]
    assert len(refused) == 31 - CALLS_PER_QUESTION
    assert all(USED_UP in e and "answer with what you have" in e for e in refused)
    assert context.tools.calls == CALLS_PER_QUESTION  # the refused calls ran nothing
    assert result.final_output == "done"


async def test_a_call_past_the_turns_tool_time_is_stopped_and_the_next_refused() -> None:
    limited = gate(max_seconds=0.05)
    context = TurnContext()
    never = asyncio.Event()

    async def stuck() -> str:
        await never.wait()
        return "never"

    async with asyncio.timeout(GENEROUS_SECONDS):
        first = json.loads(await limited.run(context, stuck))
    assert USED_UP in first["error"]

    ran: list[str] = []

    async def work() -> str:
        ran.append("ran")
        return "{}"

    second = json.loads(await limited.run(context, work))
    assert USED_UP in second["error"] and ran == []
    assert json.loads(await limited.run(TurnContext(), work)) == {}  # a new turn starts afresh


async def test_parallel_calls_share_one_tool_time_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    limited = gate(max_seconds=0.1)
    context = TurnContext()
    never = asyncio.Event()
    deadlines: list[float] = []
    own_deadline = ToolTally.deadline

    def recorded(tally: ToolTally, budget: float, now: float) -> float:
        deadlines.append(own_deadline(tally, budget, now))
        return deadlines[-1]

    monkeypatch.setattr(ToolTally, "deadline", recorded)

    async def stuck() -> str:
        await never.wait()
        return "never"

    users = [TurnContext(user=n, tools=context.tools) for n in range(3)]  # not serialised
    async with asyncio.timeout(GENEROUS_SECONDS):
        answers = await asyncio.gather(*(limited.run(c, stuck) for c in users))
    assert all(USED_UP in json.loads(a)["error"] for a in answers)
    # One shared deadline (the first call's start plus the tool time), not one per call.
    assert len(deadlines) == 3
    assert max(deadlines) - min(deadlines) < 1e-9, deadlines


async def test_one_users_two_hostile_calculations_leave_a_worker_for_another_user(
    calc: Calculator,
) -> None:
    shared = gate()

    def ask(user: int, expression: str) -> asyncio.Task[str]:
        work = lambda: calc.evaluate(expression)  # noqa: E731
        return asyncio.create_task(shared.run(TurnContext(user=user), work))

    # Two turns of one user (say two sessions), each with a hostile calculation.
    hostile = [ask(1, HARD_INTEGRAL), ask(1, HARD_INTEGRAL)]
    await asyncio.sleep(0)  # both start: the first takes a worker, the second waits its turn
    honest = json.loads(await ask(2, "2+2"))
    assert honest == {"result": "4", "latex": "4"}
    assert not any(task.done() for task in hostile)
    for task in hostile:  # cancelled calls kill their workers (tests/tools/test_calculator.py)
        task.cancel()
    for task in hostile:
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_a_users_calls_run_one_at_a_time_and_idle_users_are_forgotten() -> None:
    locks = UserLocks()
    order: list[str] = []
    release = asyncio.Event()

    async def hold(name: str, key: int) -> None:
        async with locks.hold(key):
            order.append(f"{name} in")
            await release.wait()
            order.append(f"{name} out")

    first = asyncio.create_task(hold("a1", 1))
    second = asyncio.create_task(hold("a2", 1))
    other = asyncio.create_task(hold("b", 2))
    await asyncio.sleep(0)
    assert order == ["a1 in", "b in"] and len(locks) == 2
    release.set()
    await asyncio.gather(first, second, other)
    assert order.index("a1 out") < order.index("a2 in")
    assert len(locks) == 0
    # A waiter cancelled while it waits leaves nothing behind either.
    release.clear()
    holder = asyncio.create_task(hold("c1", 3))
    waiter = asyncio.create_task(hold("c2", 3))
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    release.set()
    await holder
    assert "c2 in" not in order and len(locks) == 0

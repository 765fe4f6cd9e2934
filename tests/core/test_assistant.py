"""The core without Discord: memory, all-or-nothing turns, order, bounds (SDK test doubles)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sqlite3

import pytest
from agents import RunContextWrapper, function_tool
from agents.testing import ModelStep, ScriptedModel, assistant_message, function_call

from bot.app import build
from bot.config.settings import Settings
from bot.core.assistant import HELP, MAX_QUESTION_CHARS, Assistant
from bot.core.failures import EMPTY, GENERIC
from bot.errors import UserFacingError
from bot.render.images import Image
from bot.tools.calculator.calculator import Calculator
from bot.tools.plotting.plotter import Plotter
from bot.tools.turn_context import TurnContext


def user_texts(call_input: object) -> list[str]:
    assert isinstance(call_input, list)
    return [i["content"] for i in call_input if i.get("role") == "user"]


def stored_rows(db_path: str, session_id: str) -> list[dict]:
    with sqlite3.connect(db_path) as conn:
        rows = conn.execute(
            "SELECT message_data FROM agent_messages WHERE session_id = ? ORDER BY id",
            (session_id,),
        ).fetchall()
    return [json.loads(r[0]) for r in rows]


async def make(settings: Settings, model: ScriptedModel) -> Assistant:
    assistant = build(settings, model=model, calculator=Calculator(), plotter=Plotter())
    await assistant.start()
    return assistant


async def test_remembers_the_conversation(settings: Settings) -> None:
    model = ScriptedModel([[assistant_message("4")], [assistant_message("8")]])
    assistant = await make(settings, model)
    assert (await assistant.ask("u1", "what is 2+2?")).text == "4"
    assert (await assistant.ask("u1", "multiply that by 2")).text == "8"
    second = model.calls[1].input
    assert user_texts(second) == ["what is 2+2?", "multiply that by 2"]
    assert any(i.get("role") == "assistant" for i in second)
    await assistant.close()


async def test_memory_survives_a_new_assistant(settings: Settings) -> None:
    first = await make(settings, ScriptedModel([[assistant_message("4")]]))
    await first.ask("u1", "what is 2+2?")
    await first.close()
    model = ScriptedModel([[assistant_message("8")]])
    second = await make(settings, model)
    await second.ask("u1", "multiply that by 2")
    assert user_texts(model.calls[0].input) == ["what is 2+2?", "multiply that by 2"]
    await second.close()


async def test_sessions_are_isolated(settings: Settings) -> None:
    model = ScriptedModel([[assistant_message("4")], [assistant_message("?")]])
    assistant = await make(settings, model)
    await assistant.ask("alice", "what is 2+2?")
    await assistant.ask("bob", "multiply that by 2")
    assert user_texts(model.calls[1].input) == ["multiply that by 2"]
    await assistant.close()


async def test_failed_turn_leaves_nothing(settings: Settings, db_path: str) -> None:
    model = ScriptedModel(
        [[assistant_message("4")], RuntimeError("boom"), [assistant_message("8")]]
    )
    assistant = await make(settings, model)
    await assistant.ask("u1", "what is 2+2?")
    with pytest.raises(UserFacingError) as err:
        await assistant.ask("u1", "this one fails")
    assert str(err.value) == GENERIC
    assert len(stored_rows(db_path, "u1")) == 2
    await assistant.ask("u1", "multiply that by 2")
    assert user_texts(model.calls[2].input) == ["what is 2+2?", "multiply that by 2"]
    await assistant.close()


async def test_empty_answer_is_an_error_and_not_stored(settings: Settings, db_path: str) -> None:
    assistant = await make(settings, ScriptedModel([[assistant_message("")]]))
    with pytest.raises(UserFacingError) as err:
        await assistant.ask("u1", "hello?")
    assert str(err.value) == EMPTY
    assert stored_rows(db_path, "u1") == []
    await assistant.close()


async def test_tool_turn_is_stored_whole(settings: Settings, db_path: str) -> None:
    @function_tool
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    model = ScriptedModel(
        [[function_call("add", {"a": 2, "b": 2}, call_id="c1")], [assistant_message("4")]]
    )
    assistant = build(
        settings, model=model, calculator=Calculator(), plotter=Plotter(), extra_tools=(add,)
    )
    await assistant.start()
    await assistant.ask("u1", "2+2")
    kinds = [r.get("role") or r.get("type") for r in stored_rows(db_path, "u1")]
    assert kinds == ["user", "function_call", "function_call_output", "assistant"]
    await assistant.close()


async def test_turns_of_one_session_run_in_order(settings: Settings) -> None:
    gate, reached = asyncio.Event(), asyncio.Event()
    seen: list[list[str]] = []

    async def slow_first(call):  # the first turn waits, the second must not overtake it
        seen.append(user_texts(call.input))
        reached.set()
        if len(seen) == 1:
            await gate.wait()
        return [assistant_message(f"answer {len(seen)}")]

    model = ScriptedModel([ModelStep.respond(slow_first), ModelStep.respond(slow_first)])
    assistant = await make(settings, model)
    first = assistant.submit("u1", assistant.admit("first"))
    second = assistant.submit("u1", assistant.admit("second"))
    await asyncio.wait_for(reached.wait(), 5)
    await asyncio.sleep(0)  # give the second turn every chance to overtake: it must not
    assert seen == [["first"]]
    gate.set()
    assert (await first).text == "answer 1"
    assert (await second).text == "answer 2"
    assert seen[1] == ["first", "second"]
    assert assistant.busy_sessions == 0
    await assistant.close()


async def test_history_is_bounded_to_user_turns(settings: Settings, db_path: str) -> None:
    small = dataclasses.replace(settings, history_turns=3)
    model = ScriptedModel([[assistant_message(f"a{i}")] for i in range(8)])
    assistant = await make(small, model)
    for i in range(8):
        await assistant.ask("u1", f"q{i}")
    # three turns of history, then the new question
    assert user_texts(model.calls[-1].input) == ["q4", "q5", "q6", "q7"]
    assert len(stored_rows(db_path, "u1")) == 16  # the store keeps everything
    await assistant.close()


async def test_forget_wipes_the_session(settings: Settings, db_path: str) -> None:
    model = ScriptedModel([[assistant_message("4")], [assistant_message("?")]])
    assistant = await make(settings, model)
    await assistant.ask("u1", "what is 2+2?")
    await assistant.ask("u2", "keep me")
    await assistant.forget("u1")
    assert stored_rows(db_path, "u1") == []
    assert stored_rows(db_path, "u2") != []
    await assistant.close()


@pytest.mark.parametrize("text", ["", "   \n "])
async def test_empty_question_gets_help_without_a_model_call(settings: Settings, text: str) -> None:
    model = ScriptedModel()
    assistant = await make(settings, model)
    with pytest.raises(UserFacingError) as err:
        await assistant.ask("u1", text)
    assert str(err.value) == HELP
    assert model.calls == ()
    await assistant.close()


async def test_huge_question_is_refused_without_a_model_call(settings: Settings) -> None:
    model = ScriptedModel()
    assistant = await make(settings, model)
    with pytest.raises(UserFacingError) as err:
        await assistant.ask("u1", "1+" * MAX_QUESTION_CHARS)
    assert "too long" in str(err.value)
    assert model.calls == ()
    assert assistant.busy_sessions == 0
    await assistant.close()


async def test_tool_pictures_reach_the_answer_but_not_the_memory(
    settings: Settings, db_path: str
) -> None:
    @function_tool
    def draw(ctx: RunContextWrapper[TurnContext], what: str) -> str:
        """Draw something."""
        name = ctx.context.add_image("plot", b"\x89PNG fake " + what.encode())
        return f"drew {what} as {name}"

    model = ScriptedModel(
        [[function_call("draw", {"what": "sin"}, call_id="d1")], [assistant_message("Here.")]]
    )
    assistant = build(
        settings, model=model, calculator=Calculator(), plotter=Plotter(), extra_tools=(draw,)
    )
    await assistant.start()
    answer = await assistant.ask("u1", "plot sin")
    assert answer.attachments == (Image("plot-1.png", b"\x89PNG fake sin"),)
    stored = json.dumps(stored_rows(db_path, "u1"))
    assert "drew sin as plot-1.png" in stored and "PNG fake" not in stored
    await assistant.close()

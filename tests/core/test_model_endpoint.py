"""The core against a loopback OpenAI-compatible server, through the real `openai` client."""

from __future__ import annotations

import dataclasses
import json
import logging
import sqlite3

import pytest

from bot.app import build
from bot.config.settings import Settings
from bot.core.assistant import Assistant
from bot.core.failures import (
    MALFORMED,
    MISCONFIGURED,
    RATE_LIMITED,
    TIMED_OUT,
    UNAVAILABLE,
    UNREACHABLE,
)
from bot.errors import UserFacingError
from bot.tools.calculator.calculator import Calculator
from bot.tools.plotting.plotter import Plotter
from tests.fakes.llm_server import CHARS_PER_TOKEN, FakeLLM


async def started(settings: Settings) -> Assistant:
    assistant = build(settings, calculator=Calculator(), plotter=Plotter())
    await assistant.start()
    return assistant


def rows(db_path: str) -> list[dict]:
    with sqlite3.connect(db_path) as conn:
        return [json.loads(r[0]) for r in conn.execute("SELECT message_data FROM agent_messages")]


async def test_question_and_follow_up_go_over_the_wire(
    llm: FakeLLM, llm_settings: Settings
) -> None:
    assistant = await started(llm_settings)
    llm.reply("4")
    llm.reply("8")
    assert (await assistant.ask("discord:user:1", "what is 2+2?")).text == "4"
    assert (await assistant.ask("discord:user:1", "multiply that by 2")).text == "8"
    first, second = llm.requests
    assert first["model"] == "gemini-2.5-flash"
    assert FakeLLM.user_texts(second) == ["what is 2+2?", "multiply that by 2"]
    assert [m["role"] for m in FakeLLM.messages(second)] == ["system", "user", "assistant", "user"]
    assert llm.headers[0]["authorization"] == "Bearer test-llm-key"
    await assistant.close()


async def test_tool_call_with_empty_id_is_accepted(llm: FakeLLM, llm_settings: Settings) -> None:
    from agents import function_tool

    @function_tool
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    assistant = build(llm_settings, calculator=Calculator(), plotter=Plotter(), extra_tools=(add,))
    await assistant.start()
    llm.tool_call("add", {"a": 2, "b": 2}, call_id="")  # as Gemini's compatibility layer may
    llm.reply("4")
    assert (await assistant.ask("s", "2+2")).text == "4"
    tool_messages = [m for m in FakeLLM.messages(llm.requests[1]) if m["role"] == "tool"]
    assert tool_messages and tool_messages[0]["content"] == "4"
    assert tool_messages[0]["tool_call_id"]
    await assistant.close()


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        (lambda f: f.error(500), UNAVAILABLE),
        (lambda f: f.error(503), UNAVAILABLE),
        (lambda f: f.error(429, headers={"Retry-After": "30"}), RATE_LIMITED),
        (lambda f: f.error(401), MISCONFIGURED),
        (lambda f: f.garbage(), MALFORMED),
        (lambda f: f.disconnect(), UNREACHABLE),
        (lambda f: f.hang(), TIMED_OUT),
    ],
    ids=["500", "503", "429", "401", "garbage", "disconnect", "timeout"],
)
async def test_failures_are_polite_and_leave_no_half_turn(
    llm: FakeLLM, llm_settings: Settings, db_path: str, script, expected: str
) -> None:
    assistant = await started(dataclasses.replace(llm_settings, llm_timeout=0.5))
    llm.reply("4")
    await assistant.ask("s", "what is 2+2?")
    script(llm)
    with pytest.raises(UserFacingError) as err:
        await assistant.ask("s", "this one fails")
    assert str(err.value) == expected
    assert len(rows(db_path)) == 2  # only the first, complete turn
    llm.reply("8")
    assert (await assistant.ask("s", "multiply that by 2")).text == "8"
    assert FakeLLM.user_texts(llm.requests[-1]) == ["what is 2+2?", "multiply that by 2"]
    await assistant.close()


async def test_retries_a_429_then_answers(llm: FakeLLM, llm_settings: Settings) -> None:
    assistant = await started(dataclasses.replace(llm_settings, llm_max_retries=2))
    llm.error(429, headers={"Retry-After": "0"})
    llm.error(503, headers={"Retry-After": "0"})
    llm.reply("4")
    assert (await assistant.ask("s", "what is 2+2?")).text == "4"
    assert len(llm.requests) == 3
    await assistant.close()


async def test_bad_key_is_logged_once_and_never_leaks(
    llm: FakeLLM, llm_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    assistant = await started(llm_settings)
    llm.error(401, message="Incorrect API key provided: test-llm-key")
    llm.error(401, message="Incorrect API key provided: test-llm-key")
    caplog.set_level(logging.WARNING)
    for _ in range(2):
        with pytest.raises(UserFacingError) as err:
            await assistant.ask("s", "2+2")
        assert "test-llm-key" not in str(err.value)
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "API key" in errors[0].getMessage()
    await assistant.close()


@pytest.mark.parametrize("cap", [300, None], ids=["capped", "off"])
async def test_answer_length_cap_reaches_the_model(
    llm: FakeLLM, llm_settings: Settings, cap: int | None
) -> None:
    assistant = await started(dataclasses.replace(llm_settings, llm_max_tokens=cap))
    llm.reply("4")
    await assistant.ask("s", "what is 2+2?")
    if cap is None:
        assert "max_tokens" not in llm.requests[0]
    else:
        assert llm.requests[0]["max_tokens"] == cap
    await assistant.close()


class Draft:
    """A `TextListener` keeping what a live draft would show."""

    def __init__(self) -> None:
        self.shown = ""

    def text(self, more: str) -> None:
        self.shown += more

    def progress(self, tool: str | None) -> None:
        self.shown = ""


@pytest.mark.parametrize("streamed", [False, True], ids=["whole", "streamed"])
async def test_an_answer_cut_by_the_cap_says_so(
    llm: FakeLLM, llm_settings: Settings, db_path: str, streamed: bool
) -> None:
    assistant = await started(dataclasses.replace(llm_settings, llm_max_tokens=256))
    llm.reply("7" * 5000)  # the fake stops at 256 tokens (1,024 characters): "length"
    draft = Draft()
    question = assistant.admit("write 5000 sevens")
    answer = await assistant.submit("s", question, on_text=draft if streamed else None)
    kept = "7" * (256 * CHARS_PER_TOKEN)
    assert answer.text.startswith(kept)
    note = answer.text.removeprefix(kept)
    assert "cut" in note and "length limit" in note and "7" not in note
    if streamed:
        assert draft.shown == answer.text  # the user sees the note while it streams, too
    assert rows(db_path)[-1]["content"][0]["text"] == answer.text  # and the model remembers
    await assistant.close()

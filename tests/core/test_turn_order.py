"""A turn's place in its session's order, reserved before its question is ready."""

from __future__ import annotations

import asyncio

import pytest
from agents.testing import ScriptedModel, assistant_message

from bot.app import build
from bot.config.settings import Settings
from bot.core.assistant import Assistant
from bot.tools.calculator.calculator import Calculator
from bot.tools.plotting.plotter import Plotter


async def make(settings: Settings, model: ScriptedModel) -> Assistant:
    assistant = build(settings, model=model, calculator=Calculator(), plotter=Plotter())
    await assistant.start()
    return assistant


def asked(model: ScriptedModel) -> list[str]:
    """The latest user text of each model call, in call order."""
    return [[i for i in c.input if i.get("role") == "user"][-1]["content"] for c in model.calls]


async def test_a_reserved_place_comes_before_later_turns(settings: Settings) -> None:
    model = ScriptedModel([[assistant_message("1")], [assistant_message("2")]])
    assistant = await make(settings, model)
    ticket = assistant.reserve("u1")  # e.g. its files are still downloading
    later = assistant.submit("u1", assistant.admit("sent second"))
    for _ in range(20):  # the later turn gets every chance to run first: it must wait
        await asyncio.sleep(0)
    assert not later.done() and not model.calls
    first = assistant.submit("u1", assistant.admit("sent first"), ticket=ticket)
    answers = await asyncio.wait_for(asyncio.gather(first, later), 5)
    assert [a.text for a in answers] == ["1", "2"]
    assert asked(model) == ["sent first", "sent second"]
    assert assistant.busy_sessions == 0
    await assistant.close()


async def test_a_released_place_lets_later_turns_go(settings: Settings) -> None:
    model = ScriptedModel([[assistant_message("2")]])
    assistant = await make(settings, model)
    ticket = assistant.reserve("u1")
    later = assistant.submit("u1", assistant.admit("sent second"))
    ticket.release()  # its question was refused
    assert (await asyncio.wait_for(later, 5)).text == "2"
    assert assistant.busy_sessions == 0
    await assistant.close()


async def test_a_place_is_used_only_in_its_own_session(settings: Settings) -> None:
    assistant = await make(settings, ScriptedModel([]))
    ticket = assistant.reserve("u1")
    with pytest.raises(ValueError):
        assistant.submit("u2", assistant.admit("hi"), ticket=ticket)
    ticket.release()
    assert assistant.busy_sessions == 0
    await assistant.close()

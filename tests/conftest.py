"""Shared fixtures: settings for tests and a temporary memory file."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.config.settings import Settings
from bot.tools.calculator.calculator import Calculator
from bot.tools.plotting.plotter import Plotter
from tests.fakes.llm_server import FakeLLM
from tests.harness import World, build_discord


@pytest.fixture
def db_path(tmp_path: Path) -> str:
    return str(tmp_path / "maths_db.db")


@pytest.fixture
def settings(db_path: str) -> Settings:
    return Settings(
        discord_token="test.discord.token",
        llm_api_key="test-llm-key",
        session_db=db_path,
        llm_max_retries=0,
        llm_timeout=5.0,
        streaming=False,  # on in production; tests/test_e2e_streaming.py covers it
    )


@pytest.fixture
async def calculator() -> AsyncIterator[Calculator]:
    """A calculator owned by the test: its worker pool starts only if a tool call needs it."""
    calc = Calculator()
    yield calc
    await calc.close()


@pytest.fixture
async def plotter() -> AsyncIterator[Plotter]:
    """A plotter owned by the test: its worker pool starts only if a tool call needs it."""
    plot = Plotter()
    yield plot
    await plot.close()


@pytest.fixture
async def llm() -> AsyncIterator[FakeLLM]:
    """A loopback OpenAI-compatible server; the real `openai` client talks to it."""
    async with FakeLLM() as fake:
        yield fake


@pytest.fixture
def llm_settings(settings: Settings, llm: FakeLLM) -> Settings:
    return dataclasses.replace(settings, llm_base_url=llm.base_url)


@pytest.fixture
async def world(
    llm: FakeLLM,
    llm_settings: Settings,
    calculator: Calculator,
    plotter: Plotter,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[World]:
    """The real bot against the fake Discord and the fake model; started, then closed."""
    discord = build_discord()
    await discord.start()
    discord.patch_discord(monkeypatch)
    world = World(discord, llm, llm_settings, calculator, plotter)
    await world.start_bot()
    try:
        yield world
    finally:
        await llm.close()  # a request left hanging fails now, not after the bot's LLM_TIMEOUT
        await world.stop_bot()
        await discord.close()
        assert not discord.unknown_requests, discord.unknown_requests
        assert not discord.handler_errors, discord.handler_errors

"""The command tree: a slash command that fails is answered politely, only to its caller."""

from __future__ import annotations

import logging

import pytest

from bot.core.failures import GENERIC, NO_MEMORY
from bot.errors import UserFacingError
from bot.memory.outage import StoreUnavailable
from tests.fakes.discord_server import MSG_FLAG_EPHEMERAL
from tests.harness import ALICE, CHANNEL, World


async def test_an_unexpected_failure_after_deferring_is_logged_and_told_politely(
    world: World, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    assert world.bot is not None

    async def broken(session_id: str, shown: int) -> str:
        raise RuntimeError("the history broke")

    monkeypatch.setattr(world.bot.assistant, "history", broken)
    with caplog.at_level(logging.ERROR, logger="bot.discord_app.tree"):
        interaction = await world.discord.slash_command(
            "history", user_id=ALICE, channel_id=CHANNEL
        )
        [reply] = await interaction.wait_for_followups(1)
    assert reply["content"] == GENERIC and reply["flags"] & MSG_FLAG_EPHEMERAL
    assert [r.getMessage() for r in caplog.records] == ["slash command failed"]


async def test_a_user_facing_failure_before_answering_is_the_reply(
    world: World, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    assert world.bot is not None

    def refuse(session_id: str) -> int:
        raise UserFacingError("Not now, please.")

    monkeypatch.setattr(world.bot.assistant, "cancel", refuse)
    with caplog.at_level(logging.ERROR, logger="bot.discord_app.tree"):
        interaction = await world.discord.slash_command("cancel", user_id=ALICE, channel_id=CHANNEL)
        callback = await interaction.wait_for_callback()
    assert callback["type"] == 4  # a message, not a deferral
    assert callback["data"]["content"] == "Not now, please."
    assert callback["data"]["flags"] & MSG_FLAG_EPHEMERAL
    assert caplog.records == []


async def test_a_memory_outage_in_a_command_says_the_memory_is_unreachable(
    world: World, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """`/style` reads the preferences in the memory store: its outage is told as such."""
    assert world.bot is not None

    async def down(*args: object) -> None:
        raise StoreUnavailable("PostgreSQL at db:5432 is unreachable")

    monkeypatch.setattr(world.bot.assistant.choices, "resolve", down)
    with caplog.at_level(logging.WARNING, logger="bot.discord_app.tree"):
        interaction = await world.discord.slash_command("style", user_id=ALICE, channel_id=CHANNEL)
        [reply] = await interaction.wait_for_followups(1)
    assert reply["content"] == NO_MEMORY and reply["flags"] & MSG_FLAG_EPHEMERAL
    assert [r.levelno for r in caplog.records] == [logging.WARNING]

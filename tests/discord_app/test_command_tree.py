"""The command tree: a slash command that fails is answered politely, only to its caller."""

from __future__ import annotations

import logging

import pytest

from bot.core.failures import GENERIC
from bot.errors import UserFacingError
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

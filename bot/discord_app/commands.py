"""Slash commands (/math, /forget, /cancel, /history, /export, /usage) bound to one assistant."""

from __future__ import annotations

import io
import logging
from typing import Any

import discord
from discord import app_commands

from ..config.settings import SessionScope
from ..core.assistant import MAX_QUESTION_CHARS, Assistant
from ..errors import QuietRefusal, UserFacingError
from ..memory.keys import conversation_id
from .inflight import InFlight
from .messages import outcome
from .replies import NO_PINGS, send_followups
from .requesters import from_interaction

log = logging.getLogger(__name__)

QUOTE_LIMIT = 200
NOT_HERE = "Sorry, I can't help with that here."
NEEDS_MANAGE = "changing the channel's shared conversation needs the Manage Messages permission."


class MathCommands:
    """The bot's slash commands, bound to one assistant."""

    def __init__(self, assistant: Assistant, scope: SessionScope, in_flight: InFlight) -> None:
        self._assistant = assistant
        self._scope = scope
        self._in_flight = in_flight

    def install(self, tree: app_commands.CommandTree[Any]) -> None:
        commands = {
            "math": (
                self.math,
                "Ask the math assistant a question (it remembers the conversation)",
            ),
            "forget": (self.forget, "Make the math assistant forget your conversation"),
            "cancel": (self.cancel, "Stop the question the math assistant is working on"),
            "history": (self.history, "See what the math assistant remembers of your conversation"),
            "export": (self.export, "Download your whole stored conversation as a JSON file"),
            "usage": (self.usage, "How many tokens your questions used today and in total"),
        }
        for name, (callback, description) in commands.items():
            tree.add_command(
                app_commands.Command(name=name, description=description, callback=callback)
            )

    def session_id(self, interaction: discord.Interaction) -> str:
        return conversation_id(
            self._scope, user_id=interaction.user.id, channel_id=interaction.channel_id
        )

    @app_commands.describe(question="Your math question, e.g. what is 2+2?")
    async def math(
        self,
        interaction: discord.Interaction,
        question: app_commands.Range[str, 1, MAX_QUESTION_CHARS],
    ) -> None:
        try:
            admitted = self._assistant.admit(question, from_interaction(interaction))
        except UserFacingError as exc:
            await private_reply(interaction, exc.message)
            return
        except QuietRefusal:
            await private_reply(interaction, NOT_HERE)
            return
        async with self._in_flight.track():
            turn = self._assistant.submit(self.session_id(interaction), admitted)
            await interaction.response.defer(thinking=True)
            answer = await outcome(turn)
            await send_followups(
                interaction, f"{quote(question)}\n{answer.text}", pictures=answer.attachments
            )

    async def forget(self, interaction: discord.Interaction) -> None:
        if not self._may_change(interaction):
            await private_reply(interaction, f"In this server, {NEEDS_MANAGE}")
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        await self._assistant.forget(self.session_id(interaction))
        whose = "this channel's" if self._scope == "channel" else "our"
        await interaction.followup.send(
            f"Done: I have forgotten {whose} conversation.",
            ephemeral=True,
            allowed_mentions=NO_PINGS,
        )

    async def cancel(self, interaction: discord.Interaction) -> None:
        if not self._may_change(interaction):
            await private_reply(interaction, f"In this server, {NEEDS_MANAGE}")
            return
        stopped = self._assistant.cancel(self.session_id(interaction))
        await private_reply(
            interaction,
            "Stopped the question in progress." if stopped else "Nothing to stop right now.",
        )

    @app_commands.describe(turns="How many of the latest exchanges to show (1-25, default 5)")
    async def history(
        self, interaction: discord.Interaction, turns: app_commands.Range[int, 1, 25] = 5
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        text = await self._assistant.history(self.session_id(interaction), turns)
        await send_followups(interaction, text, ephemeral=True)

    async def export(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        export = await self._assistant.export(self.session_id(interaction))
        await interaction.followup.send(
            f"Our conversation: {export.items} stored items (format `{export.format}`).",
            file=discord.File(io.BytesIO(export.data), filename="mathbot-conversation.json"),
            ephemeral=True,
            allowed_mentions=NO_PINGS,
        )

    async def usage(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        text = await self._assistant.usage(from_interaction(interaction))
        await send_followups(interaction, text, ephemeral=True)

    def _may_change(self, interaction: discord.Interaction) -> bool:
        if self._scope != "channel" or interaction.guild_id is None:
            return True
        return interaction.permissions.manage_messages


async def private_reply(interaction: discord.Interaction, text: str) -> None:
    """Answer the interaction with a message only the caller sees."""
    await interaction.response.send_message(text, ephemeral=True, allowed_mentions=NO_PINGS)


def quote(question: str) -> str:
    """The question as a one-line Markdown quote, shortened."""
    line = " ".join(question.split())
    if len(line) > QUOTE_LIMIT:
        line = line[: QUOTE_LIMIT - 1] + "…"
    return f"> {line}"

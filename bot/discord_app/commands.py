"""Slash commands (/math, /forget) and syncing them only when Discord's copy differs."""

from __future__ import annotations

import io
import logging
from typing import Any

import discord
from discord import app_commands

from ..config.settings import SessionScope
from ..core.assistant import MAX_QUESTION_CHARS, Assistant
from ..core.failures import GENERIC
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


async def on_command_error(
    interaction: discord.Interaction, error: app_commands.AppCommandError
) -> None:
    """Log the failure and tell the user politely, wherever the interaction stands."""
    original = getattr(error, "original", error)
    text = str(original) if isinstance(original, UserFacingError) else GENERIC
    if not isinstance(original, UserFacingError):
        log.error("slash command failed", exc_info=error)
    try:
        if interaction.response.is_done():
            await interaction.followup.send(text, ephemeral=True, allowed_mentions=NO_PINGS)
        else:
            await interaction.response.send_message(text, ephemeral=True, allowed_mentions=NO_PINGS)
    except discord.HTTPException:
        log.exception("could not report a slash command failure")


async def private_reply(interaction: discord.Interaction, text: str) -> None:
    """Answer the interaction with a message only the caller sees."""
    await interaction.response.send_message(text, ephemeral=True, allowed_mentions=NO_PINGS)


def quote(question: str) -> str:
    """The question as a one-line Markdown quote, shortened."""
    line = " ".join(question.split())
    if len(line) > QUOTE_LIMIT:
        line = line[: QUOTE_LIMIT - 1] + "…"
    return f"> {line}"


async def sync_if_changed(tree: app_commands.CommandTree[Any], application_id: int) -> bool:
    """Upload the commands only when they differ from Discord's copy; True if uploaded."""
    local = [command.to_dict(tree) for command in tree.get_commands()]
    remote = await tree.client.http.get_global_commands(application_id)
    if normalize_commands(local) == normalize_commands(remote):
        log.info("slash commands are up to date (%d)", len(local))
        return False
    await tree.sync()
    log.info("slash commands synced (%d)", len(local))
    return True


_COMMAND_KEYS = ("name", "description", "type", "nsfw", "default_member_permissions")
_OPTION_KEYS = (
    "type", "name", "description", "required", "min_length", "max_length",
    "min_value", "max_value", "autocomplete", "channel_types",
)  # fmt: skip


def normalize_commands(commands: Any) -> list[dict[str, Any]]:
    """The parts of command payloads that matter, with Discord's defaults filled in."""
    return sorted((_normalize_command(c) for c in commands), key=lambda c: str(c["name"]))


def _normalize_command(command: dict[str, Any]) -> dict[str, Any]:
    data = {key: command.get(key) for key in _COMMAND_KEYS}
    data["type"] = data["type"] or 1
    data["nsfw"] = bool(data["nsfw"])
    data["contexts"] = sorted(command.get("contexts") or [])
    data["integration_types"] = sorted(command.get("integration_types") or [0])
    data["options"] = [_normalize_option(o) for o in command.get("options") or []]
    return data


def _normalize_option(option: dict[str, Any]) -> dict[str, Any]:
    data = {key: option.get(key) for key in _OPTION_KEYS}
    data["required"] = bool(data["required"])
    data["autocomplete"] = bool(data["autocomplete"])
    data["choices"] = [(c.get("name"), c.get("value")) for c in option.get("choices") or []]
    data["options"] = [_normalize_option(o) for o in option.get("options") or []]
    return data

"""The command tree: where commands work, syncing only when changed, and failures told politely."""

from __future__ import annotations

import logging
from typing import Any

import discord
from discord import app_commands

from ..core.failures import GENERIC, NO_MEMORY
from ..errors import UserFacingError
from ..memory.outage import StoreUnavailable
from .replies import NO_PINGS

log = logging.getLogger(__name__)

# one command, whatever it takes, or a group of subcommands
SlashCommand = app_commands.Command[Any, ..., Any] | app_commands.Group
AppCommand = SlashCommand | app_commands.ContextMenu  # a slash command or a message menu

_COMMAND_KEYS = ("name", "description", "type", "nsfw", "default_member_permissions")
_OPTION_KEYS = (
    "type", "name", "description", "required", "min_length", "max_length",
    "min_value", "max_value", "autocomplete", "channel_types",
)  # fmt: skip


class MathCommandTree(app_commands.CommandTree[discord.Client]):
    """The bot's slash commands: usable in servers, DMs and group DMs, whether the app is
    installed to a server or to a user."""

    def __init__(self, client: discord.Client) -> None:
        super().__init__(
            client,
            allowed_installs=app_commands.AppInstallationType(guild=True, user=True),
            allowed_contexts=app_commands.AppCommandContext(
                guild=True, dm_channel=True, private_channel=True
            ),
        )

    async def on_error(
        self, interaction: discord.Interaction[discord.Client], error: app_commands.AppCommandError
    ) -> None:
        """Log the failure and tell the user politely, wherever the interaction stands."""
        original = getattr(error, "original", error)
        if isinstance(original, UserFacingError):
            text = str(original)
        elif isinstance(original, StoreUnavailable):  # e.g. /style while the memory is down
            log.warning("slash command failed, memory store unavailable: %s", original)
            text = NO_MEMORY
        else:
            log.error("slash command failed", exc_info=error)
            text = GENERIC
        try:
            if interaction.response.is_done():
                await interaction.followup.send(text, ephemeral=True, allowed_mentions=NO_PINGS)
            else:
                await interaction.response.send_message(
                    text, ephemeral=True, allowed_mentions=NO_PINGS
                )
        except discord.HTTPException:
            log.exception("could not report a slash command failure")

    async def sync_if_changed(self, application_id: int) -> bool:
        """Upload the commands only when they differ from Discord's copy; True if uploaded."""
        local = [command.to_dict(self) for command in self.get_commands()]
        remote = await self.client.http.get_global_commands(application_id)
        if normalize_commands(local) == normalize_commands(remote):
            log.info("slash commands are up to date (%d)", len(local))
            return False
        await self.sync()
        log.info("slash commands synced (%d)", len(local))
        return True


def normalize_commands(commands: Any) -> list[dict[str, Any]]:
    """The parts of command payloads that matter, with Discord's defaults filled in."""
    return sorted((_normalize_command(c) for c in commands), key=lambda c: str(c["name"]))


def _normalize_command(command: dict[str, Any]) -> dict[str, Any]:
    data = {key: command.get(key) for key in _COMMAND_KEYS}
    data["type"] = data["type"] or 1
    data["description"] = data["description"] or ""  # a message menu has none
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

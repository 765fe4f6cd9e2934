"""The Discord client: opens the core in `setup_hook`, routes events, closes it in `close()`."""

from __future__ import annotations

import logging
from typing import Any

import discord
import yarl
from discord import app_commands

from ..assistant import Assistant
from ..config import Settings
from .commands import MathCommands, on_command_error, sync_if_changed
from .messages import MessageFlow

log = logging.getLogger(__name__)


def point_discord_at(api_url: str, gateway_url: str | None) -> None:
    """Send REST calls (webhooks and interaction callbacks included) to `api_url` and, if
    given, open the gateway at `gateway_url`: for a proxy in production, a fake in tests."""
    discord.http.Route.BASE = api_url
    if gateway_url is not None:
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)


def intents() -> discord.Intents:
    """Guilds and messages, plus the privileged Message Content intent to read questions."""
    wanted = discord.Intents.default()
    wanted.message_content = True
    return wanted


class MathBot(discord.Client):
    """mathbot on Discord. Extra keyword arguments go to `discord.Client` (tests use them)."""

    def __init__(self, settings: Settings, assistant: Assistant, **options: Any) -> None:
        options.setdefault("allowed_mentions", discord.AllowedMentions.none())
        super().__init__(intents=intents(), **options)
        self.settings = settings
        self.assistant = assistant
        self.tree: app_commands.CommandTree[MathBot] = app_commands.CommandTree(
            self,
            allowed_installs=app_commands.AppInstallationType(guild=True, user=True),
            allowed_contexts=app_commands.AppCommandContext(
                guild=True, dm_channel=True, private_channel=True
            ),
        )
        self.tree.on_error = on_command_error
        MathCommands(assistant, settings.session_scope).install(self.tree)
        self._messages = MessageFlow(self, assistant, settings.session_scope)

    async def setup_hook(self) -> None:
        await self.assistant.start()
        if self.application_id is None:
            log.warning("no application id yet: slash commands not synced")
            return
        await sync_if_changed(self.tree, self.application_id)

    async def close(self) -> None:
        try:
            await super().close()
        finally:
            await self.assistant.close()

    async def on_ready(self) -> None:
        user = self.user
        log.info("logged in as %s (id %s) in %d servers", user, user and user.id, len(self.guilds))

    async def on_message(self, message: discord.Message) -> None:
        await self._messages.handle(message)

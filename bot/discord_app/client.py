"""The Discord client: opens the core in `setup_hook`, routes events, closes it in `close()`."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import discord
import yarl

from ..config.settings import Settings
from ..core.assistant import Assistant
from ..render.renderer import Renderer
from .inflight import InFlight
from .messages import MessageFlow
from .tree import AppCommand, MathCommandTree

log = logging.getLogger(__name__)

SHUTDOWN_GRACE = 10.0  # seconds answers under way get to finish when the bot is stopped


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
    """mathbot on one gateway connection: answers messages and the slash `commands` with
    `assistant`, its answers made Discord-ready by `renderer` (started and closed with the
    bot). Extra keyword arguments go to `discord.Client`.

    The slash commands reach the bot as `interaction.client`: `assistant`, `renderer`,
    `settings` and `in_flight` (the handlers at work, which `close()` lets finish) are theirs
    to use.
    """

    def __init__(
        self,
        settings: Settings,
        assistant: Assistant,
        renderer: Renderer,
        *,
        commands: Iterable[AppCommand],
        **options: Any,
    ) -> None:
        options.setdefault("allowed_mentions", discord.AllowedMentions.none())
        super().__init__(intents=intents(), **options)
        self.settings = settings
        self.assistant = assistant
        self.renderer = renderer
        self.tree = MathCommandTree(self)
        self.in_flight = InFlight()
        for command in commands:
            self.tree.add_command(command)
        self._messages = MessageFlow(self, assistant, settings, renderer)

    async def setup_hook(self) -> None:
        await self.renderer.start()
        await self.assistant.start()
        if self.application_id is None:
            log.warning("no application id yet: slash commands not synced")
            return
        await self.tree.sync_if_changed(self.application_id)

    async def close(self) -> None:
        """Let answers under way finish (briefly), then disconnect and close the core."""
        try:
            await self.in_flight.drain(SHUTDOWN_GRACE)
            await super().close()
        finally:
            try:
                await self.assistant.close()
            finally:
                await self.renderer.close()

    async def on_ready(self) -> None:
        self.assistant.metrics.connected(True)
        log.info(
            "logged in as %s (id %s) in %d servers, shards %s",
            self.user,
            self.user and self.user.id,
            len(self.guilds),
            self.shard_id if self.shard_count is None else self.shard_count,
        )

    async def on_resumed(self) -> None:
        self.assistant.metrics.connected(True)

    async def on_disconnect(self) -> None:
        self.assistant.metrics.connected(False)

    async def on_message(self, message: discord.Message) -> None:
        if self.in_flight.closing:
            return
        async with self.in_flight.track():
            await self._messages.handle(message)

    async def on_message_edit(self, before: discord.Message, after: discord.Message) -> None:
        if self.in_flight.closing:
            return
        async with self.in_flight.track():
            await self._messages.handle_edit(before, after)


class ShardedMathBot(MathBot, discord.AutoShardedClient):
    """mathbot on several shards (SHARD_COUNT / SHARD_IDS), for bots in many servers.
    `MathBot`'s `super()` calls reach `discord.AutoShardedClient` here."""

"""Putting the Discord bot together: the plain or sharded client, with the slash commands and
the message menu."""

from __future__ import annotations

from typing import Any

from ..app import build_renderer
from ..config.settings import Settings
from ..core.assistant import Assistant
from ..render.renderer import Renderer
from .client import MathBot, ShardedMathBot
from .commands import SLASH_COMMANDS
from .menu import ask_about
from .tree import AppCommand

APP_COMMANDS: tuple[AppCommand, ...] = (*SLASH_COMMANDS, ask_about)


def build_bot(
    settings: Settings, assistant: Assistant, renderer: Renderer | None = None, **options: Any
) -> MathBot:
    """The plain client, or the sharded one when shards are configured, rendering answers with
    `renderer` (by default the one `bot.app.build_renderer` makes; the bot starts and closes
    it). Extra keyword arguments go to the `discord.Client`."""
    if renderer is None:
        renderer = build_renderer()
    if settings.shard_count is None:
        return MathBot(settings, assistant, renderer, commands=APP_COMMANDS, **options)
    options.setdefault("shard_count", settings.shard_count)
    if settings.shard_ids is not None:
        options.setdefault("shard_ids", list(settings.shard_ids))
    return ShardedMathBot(settings, assistant, renderer, commands=APP_COMMANDS, **options)

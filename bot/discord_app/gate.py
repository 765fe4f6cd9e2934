"""Whether a server message for the bot is answered where it was sent (`/settings mentions`)."""

from __future__ import annotations

import logging

import discord

from ..core.assistant import Assistant
from ..memory.outage import StoreUnavailable
from .requesters import from_message

log = logging.getLogger(__name__)


async def answers_here(assistant: Assistant, message: discord.Message) -> bool:
    """False in a server channel its managers left out of the mention channels (a listed
    channel covers its threads, a listed category its channels); DMs are always answered.
    When the settings can't be read, the message is answered (the turn reports the outage)."""
    if message.guild is None:
        return True
    try:
        return await assistant.choices.answers_mentions(from_message(message))
    except StoreUnavailable as exc:
        log.warning("could not read the mention channels of server %s: %s", message.guild.id, exc)
        return True

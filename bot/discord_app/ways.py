"""Whether a message is for the bot, and which way it came: a mention, a DM, or its thread."""

from __future__ import annotations

import discord

_ANSWERED_TYPES = (discord.MessageType.default, discord.MessageType.reply)


def way_in(message: discord.Message, me: discord.abc.User) -> str | None:
    """`dm`, `thread` (a follow-up in a thread the bot started), `mention`, or None when
    the message is not for the bot: the one rule `MessageFlow` and the metrics share."""
    if message.author.bot or message.type not in _ANSWERED_TYPES:
        return None
    if message.guild is None:
        return "dm"
    channel = message.channel
    if isinstance(channel, discord.Thread) and channel.owner_id == me.id:
        return "thread"
    if any(user.id == me.id for user in message.mentions):
        return "mention"
    return None

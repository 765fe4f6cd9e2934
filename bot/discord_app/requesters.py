"""Who is asking, and where: Discord objects turned into the core's `Requester`."""

from __future__ import annotations

import discord

from ..limits.access import Requester


def from_message(message: discord.Message) -> Requester:
    return _requester(message.author, message.guild, message.channel)


def from_interaction(interaction: discord.Interaction) -> Requester:
    channel = interaction.channel
    requester = _requester(interaction.user, interaction.guild, channel)
    if interaction.guild_id is not None and requester.guild_id is None:
        # a user-installed app in a server without the bot: the guild isn't cached
        return Requester(
            user_id=requester.user_id,
            role_ids=requester.role_ids,
            guild_id=interaction.guild_id,
            channel_id=interaction.channel_id,
            parent_ids=requester.parent_ids,
        )
    return requester


def _requester(
    user: discord.User | discord.Member,
    guild: discord.Guild | None,
    channel: object,
) -> Requester:
    roles = frozenset(r.id for r in user.roles) if isinstance(user, discord.Member) else frozenset()
    return Requester(
        user_id=user.id,
        role_ids=roles,
        guild_id=guild.id if guild is not None else None,
        channel_id=getattr(channel, "id", None),
        parent_ids=_parents(channel),
    )


def _parents(channel: object) -> tuple[int, ...]:
    """A thread's parent channel and that channel's category; a channel's category."""
    parents: list[int] = []
    if isinstance(channel, discord.Thread):
        parents.append(channel.parent_id)
        channel = channel.parent
    category_id = getattr(channel, "category_id", None)
    if category_id is not None:
        parents.append(category_id)
    return tuple(parents)

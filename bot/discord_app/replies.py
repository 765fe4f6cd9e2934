"""Sending answers to Discord: split to size, never empty, and pinging nobody."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import discord

from ..splitting import split_message

log = logging.getLogger(__name__)

# Nobody is pinged by anything the bot sends: a model can be talked into writing @everyone.
NO_PINGS = discord.AllowedMentions.none()
# A reply may notify the person it answers, and no one else.
REPLY_PINGS = discord.AllowedMentions(everyone=False, users=False, roles=False, replied_user=True)


async def send_answer(
    destination: discord.abc.Messageable,
    text: str,
    *,
    reply_to: discord.Message | None = None,
) -> list[discord.Message]:
    """Send `text` in as many messages as it takes; the first may reply to `reply_to`."""
    sent: list[discord.Message] = []
    for index, chunk in enumerate(split_message(text)):
        if index == 0 and reply_to is not None:
            sent.append(
                await destination.send(
                    chunk, reference=reply_to, allowed_mentions=REPLY_PINGS, mention_author=True
                )
            )
        else:
            sent.append(await destination.send(chunk, allowed_mentions=NO_PINGS))
    return sent


async def send_followups(
    interaction: discord.Interaction, text: str, *, ephemeral: bool = False
) -> None:
    """Answer a deferred interaction with as many followup messages as `text` needs."""
    for chunk in split_message(text):
        await interaction.followup.send(chunk, allowed_mentions=NO_PINGS, ephemeral=ephemeral)


@asynccontextmanager
async def typing_in(destination: discord.abc.Messageable) -> AsyncIterator[None]:
    """Show "typing…" while the body runs; a failure to show it never fails the answer."""
    async with AsyncExitStack() as stack:
        try:
            await stack.enter_async_context(destination.typing())
        except discord.HTTPException as exc:
            log.warning("could not show the typing indicator: %s", exc)
        yield

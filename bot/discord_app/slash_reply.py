"""Answering a deferred slash command in place: its response edited, then followups, for 15 min."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import discord

from ..render.discord_limits import INTERACTION_TOKEN_SECONDS
from .replies import NO_PINGS, ChannelSurface, Piece, edit_piece, retried

log = logging.getLogger(__name__)

# Stop using the interaction's token this long before Discord expires it: what is left of an
# answer by then goes to ordinary channel messages.
TOKEN_MARGIN = dt.timedelta(seconds=60)
MOVED = (
    "*This answer is taking longer than Discord lets me edit a reply to /math "
    "(15 minutes): it follows in a new message.*"
)


class InteractionSurface:
    """The messages of an answer to a deferred interaction: the first fills the deferred
    response (`edit_original_response`), the next are followups. Near the end of the
    token's 15 minutes the response says that the answer moves on, and it continues as
    ordinary messages in the channel (which needs the bot to be able to post there)."""

    def __init__(self, interaction: discord.Interaction[Any], *, heading: str = "") -> None:
        self._interaction = interaction
        self._heading = heading
        self._used_original = False
        self._moved: ChannelSurface | None = None
        self._closes = (
            interaction.created_at + dt.timedelta(seconds=INTERACTION_TOKEN_SECONDS) - TOKEN_MARGIN
        )

    async def post(self, piece: Piece, *, first: bool) -> discord.Message:
        if self._moved is not None:
            return await self._moved.post(piece, first=first)
        if not self._used_original:
            self._used_original = True
            return await retried(
                lambda: self._interaction.edit_original_response(
                    content=piece.text, attachments=piece.files(), allowed_mentions=NO_PINGS
                )
            )
        # not retried: a webhook message has no nonce, so a retry could post it twice
        return await self._interaction.followup.send(
            piece.text, files=piece.files(), allowed_mentions=NO_PINGS, wait=True
        )

    async def edit(self, message: discord.Message, piece: Piece) -> None:
        await edit_piece(message, piece)

    async def delete(self, message: discord.Message) -> None:
        await message.delete()

    async def editable(self, sent: list[discord.Message]) -> list[discord.Message]:
        if self._moved is not None or discord.utils.utcnow() < self._closes:
            return sent
        await self._move(sent)
        return []

    async def _move(self, sent: list[discord.Message]) -> None:
        """Say in the response that the answer moves on; drop the followups of the draft."""
        channel = self._interaction.channel
        where: discord.abc.Messageable = (
            channel
            if isinstance(channel, discord.abc.Messageable)
            else self._interaction.user  # no channel to post in: privately, then
        )
        self._moved = ChannelSurface(where)
        note = f"{self._heading}\n{MOVED}" if self._heading else MOVED
        try:
            await self._interaction.edit_original_response(
                content=note, attachments=[], allowed_mentions=NO_PINGS
            )
            for message in sent[1:]:
                await message.delete()
        except discord.HTTPException as exc:
            log.warning("could not close a slash command's reply before its token ran out: %s", exc)

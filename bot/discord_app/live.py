"""A streamed reply: posted as soon as text arrives, edited as it grows, within rate limits."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import discord

from ..core.assistant import Answer
from ..render.discord_limits import MESSAGE_CHARS
from ..render.splitting import split_message
from ..render.unicode import to_discord_text
from .replies import MAX_ANSWER_MESSAGES, NO_PINGS, Piece, send_piece, show_in_place

log = logging.getLogger(__name__)

# A draft shows at most this much of the answer written so far: what fits the messages an
# answer may take. Each edit's work is bounded by it however long the answer grows.
DRAFT_CHARS = MAX_ANSWER_MESSAGES * MESSAGE_CHARS


def draft_chunks(text: str) -> list[str]:
    """The messages of a draft of `text`: at most `MAX_ANSWER_MESSAGES`, made from its first
    `DRAFT_CHARS` characters (call it in a thread: inline math conversion is CPU work)."""
    return split_message(to_discord_text(text[:DRAFT_CHARS]))[:MAX_ANSWER_MESSAGES]


class LiveReply:
    """Shows an answer while the model writes it.

    `update()` (the core's text listener) only records the latest text; a background task
    posts it, then edits the message at most once per `interval` seconds, continuing in a
    new message past Discord's 2,000 characters. Drafts are rendered in a thread and show
    at most the answer's first `DRAFT_CHARS` characters. `finish()` puts the final, fully rendered
    answer (math images included) in place of the draft.
    """

    def __init__(self, *, interval: float) -> None:
        self._destination: discord.abc.Messageable | None = None
        self._reply_to: discord.Message | None = None
        self._interval = interval
        self._text = ""
        self._changed = asyncio.Event()
        self._sent: list[discord.Message] = []
        self._shown: list[str] = []
        self._task: asyncio.Task[None] | None = None
        self._last_change = float("-inf")  # loop time of the last post or edit
        self._stop = asyncio.Event()

    def update(self, text: str) -> None:
        self._text = text
        self._changed.set()

    def start(
        self, destination: discord.abc.Messageable, *, reply_to: discord.Message | None
    ) -> None:
        """Begin showing drafts in `destination` (text that came before is shown at once)."""
        self._destination, self._reply_to = destination, reply_to
        self._task = asyncio.create_task(self._publish(), name="mathbot-live-reply")

    async def finish(self, answer: Answer) -> list[discord.Message]:
        """Stop drafting and show the final answer (or nothing, if it is empty)."""
        self._stop.set()
        self._changed.set()
        if self._task is not None:
            await self._task  # never cut off mid-request: a draft Discord made must be known
        if self._sent:  # the final edit keeps to the pace too
            loop = asyncio.get_running_loop()
            await asyncio.sleep(max(0.0, self._last_change + self._interval - loop.time()))
        if self._destination is None:
            return []
        return await show_in_place(self._sent, self._destination, answer, reply_to=self._reply_to)

    async def _publish(self) -> None:
        """Push drafts, at most one change per interval, until `finish()` stops it."""
        loop = asyncio.get_running_loop()
        with contextlib.suppress(TimeoutError):  # a quick answer needs no draft at all
            await asyncio.wait_for(self._stop.wait(), self._interval / 2)
        while True:
            await self._changed.wait()
            self._changed.clear()
            if self._stop.is_set():
                return
            try:
                await self._show(self._text)
            except discord.HTTPException as exc:
                log.warning("could not update a streamed reply: %s", exc)
            self._last_change = loop.time()
            with contextlib.suppress(TimeoutError):  # the pause, cut short by finish()
                await asyncio.wait_for(self._stop.wait(), self._interval)

    async def _show(self, text: str) -> None:
        chunks = await asyncio.to_thread(draft_chunks, text)
        for index, chunk in enumerate(chunks):
            if index < len(self._shown):
                if self._shown[index] != chunk:
                    await self._sent[index].edit(content=chunk, allowed_mentions=NO_PINGS)
                    self._shown[index] = chunk
            else:
                await self._send(Piece(chunk))
                self._shown.append(chunk)

    async def _send(self, piece: Piece) -> None:
        assert self._destination is not None, "start() first"
        reply_to = None if self._sent else self._reply_to
        self._sent.append(await send_piece(self._destination, piece, reply_to=reply_to))

"""A streamed reply: posted as soon as text arrives, edited as it grows, within rate limits."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import discord

from ..core.assistant import Answer
from ..render.discord_limits import MESSAGE_CHARS
from ..render.drafts import DraftRenderer
from ..render.renderer import Renderer
from ..render.shown import MAX_ANSWER_MESSAGES
from ..render.splitting import split_message
from .replies import ChannelSurface, Piece, Surface, render, show_pieces

log = logging.getLogger(__name__)

# A draft shows at most this much of the answer written so far: what fits the messages an
# answer may take. Each edit's work is bounded by it however long the answer grows.
DRAFT_CHARS = MAX_ANSWER_MESSAGES * MESSAGE_CHARS
# What a draft says while a tool runs, by tool (any other tool: `WORKING`).
PROGRESS = {"calculate": "calculating…", "check": "calculating…", "plot": "drawing the graph…"}
WORKING = "working…"


def progress_line(labels: list[str]) -> str:
    """The draft's line while tools run, e.g. `*calculating… drawing the graph…*`."""
    return "*" + " ".join(labels) + "*"


class LiveReply:
    """Shows an answer while the model writes it (the core's `TextListener`).

    `text()` and `progress()` only record what happened; a background task posts a draft,
    then edits it at most once per `interval` seconds (the final answer goes at once),
    continuing in a new message past Discord's 2,000 characters. While a tool runs the draft
    says so ("calculating…"); the answer written after it takes its place. Drafts show at
    most the answer's first `DRAFT_CHARS` characters, under `heading` if one is given, with
    inline math as Unicode (converted incrementally, in a thread). `finish()` puts the final
    answer, rendered by `renderer` (math images included), in place of the draft, on the
    same `Surface`.
    """

    def __init__(self, renderer: Renderer, *, interval: float, heading: str = "") -> None:
        self._renderer = renderer
        self._surface: Surface | None = None
        self._interval = interval
        self._drafts = DraftRenderer(limit=DRAFT_CHARS, heading=heading)
        self._new: list[str] = []  # text written since the last draft
        self._taken = 0  # characters of the answer taken since it (re)started
        self._restart = False  # the answer started over since the last draft
        self._labels: list[str] = []  # what the tools running since the last text are doing
        self._changed = asyncio.Event()
        self._sent: list[discord.Message] = []
        self._shown: list[str] = []
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    def text(self, more: str) -> None:
        more = more[: DRAFT_CHARS - self._taken]
        if more:
            self._taken += len(more)
            self._new.append(more)
            self._labels.clear()
            self._changed.set()

    def progress(self, tool: str | None) -> None:
        self._new.clear()
        self._taken = 0
        self._restart = True
        label = None if tool is None else PROGRESS.get(tool, WORKING)
        if label is not None and label not in self._labels:
            self._labels.append(label)
        self._changed.set()

    def start(
        self, destination: discord.abc.Messageable, *, reply_to: discord.Message | None
    ) -> None:
        """Begin showing drafts in `destination` (text that came before is shown at once)."""
        self.start_on(ChannelSurface(destination, reply_to))

    def start_on(self, surface: Surface) -> None:
        """Begin showing drafts on `surface`."""
        self._surface = surface
        self._task = asyncio.create_task(self._publish(), name="mathbot-live-reply")

    async def finish(self, answer: Answer) -> list[discord.Message]:
        """Stop drafting and show the final answer (or nothing, if it is empty)."""
        self._stop.set()
        self._changed.set()
        if self._task is not None:
            await self._task  # never cut off mid-request: a draft Discord made must be known
        # The final answer goes at once, not at the drafts' pace: the user is waiting for it,
        # and it is one request more. Discord's rate limits still hold: discord.py waits
        # when its headers say a route's bucket is empty.
        if self._surface is None:
            return []
        pieces = (
            await render(self._renderer, answer.text, answer.attachments) if answer.text else []
        )
        return await show_pieces(self._sent, self._surface, pieces)

    async def _publish(self) -> None:
        """Push drafts, at most one change per interval, until `finish()` stops it."""
        with contextlib.suppress(TimeoutError):  # a quick answer needs no draft at all
            await asyncio.wait_for(self._stop.wait(), self._interval / 2)
        while True:
            await self._changed.wait()
            self._changed.clear()
            if self._stop.is_set():
                return
            try:
                await self._show()
            except discord.HTTPException as exc:
                log.warning("could not update a streamed reply: %s", exc)
            with contextlib.suppress(TimeoutError):  # the pause, cut short by finish()
                await asyncio.wait_for(self._stop.wait(), self._interval)

    def _draft(self, new: str, restart: bool, labels: list[str]) -> list[str]:
        """The draft's messages (in a thread: converting math is CPU work)."""
        if restart:
            self._drafts.reset()
        draft = self._drafts.update(new)
        if labels:
            draft = self._drafts.show(progress_line(labels))
        return split_message(draft)[:MAX_ANSWER_MESSAGES]

    async def _show(self) -> None:
        assert self._surface is not None, "start() first"
        new, self._new = "".join(self._new), []
        restart, self._restart = self._restart, False
        chunks = await asyncio.to_thread(self._draft, new, restart, list(self._labels))
        if not chunks:
            return
        sent = await self._surface.editable(self._sent)
        if sent is not self._sent:  # moved elsewhere: what was shown stays as it is
            self._sent, self._shown = sent, self._shown[: len(sent)]
        for index, chunk in enumerate(chunks):
            if index < len(self._sent):
                if self._shown[index] != chunk:
                    await self._surface.edit(self._sent[index], Piece(chunk))
                    self._shown[index] = chunk
            else:
                self._sent.append(await self._surface.post(Piece(chunk), first=not self._sent))
                self._shown.append(chunk)
        while len(self._sent) > len(chunks):  # a shorter draft (the answer started over)
            self._shown.pop()
            await self._surface.delete(self._sent.pop())

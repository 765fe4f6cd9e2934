"""Sending answers to Discord: split to size, never empty, and pinging nobody."""

from __future__ import annotations

import asyncio
import io
import logging
import re
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import discord
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from ..core.assistant import Answer
from ..render.discord_limits import ATTACHMENTS_PER_MESSAGE
from ..render.images import Image
from ..render.renderer import Renderer
from ..render.shown import MAX_ANSWER_MESSAGES, shown_part
from ..render.splitting import split_message

log = logging.getLogger(__name__)
T = TypeVar("T")

# Nobody is pinged by anything the bot sends: a model can be talked into writing @everyone.
NO_PINGS = discord.AllowedMentions.none()
# A reply may notify the person it answers, and no one else.
REPLY_PINGS = discord.AllowedMentions(everyone=False, users=False, roles=False, replied_user=True)


FULL_ANSWER_NAME = "answer.md"
FULL_ANSWER_DESCRIPTION = "The whole answer, as written (Markdown and LaTeX)"
CONTINUED_NOTE = "*…the answer is too long for chat: the whole of it is in `answer.md`.*"

_PLACEHOLDER = re.compile(r"\[formula (\d+)\]")


@dataclass(frozen=True)
class Document:
    """A file other than a picture sent with an answer (the whole answer as `answer.md`)."""

    name: str
    data: bytes
    description: str = ""


Attachment = Image | Document


def _file(attached: Attachment) -> discord.File:
    data = attached.png if isinstance(attached, Image) else attached.data
    return discord.File(
        io.BytesIO(data), filename=attached.name, description=attached.description or None
    )


@dataclass(frozen=True)
class Piece:
    """One Discord message of an answer: its text and the files (images first) it shows."""

    text: str
    images: tuple[Attachment, ...] = ()

    def files(self) -> list[discord.File]:
        """Fresh files for one request (an upload consumes them), with their alt text."""
        return [_file(attached) for attached in self.images]


async def render(renderer: Renderer, text: str, pictures: Sequence[Image] = ()) -> list[Piece]:
    """The answer as Discord messages: inline math as Unicode, display math as PNG images
    (drawn by `renderer`, in a worker process) attached to the message that mentions them,
    cut to Discord's size; `pictures` (e.g. plots) go with the last message. An answer longer
    than `MAX_ANSWER_MESSAGES` messages shows its beginning (only that much is rendered:
    `shown_part`) and attaches the whole of `text` as `answer.md` to the last one."""
    part = shown_part(text)
    prepared = await renderer.prepare(part)
    images = dict(enumerate(prepared.images, start=1))
    chunks = await asyncio.to_thread(split_message, prepared.text)
    extra: tuple[Document, ...] = ()
    if part is not text or len(chunks) > MAX_ANSWER_MESSAGES:  # cut, or longer once rendered
        chunks = [*chunks[: MAX_ANSWER_MESSAGES - 1], CONTINUED_NOTE]
        extra = (Document(FULL_ANSWER_NAME, text.encode(), FULL_ANSWER_DESCRIPTION),)
    pieces: list[Piece] = []
    for chunk in chunks:
        shown = [int(n) for n in _PLACEHOLDER.findall(chunk)]
        pieces.append(Piece(chunk, tuple(images.pop(n) for n in shown if n in images)))
    if extra:
        images.clear()  # formulas of the part not shown: their source is in the file
    # lost placeholders, pictures, the file
    leftover: tuple[Attachment, ...] = (*extra, *images.values(), *pictures)
    if leftover:
        last = pieces.pop() if pieces else Piece("")
        files = last.images + tuple(leftover)
        pieces.append(Piece(last.text, files[:ATTACHMENTS_PER_MESSAGE]))
        for start in range(ATTACHMENTS_PER_MESSAGE, len(files), ATTACHMENTS_PER_MESSAGE):
            pieces.append(Piece("", files[start : start + ATTACHMENTS_PER_MESSAGE]))
    return pieces


async def send_answer(
    renderer: Renderer,
    destination: discord.abc.Messageable,
    text: str,
    *,
    pictures: Sequence[Image] = (),
    reply_to: discord.Message | None = None,
) -> list[discord.Message]:
    """Send `text` in as many messages as it takes; the first may reply to `reply_to`."""
    sent: list[discord.Message] = []
    for piece in await render(renderer, text, pictures):
        sent.append(await send_piece(destination, piece, reply_to=None if sent else reply_to))
    return sent


async def retried(call: Callable[[], Awaitable[T]]) -> T:
    """`call()`, tried twice more on a Discord 5xx that discord.py itself does not retry
    (503 among them), with a short backoff."""
    async for attempt in _retrying():
        with attempt:
            return await call()
    raise AssertionError("unreachable: the last attempt re-raises")


def _retrying() -> AsyncRetrying:
    return AsyncRetrying(
        retry=retry_if_exception_type(discord.DiscordServerError),
        stop=stop_after_attempt(3),
        wait=wait_exponential(multiplier=0.5, max=4),
        before_sleep=lambda state: log.warning(
            "Discord failed (%s); trying again", state.outcome and state.outcome.exception()
        ),
        reraise=True,
    )


class Surface(Protocol):
    """Where the messages of one answer go: posted, edited and deleted there."""

    async def post(self, piece: Piece, *, first: bool) -> discord.Message:
        """A new message of the answer (`first`: the answer's first)."""
        ...

    async def edit(self, message: discord.Message, piece: Piece) -> None: ...

    async def delete(self, message: discord.Message) -> None: ...

    async def editable(self, sent: list[discord.Message]) -> list[discord.Message]:
        """Those of the answer's messages `sent` so far that may still be changed (the rest
        stay as they are)."""
        ...


@dataclass(frozen=True)
class ChannelSurface:
    """Messages in a channel; the first may reply to `reply_to`."""

    destination: discord.abc.Messageable
    reply_to: discord.Message | None = None

    async def post(self, piece: Piece, *, first: bool) -> discord.Message:
        return await send_piece(self.destination, piece, reply_to=self.reply_to if first else None)

    async def edit(self, message: discord.Message, piece: Piece) -> None:
        await edit_piece(message, piece)

    async def delete(self, message: discord.Message) -> None:
        await message.delete()

    async def editable(self, sent: list[discord.Message]) -> list[discord.Message]:
        return sent


async def edit_piece(message: discord.Message, piece: Piece) -> None:
    """Make `message` show `piece` (its text and files), retried on Discord server errors."""

    def edit() -> Awaitable[discord.Message]:
        # fresh files on every attempt: an upload consumes them
        return message.edit(
            content=piece.text, attachments=piece.files(), allowed_mentions=NO_PINGS
        )

    await retried(edit)


async def show_pieces(
    sent: list[discord.Message], surface: Surface, pieces: Sequence[Piece]
) -> list[discord.Message]:
    """Turn the messages already `sent` on `surface` into `pieces`: edit them, add or delete
    as needed."""
    sent = await surface.editable(sent)
    shown: list[discord.Message] = []
    for index, piece in enumerate(pieces):
        if index < len(sent):
            await surface.edit(sent[index], piece)
            shown.append(sent[index])
        else:
            shown.append(await surface.post(piece, first=not shown))
    for extra in sent[len(pieces) :]:
        await surface.delete(extra)
    return shown


async def show_in_place(
    renderer: Renderer,
    sent: list[discord.Message],
    destination: discord.abc.Messageable,
    answer: Answer,
    *,
    reply_to: discord.Message | None = None,
) -> list[discord.Message]:
    """Turn the messages already `sent` into `answer`: edit them, add or delete as needed."""
    pieces = await render(renderer, answer.text, answer.attachments) if answer.text else []
    return await show_pieces(sent, ChannelSurface(destination, reply_to), pieces)


async def send_piece(
    destination: discord.abc.Messageable, piece: Piece, *, reply_to: discord.Message | None
) -> discord.Message:
    """One message of an answer; as a reply (which may notify its author) when asked.
    Retried on Discord server errors with one nonce, so a retry never posts it twice."""
    nonce = secrets.randbits(63)
    options: dict[str, Any] = {"allowed_mentions": NO_PINGS, "nonce": nonce}
    if reply_to is not None:
        options = {**options, "reference": reply_to, "allowed_mentions": REPLY_PINGS}
        options["mention_author"] = True
    return await retried(lambda: destination.send(piece.text, files=piece.files(), **options))


async def send_followups(
    renderer: Renderer,
    interaction: discord.Interaction,
    text: str,
    *,
    pictures: Sequence[Image] = (),
    ephemeral: bool = False,
) -> None:
    """Answer a deferred interaction with as many followup messages as `text` needs."""
    for piece in await render(renderer, text, pictures):
        await interaction.followup.send(
            piece.text, files=piece.files(), allowed_mentions=NO_PINGS, ephemeral=ephemeral
        )


@asynccontextmanager
async def typing_in(destination: discord.abc.Messageable) -> AsyncIterator[None]:
    """Show "typing…" while the body runs; a failure to show it never fails the answer."""
    async with AsyncExitStack() as stack:
        try:
            await stack.enter_async_context(destination.typing())
        except discord.HTTPException as exc:
            log.warning("could not show the typing indicator: %s", exc)
        yield

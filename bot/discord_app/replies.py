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
from typing import Any, TypeVar

import discord
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from ..core.assistant import Answer
from ..render.answer import prepare_answer
from ..render.discord_limits import ATTACHMENTS_PER_MESSAGE
from ..render.splitting import split_message

log = logging.getLogger(__name__)
T = TypeVar("T")

# Nobody is pinged by anything the bot sends: a model can be talked into writing @everyone.
NO_PINGS = discord.AllowedMentions.none()
# A reply may notify the person it answers, and no one else.
REPLY_PINGS = discord.AllowedMentions(everyone=False, users=False, roles=False, replied_user=True)


# An answer is sent as at most this many messages; a longer one shows its beginning and
# attaches the whole answer (as the model wrote it, Markdown and LaTeX) as `answer.md`.
MAX_ANSWER_MESSAGES = 5
FULL_ANSWER_NAME = "answer.md"
CONTINUED_NOTE = "*…the answer is too long for chat: the whole of it is in `answer.md`.*"

_PLACEHOLDER = re.compile(r"\[formula (\d+)\]")


@dataclass(frozen=True)
class Piece:
    """One Discord message of an answer: its text and the formula images it shows."""

    text: str
    images: tuple[tuple[str, bytes], ...] = ()

    def files(self) -> list[discord.File]:
        return [discord.File(io.BytesIO(png), filename=name) for name, png in self.images]


async def render(text: str, pictures: Sequence[tuple[str, bytes]] = ()) -> list[Piece]:
    """The answer as Discord messages: inline math as Unicode, display math as PNG images
    (drawn in a thread) attached to the message that mentions them, cut to Discord's size;
    `pictures` (e.g. plots) go with the last message. An answer longer than
    `MAX_ANSWER_MESSAGES` messages shows its beginning and attaches the whole of `text` as
    `answer.md` to the last one."""
    prepared = await asyncio.to_thread(prepare_answer, text)
    images = dict(enumerate(prepared.images, start=1))
    chunks = await asyncio.to_thread(split_message, prepared.text)
    extra: tuple[tuple[str, bytes], ...] = ()
    if len(chunks) > MAX_ANSWER_MESSAGES:
        chunks = [*chunks[: MAX_ANSWER_MESSAGES - 1], CONTINUED_NOTE]
        extra = ((FULL_ANSWER_NAME, text.encode()),)
    pieces: list[Piece] = []
    for chunk in chunks:
        shown = [int(n) for n in _PLACEHOLDER.findall(chunk)]
        pieces.append(Piece(chunk, tuple(images.pop(n) for n in shown if n in images)))
    if extra:
        images.clear()  # formulas of the part not shown: their source is in the file
    leftover = (*extra, *images.values(), *pictures)  # lost placeholders, pictures, the file
    if leftover:
        last = pieces.pop() if pieces else Piece("")
        files = last.images + tuple(leftover)
        pieces.append(Piece(last.text, files[:ATTACHMENTS_PER_MESSAGE]))
        for start in range(ATTACHMENTS_PER_MESSAGE, len(files), ATTACHMENTS_PER_MESSAGE):
            pieces.append(Piece("", files[start : start + ATTACHMENTS_PER_MESSAGE]))
    return pieces


async def send_answer(
    destination: discord.abc.Messageable,
    text: str,
    *,
    pictures: Sequence[tuple[str, bytes]] = (),
    reply_to: discord.Message | None = None,
) -> list[discord.Message]:
    """Send `text` in as many messages as it takes; the first may reply to `reply_to`."""
    sent: list[discord.Message] = []
    for piece in await render(text, pictures):
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


async def show_in_place(
    sent: list[discord.Message],
    destination: discord.abc.Messageable,
    answer: Answer,
    *,
    reply_to: discord.Message | None = None,
) -> list[discord.Message]:
    """Turn the messages already `sent` into `answer`: edit them, add or delete as needed."""
    pieces = await render(answer.text, answer.attachments) if answer.text else []
    shown: list[discord.Message] = []
    for index, piece in enumerate(pieces):
        if index < len(sent):
            message = sent[index]

            def edit(m: discord.Message = message, p: Piece = piece) -> Awaitable[discord.Message]:
                # fresh files on every attempt: an upload consumes them
                return m.edit(content=p.text, attachments=p.files(), allowed_mentions=NO_PINGS)

            await retried(edit)
            shown.append(message)
        else:
            first = not shown
            shown.append(await send_piece(destination, piece, reply_to=reply_to if first else None))
    for extra in sent[len(pieces) :]:
        await extra.delete()
    return shown


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
    interaction: discord.Interaction,
    text: str,
    *,
    pictures: Sequence[tuple[str, bytes]] = (),
    ephemeral: bool = False,
) -> None:
    """Answer a deferred interaction with as many followup messages as `text` needs."""
    for piece in await render(text, pictures):
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

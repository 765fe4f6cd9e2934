"""A question from Discord before the core admits it: the asker's text and files, and the
message it is about (a reply's, or the menu's), all checked before anything is downloaded."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass

import aiohttp
import discord

from ..core.assistant import MAX_QUESTION_CHARS, Assistant, Question
from ..errors import UserFacingError
from ..limits.access import Requester
from ..render.uploads import (
    NO_IMAGES,
    Upload,
    check_attachments,
    check_size,
    fence_for,
    kind_of,
    size_limit,
)

log = logging.getLogger(__name__)

_CHUNK_BYTES = 64 * 1024  # read from an attachment's URL at a time
MAX_SPEAKER_CHARS = 80  # characters of a display name quoted to the model
_NOT_IN_A_NAME = re.compile(r"[\[\]`\x00-\x1f\x7f]+")
UNREADABLE = (
    "I can't read the message you replied to: it may have been deleted, or I may not be "
    "allowed to read this channel's history. Please copy the problem into your question."
)
QUOTE_TOO_LONG = (
    "The message you asked about is too long for me: with your question it makes {size:,} "
    "characters, and I read up to {limit:,} characters of typed text."
)
NOTHING_TO_READ = "That message has no text or files I can read."
NO_DOWNLOAD = "I couldn't download {name}; please try again."


@dataclass(frozen=True)
class Pending:
    """A question checked from what Discord declares: its text (the asker's, then the quoted
    message) and the files still to download."""

    text: str
    files: tuple[discord.Attachment, ...] = ()


async def replied_to(message: discord.Message) -> discord.Message | None:
    """The message `message` replies to, or None when it is not a reply. Uses the copy
    Discord sent with it, else fetches it (Read Message History); `UserFacingError` when it
    cannot be read (deleted, or not allowed)."""
    reference = message.reference
    if (
        message.type is not discord.MessageType.reply
        or reference is None
        or reference.message_id is None
        or reference.type is not discord.MessageReferenceType.reply
    ):
        return None
    resolved = reference.resolved
    if isinstance(resolved, discord.Message):
        return resolved
    if isinstance(resolved, discord.DeletedReferencedMessage):
        raise UserFacingError(UNREADABLE)
    try:
        return await message.channel.fetch_message(reference.message_id)
    except discord.HTTPException as exc:
        log.info("could not fetch the message replied to in %s: %s", message.channel.id, exc)
        raise UserFacingError(UNREADABLE) from None


def quote(about: discord.Message) -> str:
    """A message's text as the model reads it: under its author's display name, fenced so
    nothing in it can end the quote."""
    body = about.content.strip()
    if not body:
        return ""
    fence = fence_for(body)
    return (
        f"[the message this question is about, by {speaker(about.author.display_name)}]\n"
        f"{fence}\n{body}\n{fence}"
    )


def speaker(name: str) -> str:
    """A display name fit to quote: one line, no brackets or backticks, shortened."""
    cleaned = " ".join(_NOT_IN_A_NAME.sub(" ", name).split())[:MAX_SPEAKER_CHARS]
    return cleaned or "someone"


def prepare(
    typed: str,
    files: Sequence[discord.Attachment],
    about: discord.Message | None,
    *,
    images_allowed: bool,
    about_files: bool = True,
) -> Pending:
    """The question of `typed` and `files`, about the message `about` (its text quoted, and
    its files too unless `about_files` is false), or `UserFacingError`: the whole typed text
    over the question's limit, or the files together over the limits of one question (count,
    kinds, sizes, text). Uses only what Discord declares: nothing is downloaded."""
    text = typed.strip()
    every = tuple(files)
    if about is not None:
        text = "\n\n".join(part for part in (text, quote(about)) if part)
        if about_files:
            every += tuple(about.attachments)
        if len(text) > MAX_QUESTION_CHARS:
            raise UserFacingError(QUOTE_TOO_LONG.format(size=len(text), limit=MAX_QUESTION_CHARS))
    if every:
        kinds = check_attachments([(a.filename, a.content_type, a.size) for a in every])
        if "image" in kinds and not images_allowed:
            raise UserFacingError(NO_IMAGES)
    return Pending(text, every)


async def admit(
    assistant: Assistant,
    client: discord.Client,
    who: Requester,
    pending: Pending,
) -> Question:
    """The question, admitted: the asker is checked (access lists, rate limit) before any
    file is downloaded, and each download stops at its size limit."""
    if not pending.files:
        return assistant.admit(pending.text, who)
    assistant.admit_asker(who)
    uploads = await download_all(pending, client)
    return assistant.admit(pending.text, who, uploads, asker_admitted=True)


async def download_all(pending: Pending, client: discord.Client) -> tuple[Upload, ...]:
    """The pending question's files, downloaded one after the other."""
    session = _http_session(client)
    return tuple([await download(a, session) for a in pending.files])


async def download(
    attachment: discord.Attachment, session: aiohttp.ClientSession | None = None
) -> Upload:
    """An attached file, if it is a kind we read and not too big: the declared size is checked
    before downloading, the bytes received while downloading (streamed through `session`, the
    client's HTTP session, and stopped at the limit). Without a session the file is read whole
    by discord.py and its length checked after."""
    name, content_type = attachment.filename, attachment.content_type
    kind = kind_of(name, content_type)
    limit = size_limit(kind)
    check_size(name, kind, attachment.size)
    try:
        if session is None:
            data = await attachment.read()
        else:
            data = await _read_capped(session, attachment.url, limit + 1)
    except (discord.HTTPException, aiohttp.ClientError) as exc:
        log.warning("could not download attachment %s: %s", attachment.id, exc)
        raise UserFacingError(NO_DOWNLOAD.format(name=name)) from None
    check_size(name, kind, len(data))  # the size Discord declared is not trusted
    return Upload(name, kind, content_type or "", data)


async def _read_capped(session: aiohttp.ClientSession, url: str, cap: int) -> bytes:
    """At most `cap` bytes of `url`: the download stops as soon as it has received them."""
    received = bytearray()
    async with session.get(url) as response:
        if response.status != 200:
            raise discord.HTTPException(response, "could not download an attachment")
        async for chunk in response.content.iter_chunked(_CHUNK_BYTES):
            received += chunk
            if len(received) >= cap:
                break
    return bytes(received[:cap])


def _http_session(client: discord.Client) -> aiohttp.ClientSession | None:
    """discord.py's own HTTP session (it has no public accessor), if it has one open."""
    session = getattr(client.http, "_HTTPClient__session", None)
    if isinstance(session, aiohttp.ClientSession) and not session.closed:
        return session
    return None

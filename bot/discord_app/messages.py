"""Answering messages: mentions (in a new thread), follow-ups in the bot's threads, and DMs."""

from __future__ import annotations

import asyncio
import logging
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import aiohttp
import discord

from ..config.settings import Settings
from ..core.assistant import Answer, Assistant, Outcome, Question, TextListener
from ..core.failures import GENERIC
from ..errors import QuietRefusal, UserFacingError
from ..memory.keys import conversation_id
from ..render.uploads import (
    NO_IMAGES,
    Upload,
    check_attachments,
    check_size,
    kind_of,
    size_limit,
)
from .gate import answers_here
from .live import LiveReply
from .replies import NO_PINGS, send_answer, show_in_place, typing_in
from .requesters import from_message
from .ways import way_in

if TYPE_CHECKING:
    from discord.abc import MessageableChannel

log = logging.getLogger(__name__)

THREAD_NAME_LIMIT = 100
STOPPED = "Stopped: I dropped that question (nothing of it is remembered)."
_CHUNK_BYTES = 64 * 1024  # read from an attachment's URL at a time


class MessageFlow:
    """Decides which messages are for the bot and carries each from question to answer."""

    def __init__(self, client: discord.Client, assistant: Assistant, settings: Settings) -> None:
        self._client = client
        self._assistant = assistant
        self._settings = settings
        self._scope = settings.session_scope
        self._warned_guilds: set[int] = set()
        self._asked = AskedLog()

    async def handle(self, message: discord.Message) -> None:
        """A new message: answer it if it is for the bot."""
        me = self._client.user
        if me is None or way_in(message, me) is None:
            return
        if not await answers_here(self._assistant, message):
            return  # a channel left out by /settings mentions
        try:
            question = await self._admit(message, me)
        except UserFacingError as exc:
            await self._refuse(message, exc)
            return
        except QuietRefusal:
            return
        asked = self._asked.add(message.id, Asked(question.text))
        try:
            await self._answer(message, question, asked)
        finally:
            asked.ready.set()

    async def _answer(self, message: discord.Message, question: Question, asked: Asked) -> None:
        live = LiveReply(interval=self._settings.stream_edit_interval)
        on_text = live.update if self._settings.streaming else None
        turn, asked.session_id = self._submit_early(message, question, on_text)
        destination, reply_to = await self._destination(message, question.text)
        if turn is None:
            asked.session_id = self._conversation(message, destination.id)
            turn = self._assistant.submit(asked.session_id, question, on_text=on_text)
        asked.destination = destination
        async with typing_in(destination):
            if on_text is not None:
                live.start(destination, reply_to=reply_to)
            answer = await outcome(turn)
            asked.sent = await show(
                live if on_text else None, destination, answer, reply_to=reply_to
            )

    async def handle_edit(self, before: discord.Message, after: discord.Message) -> None:
        """An edited question: if it is the latest the bot answered, ask it again and put
        the new answer in place of the old one (the old turn leaves the memory)."""
        me = self._client.user
        asked = self._asked.get(after.id)
        if me is None or asked is None or before.content == after.content:
            return
        await asked.ready.wait()  # the first answer is out (the turn always ends)
        if asked.destination is None or not asked.sent:
            return
        try:
            question = await self._admit(after, me)
        except UserFacingError as exc:
            await self._refuse(after, exc)
            return
        except QuietRefusal:
            return
        turn = self._assistant.submit(asked.session_id, question, replaces=asked.question)
        async with typing_in(asked.destination):
            answer = await outcome(turn)
        if answer.outcome is Outcome.NOT_LATEST:
            return  # no longer the latest question: leave everything as it is
        asked.sent = await show_in_place(asked.sent, asked.destination, answer)
        asked.question = question.text

    async def _admit(self, message: discord.Message, me: discord.ClientUser) -> Question:
        """The question in a message, with its attached files, if it may be asked.

        Nothing is downloaded before the files' number, kinds and declared sizes are checked
        and the asker is admitted (access lists, rate limit); each download then stops at
        its size limit, whatever size Discord declared.
        """
        text = strip_mention(message.content, me.id)
        who = from_message(message)
        attachments = message.attachments
        if not attachments:
            return self._assistant.admit(text, who)
        kinds = check_attachments([(a.filename, a.content_type, a.size) for a in attachments])
        if "image" in kinds and not self._assistant.images_allowed:
            raise UserFacingError(NO_IMAGES)
        self._assistant.admit_asker(who)
        session = _http_session(self._client)
        uploads = tuple([await download(a, session) for a in attachments])
        return self._assistant.admit(text, who, uploads, asker_admitted=True)

    async def _refuse(self, message: discord.Message, refusal: UserFacingError) -> None:
        """Say why a message is not answered: in place, or privately (a DM) when asked to."""
        if not refusal.private or message.guild is None:
            await send_answer(message.channel, refusal.message, reply_to=message)
            return
        try:
            await message.author.send(refusal.message, allowed_mentions=NO_PINGS)
        except discord.HTTPException as exc:
            log.info("could not DM a refusal to user %s: %s", message.author.id, exc)

    def _conversation(self, message: discord.Message, where: int) -> str:
        """The conversation of a question asked in `message` and answered in channel `where`."""
        return conversation_id(self._scope, user_id=message.author.id, channel_id=where)

    def _submit_early(
        self, message: discord.Message, question: Question, on_text: TextListener | None
    ) -> tuple[asyncio.Task[Answer] | None, str]:
        """Queue the turn at once when its session is already known, so a user's messages
        are answered in the order they arrived."""
        if self._scope == "channel" and not _answered_in_place(message):
            return None, ""  # channel scope, new thread: its conversation is the thread's
        session_id = self._conversation(message, message.channel.id)
        return self._assistant.submit(session_id, question, on_text=on_text), session_id

    async def _destination(
        self, message: discord.Message, question: str
    ) -> tuple[MessageableChannel, discord.Message | None]:
        """Where the answer goes, and the message to reply to when it is not in a thread."""
        channel = message.channel
        if _answered_in_place(message):
            return channel, None
        if not isinstance(channel, discord.TextChannel):
            return channel, message
        try:
            thread = await message.create_thread(name=thread_name(question))
        except discord.Forbidden:
            self._warn_no_threads(message)
            return channel, message
        except discord.HTTPException as exc:
            log.warning("could not start a thread in channel %s: %s", channel.id, exc)
            return channel, message
        return thread, None

    def _warn_no_threads(self, message: discord.Message) -> None:
        guild_id = message.guild.id if message.guild else 0
        if guild_id in self._warned_guilds:
            return
        self._warned_guilds.add(guild_id)
        log.warning(
            "missing permission to create threads in channel %s of guild %s: replying in the "
            "channel instead (grant 'Create Public Threads' and 'Send Messages in Threads')",
            message.channel.id,
            guild_id,
        )


@dataclass
class Asked:
    """A question the bot answers: enough to answer it again in place if it is edited.
    `ready` is set once the answer is out (or the turn has failed)."""

    question: str
    session_id: str = ""
    destination: discord.abc.Messageable | None = None
    sent: list[discord.Message] = field(default_factory=list)
    ready: asyncio.Event = field(default_factory=asyncio.Event)


class AskedLog:
    """The latest questions answered, by message id; bounded, oldest dropped first."""

    def __init__(self, size: int = 500) -> None:
        self._size = size
        self._items: OrderedDict[int, Asked] = OrderedDict()

    def add(self, message_id: int, asked: Asked) -> Asked:
        self._items[message_id] = asked
        self._items.move_to_end(message_id)
        while len(self._items) > self._size:
            self._items.popitem(last=False)
        return asked

    def get(self, message_id: int) -> Asked | None:
        return self._items.get(message_id)


async def show(
    live: LiveReply | None,
    destination: discord.abc.Messageable,
    answer: Answer,
    *,
    reply_to: discord.Message | None,
) -> list[discord.Message]:
    """Put the answer on Discord: over the streamed draft, or as new messages."""
    if live is not None:
        return await live.finish(answer)
    if not answer.text and not answer.attachments:
        return []
    return await send_answer(
        destination, answer.text, pictures=answer.attachments, reply_to=reply_to
    )


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
    if session is None:
        data = await attachment.read()
    else:
        data = await _read_capped(session, attachment.url, limit + 1)
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


def _answered_in_place(message: discord.Message) -> bool:
    """A DM or a thread is answered where it was asked; elsewhere a thread is started."""
    return message.guild is None or isinstance(message.channel, discord.Thread)


async def outcome(turn: asyncio.Task[Answer]) -> Answer:
    """The answer, or a polite line saying what went wrong (empty text: say nothing)."""
    try:
        return await turn
    except asyncio.CancelledError:
        if not turn.cancelled():
            raise  # we are being cancelled ourselves, not the turn
        return Answer(STOPPED)
    except UserFacingError as exc:
        return Answer(exc.message)
    except Exception:
        log.exception("turn failed unexpectedly")
        return Answer(GENERIC)


def strip_mention(content: str, user_id: int) -> str:
    """The message without the bot's own mention(s)."""
    return re.sub(rf"<@!?{user_id}>", "", content).strip()


def thread_name(question: str) -> str:
    """A thread title from the question: one line, at most 100 characters."""
    name = " ".join(question.split())
    if len(name) > THREAD_NAME_LIMIT:
        name = name[: THREAD_NAME_LIMIT - 1].rstrip() + "…"
    return name or "math question"

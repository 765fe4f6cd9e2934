"""Answering messages: mentions (in a new thread), follow-ups in the bot's threads, and DMs."""

from __future__ import annotations

import asyncio
import logging
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import discord

from ..config.settings import Settings
from ..core.assistant import Answer, Assistant, Outcome, Question
from ..core.failures import GENERIC
from ..core.turn_order import Ticket
from ..errors import QuietRefusal, UserFacingError
from ..memory.keys import conversation_id
from ..render.renderer import Renderer
from . import asking
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


class MessageFlow:
    """Decides which messages are for the bot and carries each from question to answer."""

    def __init__(
        self,
        client: discord.Client,
        assistant: Assistant,
        settings: Settings,
        renderer: Renderer,
    ) -> None:
        self._client = client
        self._assistant = assistant
        self._renderer = renderer
        self._settings = settings
        self._scope = settings.session_scope
        self._warned_guilds: set[int] = set()
        self._asked = AskedLog()

    async def handle(self, message: discord.Message) -> None:
        """A new message: answer it if it is for the bot, in the order the asker's messages
        arrived (its turn's place is taken before its files are downloaded)."""
        me = self._client.user
        if me is None or (way := way_in(message, me)) is None:
            return
        early = self._session_known(message, _continues(message, me))
        ticket = self._assistant.reserve(early) if early is not None else None
        try:
            if not await answers_here(self._assistant, message):
                raise QuietRefusal  # a channel left out by /settings mentions
            self._assistant.metrics.question(way)
            question, about = await self._admit(message, me)
        except BaseException as exc:
            if ticket is not None:
                ticket.release()  # refused: later turns need not wait for it
            if isinstance(exc, UserFacingError):
                await self._refuse(message, exc)
                return
            if isinstance(exc, QuietRefusal):
                return
            raise
        asked = self._asked.add(message.id, Asked(question.text))
        try:
            await self._answer(message, question, asked, about, ticket)
        finally:
            asked.ready.set()

    async def _answer(
        self,
        message: discord.Message,
        question: Question,
        asked: Asked,
        about: discord.Message | None,
        ticket: Ticket | None,
    ) -> None:
        live = live_reply(self._settings, self._renderer)
        in_place = _answered_in_place(message) or _is_mine(about, self._client.user)
        turn = None
        known = self._session_known(message, in_place)
        if known is not None:  # queued at once: a user's messages are answered in order
            asked.session_id = known
            turn = self._assistant.submit(known, question, on_text=live, ticket=ticket)
        title = _title(message, about, self._client.user) or question.text
        destination, reply_to = await self._destination(message, title, in_place)
        if turn is None:
            asked.session_id = self._conversation(message, destination.id)
            turn = self._assistant.submit(asked.session_id, question, on_text=live)
        asked.destination = destination
        asked.sent = await show_turn(self._renderer, turn, live, destination, reply_to=reply_to)

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
            question, _ = await self._admit(after, me)
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
        asked.sent = await show_in_place(self._renderer, asked.sent, asked.destination, answer)
        asked.question = question.text

    async def _admit(
        self, message: discord.Message, me: discord.ClientUser
    ) -> tuple[Question, discord.Message | None]:
        """The question in a message, with its attached files and the message it replies to
        (its text quoted, its files attached), if it may be asked; and that message.

        Nothing is downloaded before the files' number, kinds and declared sizes are checked
        and the asker is admitted (access lists, rate limit); each download then stops at
        its size limit, whatever size Discord declared. A reply to one of the bot's own
        answers quotes its text only, and not even that when this conversation remembers it.
        """
        text = strip_mention(message.content, me.id)
        who = from_message(message)
        about = await asking.replied_to(message)
        quoted = about
        if about is not None and _is_mine(about, me):
            here = self._conversation(message, message.channel.id)
            if self._asked.answered_in(about.id) == here:
                quoted = None  # the conversation remembers it: no need to send it again
        pending = asking.prepare(
            text,
            message.attachments,
            quoted,
            images_allowed=self._assistant.images_allowed,
            about_files=not _is_mine(about, me),
        )
        return await asking.admit(self._assistant, self._client, who, pending), about

    async def _refuse(self, message: discord.Message, refusal: UserFacingError) -> None:
        """Say why a message is not answered: in place, or privately (a DM) when asked to."""
        if not refusal.private or message.guild is None:
            await send_answer(self._renderer, message.channel, refusal.message, reply_to=message)
            return
        try:
            await message.author.send(refusal.message, allowed_mentions=NO_PINGS)
        except discord.HTTPException as exc:
            log.info("could not DM a refusal to user %s: %s", message.author.id, exc)

    def _conversation(self, message: discord.Message, where: int) -> str:
        """The conversation of a question asked in `message` and answered in channel `where`."""
        return conversation_id(self._scope, user_id=message.author.id, channel_id=where)

    def _session_known(self, message: discord.Message, in_place: bool) -> str | None:
        """The question's conversation, when it is known before its answer's place is: always
        under user scope; under channel scope only when it is answered in place (a new
        thread is a new conversation, which no earlier turn can be queued in)."""
        if self._scope == "channel" and not in_place:
            return None
        return self._conversation(message, message.channel.id)

    async def _destination(
        self, message: discord.Message, title: str, in_place: bool
    ) -> tuple[MessageableChannel, discord.Message | None]:
        """Where the answer goes (a new thread is named after `title`), and the message to
        reply to when it is not in a thread."""
        channel = message.channel
        if _answered_in_place(message):
            return channel, None
        if in_place or not isinstance(channel, discord.TextChannel):
            return channel, message
        try:
            thread = await message.create_thread(name=thread_name(title))
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

    def answered_in(self, answer_id: int) -> str | None:
        """The conversation of the bot's answer message `answer_id`, if it is one of these."""
        for asked in self._items.values():
            if any(sent.id == answer_id for sent in asked.sent):
                return asked.session_id
        return None


def live_reply(settings: Settings, renderer: Renderer) -> LiveReply | None:
    """A streamed reply for a turn's answer, or None when answers are not streamed."""
    if not settings.streaming:
        return None
    return LiveReply(renderer, interval=settings.stream_edit_interval)


async def show_turn(
    renderer: Renderer,
    turn: asyncio.Task[Answer],
    live: LiveReply | None,
    destination: discord.abc.Messageable,
    *,
    reply_to: discord.Message | None,
) -> list[discord.Message]:
    """Wait for the turn's answer, typing (and streaming it, with `live`) in `destination`,
    then show it there; the messages that show it."""
    async with typing_in(destination):
        if live is not None:
            live.start(destination, reply_to=reply_to)
        answer = await outcome(turn)
        return await show(renderer, live, destination, answer, reply_to=reply_to)


async def show(
    renderer: Renderer,
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
        renderer, destination, answer.text, pictures=answer.attachments, reply_to=reply_to
    )


def _title(
    message: discord.Message, about: discord.Message | None, me: discord.abc.User | None
) -> str:
    """What a new thread is named after: the typed question, else the message it is about."""
    typed = strip_mention(message.content, me.id) if me is not None else message.content
    return typed or (about.content if about is not None else "")


def _continues(message: discord.Message, me: discord.abc.User) -> bool:
    """Whether `message` replies to one of the bot's messages, as far as is known without
    fetching anything (Discord sends the replied message with the reply)."""
    resolved = message.reference.resolved if message.reference is not None else None
    return isinstance(resolved, discord.Message) and _is_mine(resolved, me)


def _is_mine(about: discord.Message | None, me: discord.abc.User | None) -> bool:
    """Whether `about` is one of the bot's own messages: a reply to it continues that
    conversation, answered where it is."""
    return about is not None and me is not None and about.author.id == me.id


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

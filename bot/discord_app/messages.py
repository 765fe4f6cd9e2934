"""Answering messages: mentions (in a new thread), follow-ups in the bot's threads, and DMs."""

from __future__ import annotations

import asyncio
import logging
import re

import discord

from ..assistant import Answer, Assistant, Question, TextListener
from ..config import Settings
from ..errors import UserFacingError
from ..failures import GENERIC
from ..memory import channel_session_id, user_session_id
from .live import LiveReply
from .replies import NO_PINGS, send_answer, typing_in
from .requesters import from_message

log = logging.getLogger(__name__)

THREAD_NAME_LIMIT = 100
STOPPED = "Stopped: I dropped that question (nothing of it is remembered)."
_ANSWERED_TYPES = (discord.MessageType.default, discord.MessageType.reply)


class MessageFlow:
    """Decides which messages are for the bot and carries each from question to answer."""

    def __init__(self, client: discord.Client, assistant: Assistant, settings: Settings) -> None:
        self._client = client
        self._assistant = assistant
        self._settings = settings
        self._scope = settings.session_scope
        self._warned_guilds: set[int] = set()

    async def handle(self, message: discord.Message) -> None:
        me = self._client.user
        if me is None or not self._is_for_me(message, me):
            return
        try:
            question = self._assistant.admit(
                strip_mention(message.content, me.id), from_message(message)
            )
        except UserFacingError as exc:
            await self._refuse(message, exc)
            return
        live = LiveReply(interval=self._settings.stream_edit_interval)
        on_text = live.update if self._settings.streaming else None
        turn = self._submit_early(message, question, on_text)
        destination, reply_to = await self._destination(message, question.text)
        if turn is None:
            session_id = channel_session_id(destination.id)
            turn = self._assistant.submit(session_id, question, on_text=on_text)
        async with typing_in(destination):
            if on_text is None:
                answer = await outcome(turn)
            else:
                live.start(destination, reply_to=reply_to)
                answer = await outcome(turn)
                await live.finish(answer)
                return
        if answer.text or answer.attachments:
            await send_answer(
                destination, answer.text, pictures=answer.attachments, reply_to=reply_to
            )

    async def _refuse(self, message: discord.Message, refusal: UserFacingError) -> None:
        """Say why a message is not answered: in place, or privately (a DM) when asked to."""
        if not refusal.message:
            return
        if not refusal.private or message.guild is None:
            await send_answer(message.channel, refusal.message, reply_to=message)
            return
        try:
            await message.author.send(refusal.message, allowed_mentions=NO_PINGS)
        except discord.HTTPException as exc:
            log.info("could not DM a refusal to user %s: %s", message.author.id, exc)

    def _is_for_me(self, message: discord.Message, me: discord.ClientUser) -> bool:
        if message.author.bot or message.type not in _ANSWERED_TYPES:
            return False
        if message.guild is None:
            return True  # every direct message is answered
        channel = message.channel
        if isinstance(channel, discord.Thread) and channel.owner_id == me.id:
            return True  # follow-ups in a thread the bot started need no mention
        return any(user.id == me.id for user in message.mentions)

    def _submit_early(
        self, message: discord.Message, question: Question, on_text: TextListener | None
    ) -> asyncio.Task[Answer] | None:
        """Queue the turn at once when its session is already known, so a user's messages
        are answered in the order they arrived."""
        if self._scope == "user":
            session_id = user_session_id(message.author.id)
        elif message.guild is None or isinstance(message.channel, discord.Thread):
            session_id = channel_session_id(message.channel.id)
        else:
            return None  # channel scope, new thread: its session is the thread's
        return self._assistant.submit(session_id, question, on_text=on_text)

    async def _destination(
        self, message: discord.Message, question: str
    ) -> tuple[discord.abc.Messageable, discord.Message | None]:
        """Where the answer goes, and the message to reply to when it is not in a thread."""
        channel = message.channel
        if message.guild is None or isinstance(channel, discord.Thread):
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

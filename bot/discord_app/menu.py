"""The message menu "Ask mathbot" (a message's Apps menu): a question about that message,
answered in a thread on it when the bot may start one, else privately."""

from __future__ import annotations

import logging

import discord
from discord import app_commands

from ..core.assistant import Question
from ..errors import QuietRefusal, UserFacingError
from ..memory.keys import conversation_id
from . import asking
from .client import MathBot
from .commands import refuse_privately, session_id
from .messages import live_reply, outcome, show_turn, thread_name
from .replies import NO_PINGS, send_followups
from .requesters import from_interaction

log = logging.getLogger(__name__)

MENU_NAME = "Ask mathbot"
ANSWERING_IN = "I'm answering in {thread}."


@app_commands.context_menu(name=MENU_NAME)
@app_commands.allowed_installs(guilds=True, users=True)
@app_commands.allowed_contexts(guilds=True, dms=True, private_channels=True)
async def ask_about(interaction: discord.Interaction[MathBot], message: discord.Message) -> None:
    """Ask about `message`: its text (quoted under its author's name) and its files, within
    one question's limits, checked before anything is downloaded."""
    bot = interaction.client
    bot.assistant.metrics.question("menu")
    who = from_interaction(interaction)
    mine = bot.user is not None and message.author.id == bot.user.id
    try:
        pending = asking.prepare(
            "", (), message, images_allowed=bot.assistant.images_allowed, about_files=not mine
        )
        if not pending.text and not pending.files:
            raise UserFacingError(asking.NOTHING_TO_READ)
        bot.assistant.admit_asker(who)
    except (UserFacingError, QuietRefusal) as exc:
        await refuse_privately(interaction, exc)
        return
    async with bot.in_flight.track():
        await interaction.response.defer(ephemeral=True, thinking=True)
        try:
            uploads = await asking.download_all(pending, bot)
            question = bot.assistant.admit(pending.text, who, uploads, asker_admitted=True)
        except UserFacingError as exc:
            await interaction.followup.send(exc.message, ephemeral=True, allowed_mentions=NO_PINGS)
            return
        thread = await _open_thread(interaction, message)
        if thread is None:
            await _answer_privately(interaction, question)
        else:
            await _answer_in_thread(interaction, thread, question)


async def _open_thread(
    interaction: discord.Interaction[MathBot], message: discord.Message
) -> discord.Thread | None:
    """A thread on `message` for the answer, when the bot is in the server and may start one
    there (Create Public Threads, Send Messages in Threads); None otherwise."""
    permissions = interaction.app_permissions
    if (
        interaction.guild_id is None
        or interaction.client.get_guild(interaction.guild_id) is None  # user install only
        or not isinstance(message.channel, discord.TextChannel)
        or not (permissions.create_public_threads and permissions.send_messages_in_threads)
    ):
        return None
    try:
        return await message.create_thread(name=thread_name(message.content))
    except discord.HTTPException as exc:  # e.g. the message has a thread already
        log.info("could not start a thread on message %s: %s", message.id, exc)
        return None


async def _answer_in_thread(
    interaction: discord.Interaction[MathBot], thread: discord.Thread, question: Question
) -> None:
    """Say privately where the answer is, then answer in the thread (streamed, like a
    mention); follow-ups there continue the conversation."""
    bot = interaction.client
    await interaction.followup.send(
        ANSWERING_IN.format(thread=thread.mention), ephemeral=True, allowed_mentions=NO_PINGS
    )
    live = live_reply(bot.settings, bot.renderer)
    session = conversation_id(
        bot.settings.session_scope, user_id=interaction.user.id, channel_id=thread.id
    )
    turn = bot.assistant.submit(session, question, on_text=live)
    await show_turn(bot.renderer, turn, live, thread, reply_to=None)


async def _answer_privately(interaction: discord.Interaction[MathBot], question: Question) -> None:
    """Answer with followups only the caller sees, in the caller's conversation here."""
    bot = interaction.client
    turn = bot.assistant.submit(session_id(interaction), question)
    answer = await outcome(turn)
    await send_followups(
        bot.renderer, interaction, answer.text, pictures=answer.attachments, ephemeral=True
    )

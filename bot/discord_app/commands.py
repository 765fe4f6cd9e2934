"""The slash commands (/math, /forget, /cancel, /history, /export, /usage, /help; /style and
/settings live in `settings_commands`)."""

from __future__ import annotations

import io

import discord
from discord import app_commands

from ..config.settings import SessionScope
from ..core.assistant import MAX_QUESTION_CHARS, Answer
from ..core.styles import SUMMARIES
from ..errors import QuietRefusal, UserFacingError
from ..memory.keys import conversation_id
from .client import MathBot
from .live import LiveReply
from .messages import outcome
from .replies import NO_PINGS, render, send_followups, show_pieces
from .requesters import from_interaction
from .settings_commands import settings, style_command
from .slash_reply import InteractionSurface
from .tree import SlashCommand

QUOTE_LIMIT = 200
NOT_HERE = "Sorry, I can't help with that here."
NEEDS_MANAGE = "changing the channel's shared conversation needs the Manage Messages permission."

# Discord shows the first paragraph of each command's docstring as its description: changing
# one changes the command payload, and the next start uploads the commands again.


@app_commands.command()
@app_commands.describe(question="Your math question, e.g. what is 2+2?")
async def math(
    interaction: discord.Interaction[MathBot],
    question: app_commands.Range[str, 1, MAX_QUESTION_CHARS],
) -> None:
    """Ask the math assistant a question (it remembers the conversation)

    The answer is public, under a quote of the question; a refusal only the caller sees.
    """
    bot = interaction.client
    bot.assistant.metrics.question("slash")
    try:
        admitted = bot.assistant.admit(question, from_interaction(interaction))
    except (UserFacingError, QuietRefusal) as exc:
        await refuse_privately(interaction, exc)
        return
    heading = quote(question)
    live = LiveReply(bot.renderer, interval=bot.settings.stream_edit_interval, heading=heading)
    on_text = live if bot.settings.streaming else None
    async with bot.in_flight.track():
        turn = bot.assistant.submit(session_id(interaction), admitted, on_text=on_text)
        await interaction.response.defer(thinking=True)
        surface = InteractionSurface(interaction, heading=heading)
        if on_text is not None:
            live.start_on(surface)
        answer = await outcome(turn)
        shown = Answer(f"{heading}\n{answer.text}", answer.attachments)
        if on_text is not None:
            await live.finish(shown)
        else:
            pieces = await render(bot.renderer, shown.text, shown.attachments)
            await show_pieces([], surface, pieces)


@app_commands.command()
async def forget(interaction: discord.Interaction[MathBot]) -> None:
    """Make the math assistant forget your conversation"""
    if not may_change(interaction):
        await private_reply(interaction, f"In this server, {NEEDS_MANAGE}")
        return
    await interaction.response.defer(ephemeral=True, thinking=True)
    await interaction.client.assistant.forget(session_id(interaction), interaction.user.id)
    whose = "this channel's" if interaction.client.settings.session_scope == "channel" else "our"
    await interaction.followup.send(
        f"Done: I have forgotten {whose} conversation.",
        ephemeral=True,
        allowed_mentions=NO_PINGS,
    )


@app_commands.command()
async def cancel(interaction: discord.Interaction[MathBot]) -> None:
    """Stop the question the math assistant is working on"""
    if not may_change(interaction):
        await private_reply(interaction, f"In this server, {NEEDS_MANAGE}")
        return
    stopped = interaction.client.assistant.cancel(session_id(interaction))
    await private_reply(
        interaction,
        "Stopped the question in progress." if stopped else "Nothing to stop right now.",
    )


@app_commands.command()
@app_commands.describe(turns="How many of the latest exchanges to show (1-25, default 5)")
async def history(
    interaction: discord.Interaction[MathBot], turns: app_commands.Range[int, 1, 25] = 5
) -> None:
    """See what the math assistant remembers of your conversation"""
    await interaction.response.defer(ephemeral=True, thinking=True)
    text = await interaction.client.assistant.history(session_id(interaction), turns)
    await send_followups(interaction.client.renderer, interaction, text, ephemeral=True)


@app_commands.command()
async def export(interaction: discord.Interaction[MathBot]) -> None:
    """Download your whole stored conversation as a JSON file"""
    await interaction.response.defer(ephemeral=True, thinking=True)
    stored = await interaction.client.assistant.export(session_id(interaction), interaction.user.id)
    await interaction.followup.send(
        f"Our conversation: {stored.items} stored items (format `{stored.format}`).",
        file=discord.File(io.BytesIO(stored.data), filename="mathbot-conversation.json"),
        ephemeral=True,
        allowed_mentions=NO_PINGS,
    )


@app_commands.command()
async def usage(interaction: discord.Interaction[MathBot]) -> None:
    """How many tokens your questions used today and in total"""
    await interaction.response.defer(ephemeral=True, thinking=True)
    text = await interaction.client.assistant.usage(from_interaction(interaction))
    await send_followups(interaction.client.renderer, interaction, text, ephemeral=True)


@app_commands.command(name="help")
async def help_command(interaction: discord.Interaction[MathBot]) -> None:
    """How to ask the math assistant, its commands, and what it remembers"""
    settings = interaction.client.settings
    await private_reply(interaction, help_text(settings.session_scope, settings.history_turns))


SLASH_COMMANDS: tuple[SlashCommand, ...] = (
    math,
    forget,
    cancel,
    history,
    export,
    usage,
    help_command,
    style_command,
    settings,
)


def help_text(scope: SessionScope, history_turns: int) -> str:
    """What `/help` says: how to ask, the commands, and what is stored and how to delete it."""
    whose = "this channel's shared" if scope == "channel" else "your"
    return "\n".join(
        (
            "**Ask** by mentioning me (I answer in a thread), in a DM, or with `/math`. "
            "Follow up in the same thread or DM: I remember the conversation, so "
            "`multiply that by 2` works. Attach .txt/.md/.tex/.csv files or images to ask "
            "about them; edit your latest question to ask it again.",
            "**About a message:** reply to it with a mention, or pick *Apps → Ask mathbot* "
            "in its menu (right-click, or long-press on a phone).",
            "**Commands:** `/math` ask · `/cancel` stop the question in progress · "
            "`/history` what I remember · `/export` download it · `/forget` delete it · "
            "`/usage` tokens used · `/help` this message.",
            f"**What I store:** {whose} conversation (questions, answers and the calculations "
            f"used; images are never stored). With each question the model sees the last "
            f"{history_turns} exchanges. `/history` shows it, `/export` downloads it as JSON, "
            "and `/forget` deletes it for good.",
            "**Answer styles:** "
            + ", ".join(f"`{name}` ({summary})" for name, summary in SUMMARIES.items())
            + ". `/style` picks yours (`/export` includes it, `/forget` deletes it); server "
            "managers set one per server or channel, and can lock it, with `/settings`.",
            "Math is computed exactly with a sandboxed calculator; ask me to *plot* a function "
            "for a graph.",
        )
    )


def session_id(interaction: discord.Interaction[MathBot]) -> str:
    """The conversation a command is about: the caller's, or the channel's (channel scope)."""
    return conversation_id(
        interaction.client.settings.session_scope,
        user_id=interaction.user.id,
        channel_id=interaction.channel_id,
    )


def may_change(interaction: discord.Interaction[MathBot]) -> bool:
    """Whether the caller may stop or wipe the conversation: in a server under channel
    scope it is shared, so only members who can manage messages may."""
    if interaction.client.settings.session_scope != "channel" or interaction.guild_id is None:
        return True
    return interaction.permissions.manage_messages


async def private_reply(interaction: discord.Interaction[MathBot], text: str) -> None:
    """Answer the interaction with a message only the caller sees."""
    await interaction.response.send_message(text, ephemeral=True, allowed_mentions=NO_PINGS)


async def refuse_privately(
    interaction: discord.Interaction[MathBot], refusal: UserFacingError | QuietRefusal
) -> None:
    """Tell only the caller why the question is not answered (a quiet refusal: not here)."""
    text = refusal.message if isinstance(refusal, UserFacingError) else NOT_HERE
    await private_reply(interaction, text)


def quote(question: str) -> str:
    """The question as a one-line Markdown quote, shortened."""
    line = " ".join(question.split())
    if len(line) > QUOTE_LIMIT:
        line = line[: QUOTE_LIMIT - 1] + "…"
    return f"> {line}"

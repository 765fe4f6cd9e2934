"""The answer-style commands: `/style` for everyone, `/settings` for people who manage a server."""

from __future__ import annotations

from typing import cast

import discord
from discord import app_commands
from discord.app_commands import Choice

from ..config.settings import ANSWER_STYLES, AnswerStyle
from ..core.choices import MentionChange
from ..core.styles import MAX_INSTRUCTION_CHARS, SUMMARIES, Resolved, override_note
from ..memory.preferences.records import ServerPrefs, StyleSetting
from .client import MathBot
from .replies import send_followups
from .requesters import from_interaction

DEFAULT = "default"
NEEDS_MANAGE_SERVER = "Only people with the Manage Server permission can change these settings."
ONLY_IN_SERVERS = "Server settings can only be changed in a server."
STYLE_CHOICES = [Choice(name=f"{s}: {SUMMARIES[s]}"[:100], value=s) for s in ANSWER_STYLES] + [
    Choice(name=f"{DEFAULT}: remove the choice", value=DEFAULT)
]
# the channels a setting can name: a category covers its channels, a channel its threads
PickedChannel = discord.TextChannel | discord.CategoryChannel
_FROM = {
    "user": "your choice",
    "channel": "set for this channel",
    "server": "set for this server",
    "default": "the bot's default",
}

# Discord shows the first paragraph of each command's docstring as its description.


@app_commands.command(name="style")
@app_commands.describe(style="How I should answer you; leave it out to see your style")
@app_commands.choices(style=STYLE_CHOICES)
async def style_command(
    interaction: discord.Interaction[MathBot], style: Choice[str] | None = None
) -> None:
    """Choose how the math assistant answers you: answer, steps or tutor"""
    await interaction.response.defer(ephemeral=True, thinking=True)
    choices = interaction.client.assistant.choices
    who = from_interaction(interaction)
    if style is not None:
        chosen = None if style.value == DEFAULT else cast(AnswerStyle, style.value)
        await choices.set_user_style(who.user_id, chosen)
    resolved, _ = await choices.resolve(who)
    await send_followups(
        interaction.client.renderer,
        interaction,
        style_reply(resolved, changed=style is not None),
        ephemeral=True,
    )


settings = app_commands.Group(
    name="settings",
    description="The math assistant's settings for this server (Manage Server)",
    allowed_contexts=app_commands.AppCommandContext(
        guild=True, dm_channel=False, private_channel=False
    ),
    allowed_installs=app_commands.AppInstallationType(guild=True, user=False),
    default_permissions=discord.Permissions(manage_guild=True),
)


@settings.command(name="show")
async def settings_show(interaction: discord.Interaction[MathBot]) -> None:
    """Show this server's settings"""
    if (guild_id := await managed_guild(interaction)) is None:
        return
    prefs = await interaction.client.assistant.choices.server(guild_id)
    text = describe_server(prefs, interaction.client)
    await send_followups(interaction.client.renderer, interaction, text, ephemeral=True)


@settings.command(name="style")
@app_commands.describe(
    style="The answer style",
    scope="The whole server, or one channel or category (this channel unless you pick one)",
    lock="Keep this style whatever people choose with /style (default: no)",
    channel="The channel or category (default: this channel)",
)
@app_commands.choices(
    style=STYLE_CHOICES,
    scope=[
        Choice(name="this channel", value="channel"),
        Choice(name="this server", value="server"),
    ],
)
async def settings_style(
    interaction: discord.Interaction[MathBot],
    style: Choice[str],
    scope: Choice[str],
    lock: bool = False,
    channel: PickedChannel | None = None,
) -> None:
    """Set the answer style of this server or of a channel, and lock it if you want"""
    if (guild_id := await managed_guild(interaction)) is None:
        return
    place = None if scope.value == "server" else (channel.id if channel else interaction.channel_id)
    chosen = None if style.value == DEFAULT else cast(AnswerStyle, style.value)
    prefs = await interaction.client.assistant.choices.set_style(
        guild_id, place, chosen, locked=lock
    )
    await done(interaction, prefs)


@settings.command(name="mentions")
@app_commands.describe(
    action="Answer mentions in a channel, stop answering them there, or answer them everywhere",
    channel="The channel or category (default: this channel)",
)
@app_commands.choices(
    action=[
        Choice(name="add: answer mentions in this channel", value="add"),
        Choice(name="remove: stop answering mentions in this channel", value="remove"),
        Choice(name="everywhere: answer mentions in every channel", value="everywhere"),
    ]
)
async def settings_mentions(
    interaction: discord.Interaction[MathBot],
    action: Choice[str],
    channel: PickedChannel | None = None,
) -> None:
    """Choose the channels where the math assistant answers mentions"""
    if (guild_id := await managed_guild(interaction)) is None:
        return
    place = channel.id if channel else interaction.channel_id
    prefs = await interaction.client.assistant.choices.set_mentions(
        guild_id, place, cast(MentionChange, action.value)
    )
    await done(interaction, prefs)


@settings.command(name="instruction")
@app_commands.describe(
    text="e.g. answer in French; leave it out to remove the instruction",
)
async def settings_instruction(
    interaction: discord.Interaction[MathBot],
    text: app_commands.Range[str, 1, MAX_INSTRUCTION_CHARS] | None = None,
) -> None:
    """Give the math assistant one extra instruction for this server"""
    if (guild_id := await managed_guild(interaction)) is None:
        return
    prefs = await interaction.client.assistant.choices.set_instruction(guild_id, text)
    await done(interaction, prefs)


async def managed_guild(interaction: discord.Interaction[MathBot]) -> int | None:
    """The server whose settings the caller may change (after deferring privately), or None
    after telling them why not. Discord hides /settings from others by default, but a server
    can give it to anyone: the permission is checked here too."""
    await interaction.response.defer(ephemeral=True, thinking=True)
    refusal = None
    if interaction.guild_id is None:
        refusal = ONLY_IN_SERVERS
    elif not interaction.permissions.manage_guild:
        refusal = NEEDS_MANAGE_SERVER
    if refusal is not None:
        await send_followups(interaction.client.renderer, interaction, refusal, ephemeral=True)
        return None
    return interaction.guild_id


async def done(interaction: discord.Interaction[MathBot], prefs: ServerPrefs) -> None:
    text = "Saved.\n" + describe_server(prefs, interaction.client)
    await send_followups(interaction.client.renderer, interaction, text, ephemeral=True)


def style_reply(resolved: Resolved, *, changed: bool) -> str:
    """What `/style` says: the style the caller gets here and why, and the styles to pick."""
    first = "Saved. " if changed else ""
    lines = [
        f"{first}Here you get the **{resolved.style}** style "
        f"({_FROM[resolved.source]}): {SUMMARIES[resolved.style]}."
    ]
    if note := override_note(resolved):
        lines.append(note)
    lines.append(
        "Styles: "
        + "; ".join(f"`{s}`: {SUMMARIES[s]}" for s in ANSWER_STYLES)
        + f". `/style` changes yours everywhere; `{DEFAULT}` removes it."
    )
    return "\n".join(lines)


def describe_server(prefs: ServerPrefs, client: MathBot) -> str:
    """What `/settings show` says: every setting of the server, in plain words."""
    default = client.settings.answer_style
    server = _setting(prefs.style) if prefs.style else f"not set (**{default}**, the default)"
    lines = [f"**Answer style of the server:** {server}"]
    if prefs.channel_styles:
        listed = ", ".join(f"<#{c}> {_setting(s)}" for c, s in sorted(prefs.channel_styles.items()))
        lines.append(f"**Channels with their own style:** {listed}")
    mentions = (
        "in " + ", ".join(f"<#{c}>" for c in sorted(prefs.mention_channels)) + " (and threads)"
        if prefs.mention_channels
        else "in every channel"
    )
    lines.append(f"**Mentions are answered:** {mentions}; DMs, `/math` and the menu everywhere.")
    extra = f'"{prefs.instruction}"' if prefs.instruction else "none"
    lines.append(f"**Extra instruction:** {extra}")
    return "\n".join(lines)


def _setting(setting: StyleSetting) -> str:
    return f"**{setting.style}**" + (" (locked)" if setting.locked else "")

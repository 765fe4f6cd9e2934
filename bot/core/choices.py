"""Who chose what: users' answer styles and servers' settings, kept in the preferences, and what
they make of one turn (its style, its instructions, a note when a lock beats a user's choice)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from ..config.settings import AnswerStyle
from ..errors import UserFacingError
from ..limits.access import Requester
from ..memory.preferences.base import Preferences
from ..memory.preferences.records import (
    ServerPrefs,
    StyleSetting,
    server_key,
    user_key,
    user_record,
    user_style,
)
from .styles import Resolved, Scope, clean_instruction, override_note, resolve, system_instructions

MAX_CHANNEL_STYLES = 50  # channels (or categories) of one server with a style of their own
MAX_MENTION_CHANNELS = 50  # channels of one server listed for mentions

MentionChange = Literal["add", "remove", "everywhere"]


@dataclass(frozen=True)
class TurnStyle:
    """What a turn runs with: its resolved style, the system instructions, and the line to add
    under the answer ("" when none)."""

    resolved: Resolved
    instructions: str
    note: str


class Choices:
    """Reads and writes the choices in `preferences` (started by the assistant); `default`
    is ANSWER_STYLE. Discord-free: places are ids, permission checks are the caller's."""

    def __init__(self, preferences: Preferences, default: AnswerStyle) -> None:
        self._preferences = preferences
        self.default = default

    async def resolve(self, who: Requester | None) -> tuple[Resolved, ServerPrefs]:
        """The style `who` gets where they ask, and that server's settings."""
        if who is None:
            return resolve(self.default, None, ()), ServerPrefs()
        keys = [user_key(who.user_id)]
        if who.guild_id is not None:
            keys.append(server_key(who.guild_id))
        found = await self._preferences.read(keys)
        server = (
            ServerPrefs.from_record(found.get(server_key(who.guild_id)))
            if who.guild_id is not None
            else ServerPrefs()
        )
        around = (who.channel_id, *who.parent_ids) if who.channel_id else who.parent_ids
        places: list[tuple[Scope, StyleSetting | None]] = [
            ("channel", server.channel_styles.get(place)) for place in around
        ]
        places.append(("server", server.style))
        mine = user_style(found.get(user_key(who.user_id)))
        return resolve(self.default, mine, places), server

    async def for_turn(self, who: Requester | None) -> TurnStyle:
        resolved, server = await self.resolve(who)
        note = override_note(resolved)
        return TurnStyle(
            resolved,
            system_instructions(resolved.style, server.instruction),
            f"-# {note}" if note else "",
        )

    async def set_user_style(self, user_id: int, style: AnswerStyle | None) -> None:
        """A user's own style everywhere (None: back to what the place or ANSWER_STYLE says)."""
        await self._preferences.update(user_key(user_id), lambda _: user_record(style))

    async def server(self, guild_id: int) -> ServerPrefs:
        found = await self._preferences.read([server_key(guild_id)])
        return ServerPrefs.from_record(found.get(server_key(guild_id)))

    async def set_style(
        self, guild_id: int, place_id: int | None, style: AnswerStyle | None, *, locked: bool
    ) -> ServerPrefs:
        """The style of a server (`place_id` None) or of one of its channels or categories;
        None removes it."""
        setting = StyleSetting(style, locked) if style is not None else None

        def change(prefs: ServerPrefs) -> ServerPrefs:
            if place_id is None:
                return dataclasses.replace(prefs, style=setting)
            styles = dict(prefs.channel_styles)
            styles.pop(place_id, None)
            if setting is not None:
                if len(styles) >= MAX_CHANNEL_STYLES:
                    raise UserFacingError(
                        f"This server already has {MAX_CHANNEL_STYLES} channels with a style of "
                        "their own: remove one first (style `default`)."
                    )
                styles[place_id] = setting
            return dataclasses.replace(prefs, channel_styles=styles)

        return await self._change_server(guild_id, change)

    async def set_mentions(
        self, guild_id: int, channel_id: int | None, action: MentionChange
    ) -> ServerPrefs:
        """Add or remove a channel where mentions are answered, or answer them everywhere."""

        def change(prefs: ServerPrefs) -> ServerPrefs:
            listed = set(prefs.mention_channels)
            if action == "everywhere" or channel_id is None:
                listed.clear()
            elif action == "add":
                if channel_id not in listed and len(listed) >= MAX_MENTION_CHANNELS:
                    raise UserFacingError(
                        f"At most {MAX_MENTION_CHANNELS} channels can be listed: "
                        "list a category instead, it covers its channels."
                    )
                listed.add(channel_id)
            else:
                listed.discard(channel_id)
            return dataclasses.replace(prefs, mention_channels=frozenset(listed))

        return await self._change_server(guild_id, change)

    async def set_instruction(self, guild_id: int, text: str | None) -> ServerPrefs:
        """The server's extra instruction line (None or blank: none), cleaned and checked."""
        line = clean_instruction(text) if text and text.strip() else ""
        return await self._change_server(
            guild_id, lambda prefs: dataclasses.replace(prefs, instruction=line)
        )

    async def answers_mentions(self, who: Requester) -> bool:
        """Whether mentions are answered where `who` asks: everywhere unless the server lists
        channels (a listed channel covers its threads, a listed category its channels)."""
        if who.guild_id is None:
            return True
        listed = (await self.server(who.guild_id)).mention_channels
        return not listed or bool(listed & who.places)

    async def forget_user(self, user_id: int) -> None:
        await self._preferences.delete(user_key(user_id))

    async def exported(self, user_id: int) -> dict[str, Any]:
        """A user's own choices, for `/export`."""
        found = await self._preferences.read([user_key(user_id)])
        return {"answer_style": user_style(found.get(user_key(user_id)))}

    async def _change_server(
        self, guild_id: int, change: Callable[[ServerPrefs], ServerPrefs]
    ) -> ServerPrefs:
        record = await self._preferences.update(
            server_key(guild_id), lambda old: change(ServerPrefs.from_record(old)).to_record()
        )
        return ServerPrefs.from_record(record)

"""What the preferences hold, typed: a user's answer style, a server's settings, and their keys."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from ...config.settings import ANSWER_STYLES, AnswerStyle
from .base import Record


def user_key(user_id: int) -> str:
    return f"user:{user_id}"


def server_key(guild_id: int) -> str:
    return f"guild:{guild_id}"


def style_of(value: Any) -> AnswerStyle | None:
    """A stored style name, or None when it is not one (a record written by a newer version)."""
    return cast(AnswerStyle, value) if value in ANSWER_STYLES else None


@dataclass(frozen=True)
class StyleSetting:
    """An answer style set for a server or a channel; `locked`: users' own choices don't apply."""

    style: AnswerStyle
    locked: bool = False

    def to_record(self) -> Record:
        return {"style": self.style, "locked": self.locked}

    @classmethod
    def from_record(cls, value: Any) -> StyleSetting | None:
        if not isinstance(value, Mapping) or (style := style_of(value.get("style"))) is None:
            return None
        return cls(style, value.get("locked") is True)


@dataclass(frozen=True)
class ServerPrefs:
    """One server's settings: its answer style, its channels' styles (a channel or category
    id; a category covers its channels, a channel its threads), the channels where mentions are
    answered (empty: all), and an extra instruction line for the assistant."""

    style: StyleSetting | None = None
    channel_styles: Mapping[int, StyleSetting] = field(default_factory=dict)
    mention_channels: frozenset[int] = frozenset()
    instruction: str = ""

    @property
    def empty(self) -> bool:
        return self == ServerPrefs()

    def to_record(self) -> Record | None:
        """The record to store; None when nothing is set (the record is deleted)."""
        if self.empty:
            return None
        return {
            "style": self.style.to_record() if self.style else None,
            "channels": {str(c): s.to_record() for c, s in sorted(self.channel_styles.items())},
            "mention_channels": sorted(self.mention_channels),
            "instruction": self.instruction,
        }

    @classmethod
    def from_record(cls, record: Record | None) -> ServerPrefs:
        """Tolerant: whatever does not parse is left out."""
        if not record:
            return cls()
        channels = record.get("channels")
        styles = {
            int(key): setting
            for key, value in (channels.items() if isinstance(channels, Mapping) else ())
            if str(key).isdigit() and (setting := StyleSetting.from_record(value)) is not None
        }
        mentions = record.get("mention_channels")
        instruction = record.get("instruction")
        return cls(
            style=StyleSetting.from_record(record.get("style")),
            channel_styles=styles,
            mention_channels=frozenset(
                c for c in (mentions if isinstance(mentions, list) else ()) if type(c) is int
            ),
            instruction=instruction if isinstance(instruction, str) else "",
        )


def user_record(style: AnswerStyle | None) -> Record | None:
    return None if style is None else {"style": style}


def user_style(record: Record | None) -> AnswerStyle | None:
    return style_of(record.get("style")) if record else None

"""Conversation keys: which stored conversation a question belongs to."""

from __future__ import annotations

from ..config.settings import SessionScope


def user_session_id(user_id: int) -> str:
    return f"discord:user:{user_id}"


def channel_session_id(channel_id: int) -> str:
    return f"discord:channel:{channel_id}"


def conversation_id(scope: SessionScope, *, user_id: int, channel_id: int | None) -> str:
    """The one place that decides a question's conversation.

    With `SESSION_SCOPE=user` a user has one conversation wherever they ask; with `channel`,
    the conversation belongs to the channel, thread or DM where it is asked (`channel_id`;
    without one, the user's own).
    """
    if scope == "channel" and channel_id is not None:
        return channel_session_id(channel_id)
    return user_session_id(user_id)

"""The one error type whose message may cross into Discord, and the quiet refusal."""

from __future__ import annotations


class UserFacingError(Exception):
    """An error whose message may be shown to the user as is.

    Its text must never contain a secret, a traceback or internal detail: everything else is
    logged and answered with a generic polite line. `private` asks for the message to reach only
    the user (ephemeral, or a DM).
    """

    def __init__(self, message: str, *, private: bool = False) -> None:
        if not message:
            raise ValueError("a user-facing error needs a message")
        super().__init__(message)
        self.message = message
        self.private = private

    def __str__(self) -> str:
        return self.message


class QuietRefusal(Exception):
    """A question refused without a word: `BLOCKED_REPLY=silent`, or the user was told
    recently. Discord adapters answer nothing (a slash command gets a short private line,
    since an interaction must be answered)."""

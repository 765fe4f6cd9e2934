"""Error types: the one whose message is safe to show a user, and a bad setting."""

from __future__ import annotations


class ConfigError(Exception):
    """A missing or malformed setting; the message names the variable and the fix."""


class UserFacingError(Exception):
    """An error whose message may be shown to the user as is.

    Its text must never contain a secret, a traceback or internal detail: everything else is
    logged and answered with a generic polite line. `private` asks for the message to reach only
    the user (ephemeral, or a DM); an empty message means: answer nothing at all.
    """

    def __init__(self, message: str, *, private: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.private = private

    def __str__(self) -> str:
        return self.message

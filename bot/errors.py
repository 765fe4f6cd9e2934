"""The one error type whose message is safe to show a user."""

from __future__ import annotations


class UserFacingError(Exception):
    """An error whose message may be shown to the user as is.

    Its text must never contain a secret, a traceback or internal detail: everything else is
    logged and answered with a generic polite line.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message

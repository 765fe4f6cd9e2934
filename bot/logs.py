"""Logging set-up: discord.py's handler, once, with every secret masked."""

from __future__ import annotations

import logging
from collections.abc import Iterable

import discord

MASK = "[redacted]"


class RedactSecrets(logging.Filter):
    """Masks secret values in a record's message and traceback before it is written."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self._secrets = sorted({s for s in secrets if len(s) >= 6}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = self.redact(message)
        if masked != message:
            record.msg, record.args = masked, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        return True


def setup_logging(level: str, secrets: Iterable[str]) -> None:
    """Install discord.py's log handler on the root logger and mask `secrets` in it."""
    discord.utils.setup_logging(level=logging.getLevelName(level), root=True)
    if level != "DEBUG":  # one line per model request is noise
        logging.getLogger("httpx2").setLevel(logging.WARNING)
        logging.getLogger("httpx").setLevel(logging.WARNING)
    redactor = RedactSecrets(secrets)
    for handler in logging.getLogger().handlers:
        handler.addFilter(redactor)

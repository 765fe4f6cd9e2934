"""No secret reaches a log line, in messages or in tracebacks."""

from __future__ import annotations

import io
import logging

from bot.process import MASK, RedactSecrets


def test_secrets_are_masked_in_messages_and_tracebacks() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactSecrets(["sk-super-secret", "discord.token.value"]))
    logger = logging.getLogger("test.redaction")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("key was %s", "sk-super-secret")
        try:
            raise RuntimeError("token discord.token.value rejected")
        except RuntimeError:
            logger.exception("login failed")
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert "sk-super-secret" not in text and "discord.token.value" not in text
    assert text.count(MASK) >= 2
    assert "RuntimeError" in text  # the traceback itself is kept

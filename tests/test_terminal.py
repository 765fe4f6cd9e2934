"""The terminal chat keeps log lines off the prompt line: above it, with the prompt shown again."""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Iterator

import pytest

from bot.terminal import PROMPT, logs_above_prompt


@contextlib.contextmanager
def terminal(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """One screen for stdout and stderr, and a root stderr handler as `setup_logging` makes.
    (Set up inside the test: pytest's own capture replaces `sys.stderr` after fixtures run.)"""
    screen = io.StringIO()
    monkeypatch.setattr("sys.stdout", screen)
    monkeypatch.setattr("sys.stderr", screen)
    handler = logging.StreamHandler(screen)
    logging.getLogger().addHandler(handler)
    try:
        yield screen
    finally:
        logging.getLogger().removeHandler(handler)


def test_a_log_line_while_the_prompt_waits_goes_above_it(monkeypatch: pytest.MonkeyPatch) -> None:
    with terminal(monkeypatch) as screen, logs_above_prompt() as guard:
        assert guard is not None
        screen.write(PROMPT)  # what input() shows
        guard.prompt = PROMPT
        logging.getLogger("bot.test").warning("memory unreachable")
        screen.write("2+2\n")  # typed by the user
        guard.prompt = None
        logging.getLogger("bot.test").warning("after the question")
    assert screen.getvalue() == (f"{PROMPT}\nmemory unreachable\n{PROMPT}2+2\nafter the question\n")


def test_the_handler_writes_to_stderr_again_after_the_chat(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with terminal(monkeypatch) as screen:
        handler = logging.getLogger().handlers[-1]
        with logs_above_prompt():
            assert handler.stream is not screen
        assert handler.stream is screen

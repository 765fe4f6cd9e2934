"""Process start-up tuning: the start-up heap is frozen out of the collector's walks."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

import bot.__main__ as entry
from bot.process import tune_garbage_collector


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()  # a test process must not keep its garbage frozen


def test_objects_alive_at_start_up_leave_the_collectors_generations(unfrozen: None) -> None:
    startup = [[n] for n in range(5_000)]  # tracked containers, like modules' objects
    before = sum(gc.get_count())

    frozen = tune_garbage_collector()

    assert frozen == gc.get_freeze_count() >= len(startup)
    assert sum(gc.get_count()) <= before
    gc.collect()
    assert gc.get_freeze_count() == frozen  # a full collection no longer walks them
    del startup


def test_the_entry_point_freezes_before_it_serves(
    unfrozen: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    events: list[str] = []

    async def chat(assistant: object, user: str, memory: str) -> int:
        events.append(f"serve (frozen: {gc.get_freeze_count() > 0})")
        return 0

    monkeypatch.chdir(tmp_path)  # no .env here
    monkeypatch.setenv("LLM_API_KEY", "k")
    monkeypatch.setenv("SESSION_DB", str(tmp_path / "m.db"))
    monkeypatch.setattr(entry, "run_chat", chat)
    monkeypatch.setattr(entry, "setup_logging", lambda *args: None)  # leave pytest's logging

    assert entry.main(["chat"]) == 0
    assert events == ["serve (frozen: True)"]

"""Shared fixtures: settings for tests and a temporary memory file."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import Settings


@pytest.fixture
def db_path(tmp_path: Path) -> str:
    return str(tmp_path / "maths_db.db")


@pytest.fixture
def settings(db_path: str) -> Settings:
    return Settings(
        discord_token="test.discord.token",
        llm_api_key="test-llm-key",
        session_db=db_path,
        llm_max_retries=0,
        llm_timeout=5.0,
    )

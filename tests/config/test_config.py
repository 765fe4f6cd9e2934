"""Settings are read once, validated, and a bad one stops the program with one line."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from bot.config.settings import (
    GEMINI_BASE_URL,
    KNOWN_SETTINGS,
    ConfigError,
    load_settings,
    typo_warnings,
)

BASE = {"DISCORD_TOKEN": "abc.def.ghi", "GOOGLE_API_KEY": "g-key"}


def load(env: dict[str, str], **kwargs: object) -> object:
    return load_settings(env, dotenv_path=None, **kwargs)  # type: ignore[arg-type]


def test_defaults() -> None:
    s = load_settings(BASE, dotenv_path=None)
    assert s.llm_base_url == GEMINI_BASE_URL
    assert s.llm_model == "gemini-2.5-flash"
    assert s.session_db == "maths_db.db"
    assert s.session_scope == "user"
    assert s.history_turns == 20
    assert s.llm_api_key == "g-key"
    assert not s.tracing_enabled


def test_llm_api_key_overrides_google_key() -> None:
    s = load_settings({**BASE, "LLM_API_KEY": "other"}, dotenv_path=None)
    assert s.llm_api_key == "other"


def test_secrets_are_not_in_repr() -> None:
    s = load_settings({**BASE, "TRACING_API_KEY": "trace-secret"}, dotenv_path=None)
    assert "abc.def.ghi" not in repr(s) and "g-key" not in repr(s)
    assert "trace-secret" not in repr(s)
    assert set(s.secrets()) == {"abc.def.ghi", "g-key", "trace-secret"}


def test_dotenv_is_read_and_environment_wins(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("DISCORD_TOKEN=from-file\nGOOGLE_API_KEY=file-key\nLLM_MODEL=file-model\n")
    s = load_settings({"LLM_MODEL": "env-model"}, dotenv_path=dotenv)
    assert (s.discord_token, s.llm_api_key, s.llm_model) == ("from-file", "file-key", "env-model")


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"GOOGLE_API_KEY": "k"}, "DISCORD_TOKEN"),
        ({"DISCORD_TOKEN": "Bot abc", "GOOGLE_API_KEY": "k"}, "DISCORD_TOKEN"),
        ({"DISCORD_TOKEN": "t"}, "GOOGLE_API_KEY"),
        ({**BASE, "SESSION_SCOPE": "guild"}, "SESSION_SCOPE"),
        ({**BASE, "HISTORY_TURNS": "lots"}, "HISTORY_TURNS"),
        ({**BASE, "HISTORY_TURNS": "0"}, "HISTORY_TURNS"),
        ({**BASE, "LLM_BASE_URL": "generativelanguage.googleapis.com"}, "LLM_BASE_URL"),
        ({**BASE, "LLM_TIMEOUT": "-3"}, "LLM_TIMEOUT"),
        ({**BASE, "LLM_MAX_RETRIES": "99"}, "LLM_MAX_RETRIES"),
        ({**BASE, "LLM_MAX_TOKENS": "lots"}, "LLM_MAX_TOKENS"),
        ({**BASE, "LLM_MAX_TOKENS": "0"}, "LLM_MAX_TOKENS"),
        ({**BASE, "DISCORD_GATEWAY_URL": "http://x"}, "DISCORD_GATEWAY_URL"),
        ({**BASE, "LOG_LEVEL": "LOUD"}, "LOG_LEVEL"),
        ({**BASE, "SESSION_DB": "mysql://u:p@h/db"}, "SESSION_DB"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(env, dotenv_path=None)
    assert str(err.value).startswith(variable)
    assert "\n" not in str(err.value)


def test_answer_length_cap() -> None:
    def cap(**env: str) -> int | None:
        return load_settings({**BASE, **env}, dotenv_path=None).llm_max_tokens

    assert cap() == 8192
    assert cap(LLM_MAX_TOKENS="2000") == 2000
    assert cap(LLM_MAX_TOKENS="off") is None


def test_shards() -> None:
    assert load_settings(BASE, dotenv_path=None).shard_count is None
    s = load_settings({**BASE, "SHARD_COUNT": "4", "SHARD_IDS": "2, 0"}, dotenv_path=None)
    assert (s.shard_count, s.shard_ids) == (4, (0, 2))
    s = load_settings({**BASE, "SHARD_COUNT": "2"}, dotenv_path=None)
    assert (s.shard_count, s.shard_ids) == (2, None)
    for bad in ({"SHARD_IDS": "0"}, {"SHARD_COUNT": "2", "SHARD_IDS": "2"}, {"SHARD_COUNT": "x"}):
        with pytest.raises(ConfigError) as err:
            load_settings({**BASE, **bad}, dotenv_path=None)
        assert str(err.value).startswith("SHARD_")


def test_a_store_password_is_a_secret() -> None:
    url = "postgresql+asyncpg://bot:hunter22@db.example/mathbot"
    s = load_settings({**BASE, "SESSION_DB": url}, dotenv_path=None)
    assert "hunter22" in s.secrets() and "hunter22" not in repr(s)
    assert s.usage_path == "mathbot_usage.db"
    assert load_settings(BASE, dotenv_path=None).usage_path == "maths_db.db"


def test_terminal_chat_needs_no_discord_token() -> None:
    s = load_settings({"GOOGLE_API_KEY": "k"}, dotenv_path=None, require_discord=False)
    assert s.discord_token == ""


def test_missing_token_exits_2_with_one_line(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "GOOGLE_API_KEY": "g-key-secret"}
    done = subprocess.run(
        [sys.executable, "-m", "bot"],
        cwd=tmp_path,  # no .env here
        env={**env, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "DISCORD_TOKEN" in lines[0]
    assert "Traceback" not in done.stderr and "g-key-secret" not in done.stderr


def test_tracing_is_off_unless_a_tracing_key_is_set() -> None:
    from bot.core.agent import run_config

    assert run_config(load_settings(BASE, dotenv_path=None)).tracing_disabled is True
    traced = load_settings({**BASE, "TRACING_API_KEY": "sk-trace"}, dotenv_path=None)
    assert run_config(traced).tracing_disabled is False


async def test_model_retries_are_the_sdks() -> None:
    from bot.core.agent import run_config
    from bot.core.llm_client import build_client

    settings = load_settings(
        {**BASE, "LLM_MAX_RETRIES": "3", "LLM_TIMEOUT": "30"}, dotenv_path=None
    )
    retry = run_config(settings).model_settings.retry
    assert retry is not None and retry.max_retries == 3 and retry.policy is not None
    client = build_client(settings)
    try:
        assert client.max_retries == 0 and client.timeout == 30.0  # one retry layer: the SDK's
    finally:
        await client.close()


def test_a_name_close_to_a_setting_is_warned_and_ignored() -> None:
    s = load_settings(
        {**BASE, "LLM_MODLE": "gemini-2.5-pro", "session_scope": "x"}, dotenv_path=None
    )
    assert (s.llm_model, s.session_scope) == ("gemini-2.5-flash", "user")
    assert s.warnings == (
        "LLM_MODLE is not a mathbot setting and is ignored: did you mean LLM_MODEL?",
        "session_scope is not a mathbot setting and is ignored: did you mean SESSION_SCOPE?",
    )


def test_names_unlike_any_setting_are_not_warned() -> None:
    usual = ["PATH", "HOME", "PWD", "SHELL", "LANG", "TERM", "USER", "HOSTNAME", "PYTHONPATH"]
    usual += ["VIRTUAL_ENV", "LC_ALL", "CI", "GITHUB_TOKEN", "REDIS_URL", "DATABASE_URL", "TZ"]
    assert typo_warnings([*usual, *KNOWN_SETTINGS]) == ()


def test_every_variable_in_env_example_is_a_known_setting() -> None:
    example = (Path(__file__).resolve().parents[2] / ".env.example").read_text()
    names = {m.group(1) for m in re.finditer(r"^#? ?([A-Z][A-Z0-9_]+)=", example, re.M)}
    assert names and names <= set(KNOWN_SETTINGS)

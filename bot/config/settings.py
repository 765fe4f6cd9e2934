"""Settings: read from the environment (or `.env`) and validated once, at start-up."""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, cast
from urllib.parse import urlsplit

from dotenv import dotenv_values

from .controls import Controls, parse_controls
from .envparse import ConfigError, read_bool, read_choice, read_int

__all__ = ["KNOWN_SETTINGS", "ConfigError", "Settings", "load_settings", "typo_warnings"]

# Every variable mathbot reads, written once: `load_settings` sees only these, and a variable
# that is not one of them but close to one gets a warning naming it (`typo_warnings`).
KNOWN_SETTINGS = (
    "DISCORD_TOKEN", "GOOGLE_API_KEY", "LLM_API_KEY", "LLM_BASE_URL", "LLM_MODEL",
    "LLM_TIMEOUT", "LLM_MAX_RETRIES", "LLM_MAX_TOKENS", "LLM_IMAGES", "SESSION_DB", "USAGE_DB",
    "SESSION_SCOPE",
    "HISTORY_TURNS", "TRACING_API_KEY", "DISCORD_API_URL", "DISCORD_GATEWAY_URL", "LOG_LEVEL",
    "SHARD_COUNT", "SHARD_IDS", "STREAMING", "STREAM_EDIT_INTERVAL", "ANSWER_STYLE",
    # bot/config/controls.py
    "ALLOWED_USER_IDS", "BLOCKED_USER_IDS", "ALLOWED_ROLE_IDS", "BLOCKED_ROLE_IDS",
    "ALLOWED_CHANNEL_IDS", "BLOCKED_CHANNEL_IDS", "ALLOWED_GUILD_IDS", "BLOCKED_GUILD_IDS",
    "ALLOW_DMS", "ADMIN_USER_IDS", "BLOCKED_REPLY", "USER_RATE_LIMIT", "USER_RATE_BURST",
    "MAX_CONCURRENT_MODEL_CALLS", "MAX_QUEUED_TURNS", "USER_DAILY_TOKENS", "GLOBAL_DAILY_TOKENS",
    "BUDGET_TIMEZONE",
    # bot/observe/: health and metrics
    "METRICS_PORT", "METRICS_HOST",
)  # fmt: skip
TYPO_CUTOFF = 0.8  # how close (difflib's ratio) a name must be to one of ours to look like it

GEMINI_BASE_URL = "https://generativelanguage.googleapis.com/v1beta/openai/"
DEFAULT_MODEL = "gemini-2.5-flash"
DEFAULT_DISCORD_API_URL = "https://discord.com/api/v10"
# Output tokens of one model response (thinking models count their reasoning too): room for a
# long worked answer, not for a 45 KB answer-text bomb.
DEFAULT_MAX_TOKENS = 8192

SessionScope = Literal["user", "channel"]
AnswerStyle = Literal["answer", "steps", "tutor"]
ANSWER_STYLES: tuple[AnswerStyle, ...] = ("answer", "steps", "tutor")
StoreKind = Literal["sqlite", "postgres", "redis"]
POSTGRES_SCHEMES = ("postgresql+asyncpg", "postgresql", "postgres")
REDIS_SCHEMES = ("redis", "rediss")


@dataclass(frozen=True)
class Settings:
    """Everything mathbot can be configured with. Secrets are kept out of `repr`."""

    discord_token: str = field(repr=False)
    llm_api_key: str = field(repr=False)
    llm_base_url: str = GEMINI_BASE_URL
    llm_model: str = DEFAULT_MODEL
    session_db: str = field(default="maths_db.db", repr=False)  # a URL may hold a password
    usage_db: str | None = None  # default: see `usage_path`
    session_scope: SessionScope = "user"
    history_turns: int = 20
    llm_timeout: float = 60.0
    llm_max_retries: int = 2
    llm_max_tokens: int | None = DEFAULT_MAX_TOKENS  # None: the model's own limit
    tracing_api_key: str | None = field(default=None, repr=False)
    discord_api_url: str = DEFAULT_DISCORD_API_URL
    discord_gateway_url: str | None = None
    log_level: str | None = None  # None: INFO for the bot, WARNING in the terminal chat
    shard_count: int | None = None
    shard_ids: tuple[int, ...] | None = None
    controls: Controls = field(default_factory=Controls)
    streaming: bool = True
    stream_edit_interval: float = 1.0
    llm_images: bool = True
    answer_style: AnswerStyle = "answer"  # where no user, channel or server chose one
    warnings: tuple[str, ...] = ()  # for the operator once logging is up (e.g. a typo)
    metrics_port: int | None = None  # None: no health/metrics server; 0: a port the OS picks
    metrics_host: str = "127.0.0.1"

    @property
    def usage_path(self) -> str:
        """Token usage lives in the memory file, or in a local file when memory is on a server."""
        if self.usage_db:
            return self.usage_db
        return "mathbot_usage.db" if "://" in self.session_db else self.session_db

    @property
    def tracing_enabled(self) -> bool:
        return self.tracing_api_key is not None

    def secrets(self) -> tuple[str, ...]:
        """The values that must never reach a log line or a reply."""
        password = urlsplit(self.session_db).password if "://" in self.session_db else None
        found = (self.discord_token, self.llm_api_key, self.tracing_api_key, password)
        return tuple(s for s in found if s)


def load_settings(
    environ: Mapping[str, str] | None = None,
    *,
    dotenv_path: str | Path | None = ".env",
    require_discord: bool = True,
) -> Settings:
    """Build `Settings` from `.env` overlaid by the real environment (the environment wins).

    `require_discord=False` is for the terminal chat, which needs no Discord token.
    Raises `ConfigError` with a one-line, fixable message.
    """
    values: dict[str, str] = {}
    if dotenv_path is not None and Path(dotenv_path).is_file():
        values.update({k: v for k, v in dotenv_values(dotenv_path).items() if v is not None})
    values.update(os.environ if environ is None else environ)
    env = {k: v.strip() for k, v in values.items() if k in KNOWN_SETTINGS}

    token = env.get("DISCORD_TOKEN", "")
    if require_discord:
        if not token:
            raise ConfigError(
                "DISCORD_TOKEN is missing: put your bot token in .env or the environment "
                "(Developer Portal → your app → Bot → Reset Token); see .env.example"
            )
        if any(c.isspace() for c in token) or token.lower().startswith("bot "):
            raise ConfigError(
                "DISCORD_TOKEN is malformed: paste the bare token, "
                "without spaces or a 'Bot ' prefix"
            )

    api_key = env.get("LLM_API_KEY") or env.get("GOOGLE_API_KEY") or ""
    if not api_key:
        raise ConfigError(
            "GOOGLE_API_KEY is missing: set it to your Gemini API key (or set LLM_API_KEY for "
            "another OpenAI-compatible provider); see .env.example"
        )

    shard_count, shard_ids = _shards(env)
    return Settings(
        discord_token=token,
        llm_api_key=api_key,
        llm_base_url=_url(env, "LLM_BASE_URL", GEMINI_BASE_URL),
        llm_model=env.get("LLM_MODEL") or DEFAULT_MODEL,
        session_db=_session_db(env),
        usage_db=env.get("USAGE_DB") or None,
        session_scope=cast(
            SessionScope, read_choice(env, "SESSION_SCOPE", "user", ("user", "channel"))
        ),
        history_turns=read_int(env, "HISTORY_TURNS", 20, low=1, high=1000),
        llm_timeout=_float(env, "LLM_TIMEOUT", 60.0, low=1.0, high=600.0),
        llm_max_retries=read_int(env, "LLM_MAX_RETRIES", 2, low=0, high=10),
        llm_max_tokens=_max_tokens(env),
        tracing_api_key=env.get("TRACING_API_KEY") or None,
        discord_api_url=_url(env, "DISCORD_API_URL", DEFAULT_DISCORD_API_URL).rstrip("/"),
        discord_gateway_url=_optional_url(env, "DISCORD_GATEWAY_URL", ("ws", "wss")),
        log_level=_log_level(env),
        controls=parse_controls(env),
        streaming=read_bool(env, "STREAMING", True),
        stream_edit_interval=_float(env, "STREAM_EDIT_INTERVAL", 1.0, low=0.5, high=10.0),
        llm_images=read_bool(env, "LLM_IMAGES", True),
        answer_style=cast(AnswerStyle, read_choice(env, "ANSWER_STYLE", "answer", ANSWER_STYLES)),
        metrics_port=_metrics_port(env),
        metrics_host=env.get("METRICS_HOST") or "127.0.0.1",
        shard_count=shard_count,
        shard_ids=shard_ids,
        warnings=typo_warnings(values),
    )


def typo_warnings(names: Iterable[str]) -> tuple[str, ...]:
    """One line for each name that is not a setting but looks like one (`LLM_MODLE`)."""
    found = []
    for name in sorted(set(names) - set(KNOWN_SETTINGS)):
        close = difflib.get_close_matches(name.upper(), KNOWN_SETTINGS, n=1, cutoff=TYPO_CUTOFF)
        if close:
            found.append(
                f"{name} is not a mathbot setting and is ignored: did you mean {close[0]}?"
            )
    return tuple(found)


def _shards(env: Mapping[str, str]) -> tuple[int | None, tuple[int, ...] | None]:
    """SHARD_COUNT alone runs every shard here; with SHARD_IDS, only those."""
    raw_ids = env.get("SHARD_IDS")
    if not env.get("SHARD_COUNT"):
        if raw_ids:
            raise ConfigError("SHARD_IDS needs SHARD_COUNT: set the total number of shards too")
        return None, None
    count = read_int(env, "SHARD_COUNT", 1, low=1, high=100_000)
    if not raw_ids:
        return count, None
    try:
        ids = tuple(sorted({int(part) for part in raw_ids.replace(",", " ").split()}))
    except ValueError:
        raise ConfigError(f"SHARD_IDS must be shard numbers like 0,1 — not {raw_ids!r}") from None
    if not ids or any(not 0 <= i < count for i in ids):
        raise ConfigError(f"SHARD_IDS must be numbers from 0 to {count - 1}, not {raw_ids!r}")
    return count, ids


def _metrics_port(env: Mapping[str, str]) -> int | None:
    """METRICS_PORT turns the /healthz and /metrics server on; unset or `off`: no server."""
    raw = (env.get("METRICS_PORT") or "").strip().lower()
    if raw in ("", "off"):
        return None
    return read_int(env, "METRICS_PORT", 0, low=1, high=65535)


def _max_tokens(env: Mapping[str, str]) -> int | None:
    """LLM_MAX_TOKENS caps each model response; `off`: no cap is sent (the model's own)."""
    if (env.get("LLM_MAX_TOKENS") or "").strip().lower() == "off":
        return None
    return read_int(env, "LLM_MAX_TOKENS", DEFAULT_MAX_TOKENS, low=256, high=1_000_000)


def store_kind(session_db: str) -> StoreKind:
    """Which store `SESSION_DB` names; `ConfigError` for a URL of another kind."""
    scheme, sep, _ = session_db.strip().partition("://")
    if not sep:
        return "sqlite"
    scheme = scheme.lower()
    if scheme in POSTGRES_SCHEMES:
        return "postgres"
    if scheme in REDIS_SCHEMES:
        return "redis"
    raise ConfigError(
        "SESSION_DB must be a file path, a postgresql+asyncpg:// URL or a redis:// URL, "
        f"not a {scheme}:// URL"
    )


def _session_db(env: Mapping[str, str]) -> str:
    """A SQLite file path, or the URL of a PostgreSQL or Redis server."""
    value = env.get("SESSION_DB") or "maths_db.db"
    store_kind(value)
    return value


def _float(env: Mapping[str, str], name: str, default: float, *, low: float, high: float) -> float:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, not {raw!r}") from None
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low:g} and {high:g} seconds, not {raw!r}")
    return value


def _url(env: Mapping[str, str], name: str, default: str) -> str:
    return _optional_url(env, name, ("http", "https")) or default


def _optional_url(env: Mapping[str, str], name: str, schemes: tuple[str, ...]) -> str | None:
    raw = env.get(name)
    if not raw:
        return None
    parts = urlsplit(raw)
    if parts.scheme not in schemes or not parts.netloc:
        wanted = " or ".join(f"{s}://" for s in schemes)
        raise ConfigError(f"{name} must be a URL starting with {wanted}, not {raw!r}")
    return raw


def _log_level(env: Mapping[str, str]) -> str | None:
    value = (env.get("LOG_LEVEL") or "").upper()
    if not value:
        return None
    if value not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
        raise ConfigError(f"LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, not {value!r}")
    return value

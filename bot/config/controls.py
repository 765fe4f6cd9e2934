"""Cost and abuse control settings: access lists, rate limits and token budgets, validated."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, tzinfo
from typing import Literal, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .envparse import ConfigError, read_bool, read_choice, read_int

BlockedReply = Literal["silent", "notice"]

MAX_SNOWFLAKE = 2**64 - 1
MAX_TOKENS = 10**12
_OFF = {"off", "none", "no", "false", "disabled"}
_SEPARATORS = re.compile(r"[\s,]+")
_RATE = re.compile(r"^(\d+)\s*/\s*(\d+(?:\.\d+)?)?\s*(s|sec|m|min|h|hour)?$")
_UNIT_SECONDS = {"s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "hour": 3600.0}
_TOKENS = re.compile(r"^(\d+(?:\.\d+)?)\s*([km]?)$")


@dataclass(frozen=True)
class RateLimit:
    """`count` messages per `period` seconds, with up to `burst` at once."""

    count: int
    period: float
    burst: int


DEFAULT_RATE = RateLimit(count=5, period=60.0, burst=5)


@dataclass(frozen=True)
class Controls:
    """Who may use the bot, how fast, and how many tokens a day. Empty allow lists = everyone."""

    allowed_user_ids: frozenset[int] = field(default_factory=frozenset)
    blocked_user_ids: frozenset[int] = field(default_factory=frozenset)
    allowed_role_ids: frozenset[int] = field(default_factory=frozenset)
    blocked_role_ids: frozenset[int] = field(default_factory=frozenset)
    allowed_channel_ids: frozenset[int] = field(default_factory=frozenset)
    blocked_channel_ids: frozenset[int] = field(default_factory=frozenset)
    allowed_guild_ids: frozenset[int] = field(default_factory=frozenset)
    blocked_guild_ids: frozenset[int] = field(default_factory=frozenset)
    allow_dms: bool = True
    admin_user_ids: frozenset[int] = field(default_factory=frozenset)
    blocked_reply: BlockedReply = "notice"
    user_rate: RateLimit | None = DEFAULT_RATE
    max_concurrent_model_calls: int = 8
    max_queued_turns: int = 32
    user_daily_tokens: int | None = None
    global_daily_tokens: int | None = None
    budget_timezone: tzinfo = UTC

    @property
    def budget_timezone_name(self) -> str:
        """The zone as the user reads it in a reply, e.g. `UTC` or `Europe/Berlin`."""
        return str(self.budget_timezone)


def parse_controls(env: Mapping[str, str]) -> Controls:
    """Build `Controls` from settings (the same merged `.env` + environment mapping as the
    rest). Every variable is optional; a bad value raises `ConfigError` with one line naming
    the variable and the fix."""
    env = {k: v.strip() for k, v in env.items()}
    return Controls(
        allowed_user_ids=_ids(env, "ALLOWED_USER_IDS"),
        blocked_user_ids=_ids(env, "BLOCKED_USER_IDS"),
        allowed_role_ids=_ids(env, "ALLOWED_ROLE_IDS"),
        blocked_role_ids=_ids(env, "BLOCKED_ROLE_IDS"),
        allowed_channel_ids=_ids(env, "ALLOWED_CHANNEL_IDS"),
        blocked_channel_ids=_ids(env, "BLOCKED_CHANNEL_IDS"),
        allowed_guild_ids=_ids(env, "ALLOWED_GUILD_IDS"),
        blocked_guild_ids=_ids(env, "BLOCKED_GUILD_IDS"),
        allow_dms=read_bool(env, "ALLOW_DMS", True),
        admin_user_ids=_ids(env, "ADMIN_USER_IDS"),
        blocked_reply=cast(
            BlockedReply, read_choice(env, "BLOCKED_REPLY", "notice", ("notice", "silent"))
        ),
        user_rate=_rate(env),
        max_concurrent_model_calls=read_int(env, "MAX_CONCURRENT_MODEL_CALLS", 8, low=1, high=1000),
        max_queued_turns=read_int(env, "MAX_QUEUED_TURNS", 32, low=0, high=100_000),
        user_daily_tokens=_tokens(env, "USER_DAILY_TOKENS"),
        global_daily_tokens=_tokens(env, "GLOBAL_DAILY_TOKENS"),
        budget_timezone=_timezone(env),
    )


def _ids(env: Mapping[str, str], name: str) -> frozenset[int]:
    raw = env.get(name, "")
    ids: set[int] = set()
    for part in _SEPARATORS.split(raw):
        if not part:
            continue
        if not part.isdigit() or not 0 < int(part) <= MAX_SNOWFLAKE:
            raise ConfigError(
                f"{name} must be Discord ids (numbers) separated by commas or spaces, "
                f"not {part!r} (Developer Mode → right-click → Copy ID)"
            )
        ids.add(int(part))
    return frozenset(ids)


def _rate(env: Mapping[str, str]) -> RateLimit | None:
    raw = env.get("USER_RATE_LIMIT", "")
    if raw.lower() in _OFF:
        return None
    if not raw:
        count, period = DEFAULT_RATE.count, DEFAULT_RATE.period
    else:
        match = _RATE.match(raw.lower())
        wrong = (
            f"USER_RATE_LIMIT must be MESSAGES/SECONDS such as 5/60 (or 5/1m, 100/1h), "
            f"or off, not {raw!r}"
        )
        if match is None or not (match[2] or match[3]):
            raise ConfigError(wrong)
        count = int(match[1])
        period = float(match[2] or 1) * _UNIT_SECONDS[match[3] or "s"]
        if not 1 <= count <= 100_000 or not 1.0 <= period <= 86_400.0:
            raise ConfigError(wrong + " (1-100000 messages per 1 s to 24 h)")
    burst = read_int(env, "USER_RATE_BURST", count, low=1, high=100_000)
    return RateLimit(count=count, period=period, burst=burst)


def _tokens(env: Mapping[str, str], name: str) -> int | None:
    raw = env.get(name, "").lower().replace("_", "").replace(",", "")
    if not raw or raw in _OFF:
        return None
    match = _TOKENS.match(raw)
    value = 0
    if match is not None:
        value = int(float(match[1]) * {"": 1, "k": 1_000, "m": 1_000_000}[match[2]])
    if not 1 <= value <= MAX_TOKENS:
        raise ConfigError(
            f"{name} must be a positive number of tokens such as 200000 or 200k, "
            f"or off for no budget, not {env.get(name)!r}"
        )
    return value


def _timezone(env: Mapping[str, str]) -> tzinfo:
    raw = env.get("BUDGET_TIMEZONE", "")
    if not raw or raw.upper() in {"UTC", "Z", "ETC/UTC"}:
        return UTC
    try:
        return ZoneInfo(raw)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ConfigError(
            f"BUDGET_TIMEZONE must be an IANA time zone such as UTC or Europe/Berlin, not {raw!r}"
        ) from None

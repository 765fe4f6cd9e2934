"""The control settings parse and validate, and the access policy allows and refuses right."""

from __future__ import annotations

import dataclasses
from datetime import UTC
from zoneinfo import ZoneInfo

import pytest

from bot.config.controls import Controls, RateLimit, parse_controls
from bot.config.settings import ConfigError
from bot.limits.access import NOTICE_DMS, NOTICE_WHERE, NOTICE_WHO, AccessPolicy, Requester

# --------------------------------------------------------------------------- settings


def test_defaults() -> None:
    c = parse_controls({})
    assert c == Controls()
    assert c.allowed_user_ids == frozenset() and c.admin_user_ids == frozenset()
    assert c.allow_dms is True
    assert c.blocked_reply == "notice"
    assert c.user_rate == RateLimit(count=5, period=60.0, burst=5)
    assert (c.max_concurrent_model_calls, c.max_queued_turns) == (8, 32)
    assert c.user_daily_tokens is None and c.global_daily_tokens is None
    assert c.budget_timezone is UTC and c.budget_timezone_name == "UTC"


def test_good_values() -> None:
    c = parse_controls(
        {
            "ALLOWED_USER_IDS": " 111, 222 333 ",
            "BLOCKED_USER_IDS": "444",
            "ALLOWED_ROLE_IDS": "5,6",
            "BLOCKED_ROLE_IDS": "7",
            "ALLOWED_CHANNEL_IDS": "8",
            "BLOCKED_CHANNEL_IDS": "9,10",
            "ALLOWED_GUILD_IDS": "11",
            "BLOCKED_GUILD_IDS": "12",
            "ALLOW_DMS": "False",
            "ADMIN_USER_IDS": "1234567890123456789",
            "BLOCKED_REPLY": "SILENT",
            "USER_RATE_LIMIT": "10/1m",
            "USER_RATE_BURST": "3",
            "MAX_CONCURRENT_MODEL_CALLS": "2",
            "MAX_QUEUED_TURNS": "0",
            "USER_DAILY_TOKENS": "20k",
            "GLOBAL_DAILY_TOKENS": "1_000_000",
            "BUDGET_TIMEZONE": "Europe/Berlin",
        }
    )
    assert c.allowed_user_ids == {111, 222, 333}
    assert c.blocked_user_ids == {444}
    assert (c.allowed_role_ids, c.blocked_role_ids) == ({5, 6}, {7})
    assert (c.allowed_channel_ids, c.blocked_channel_ids) == ({8}, {9, 10})
    assert (c.allowed_guild_ids, c.blocked_guild_ids) == ({11}, {12})
    assert c.allow_dms is False
    assert c.admin_user_ids == {1234567890123456789}
    assert c.blocked_reply == "silent"
    assert c.user_rate == RateLimit(count=10, period=60.0, burst=3)
    assert (c.max_concurrent_model_calls, c.max_queued_turns) == (2, 0)
    assert (c.user_daily_tokens, c.global_daily_tokens) == (20_000, 1_000_000)
    assert c.budget_timezone == ZoneInfo("Europe/Berlin")
    assert c.budget_timezone_name == "Europe/Berlin"


@pytest.mark.parametrize(
    ("env", "rate"),
    [
        ({"USER_RATE_LIMIT": "5/60"}, RateLimit(5, 60.0, 5)),
        ({"USER_RATE_LIMIT": "5 / 60s"}, RateLimit(5, 60.0, 5)),
        ({"USER_RATE_LIMIT": "100/1h", "USER_RATE_BURST": "10"}, RateLimit(100, 3600.0, 10)),
        ({"USER_RATE_LIMIT": "3/min"}, RateLimit(3, 60.0, 3)),
        ({"USER_RATE_BURST": "2"}, RateLimit(5, 60.0, 2)),
        ({"USER_RATE_LIMIT": "off"}, None),
        ({"USER_RATE_LIMIT": "OFF", "USER_RATE_BURST": "9"}, None),
    ],
)
def test_rate_values(env: dict[str, str], rate: RateLimit | None) -> None:
    assert parse_controls(env).user_rate == rate


@pytest.mark.parametrize("value", ["", "off", "none", " Off "])
def test_budget_off(value: str) -> None:
    c = parse_controls({"USER_DAILY_TOKENS": value, "GLOBAL_DAILY_TOKENS": value})
    assert c.user_daily_tokens is None and c.global_daily_tokens is None


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ALLOWED_USER_IDS", "123,abc"),
        ("BLOCKED_USER_IDS", "<@123>"),
        ("ALLOWED_ROLE_IDS", "-5"),
        ("BLOCKED_ROLE_IDS", "1.5"),
        ("ALLOWED_CHANNEL_IDS", "0"),
        ("BLOCKED_CHANNEL_IDS", "#general"),
        ("ALLOWED_GUILD_IDS", "99999999999999999999999"),
        ("BLOCKED_GUILD_IDS", "1;2"),
        ("ADMIN_USER_IDS", "me"),
        ("ALLOW_DMS", "maybe"),
        ("BLOCKED_REPLY", "loud"),
        ("USER_RATE_LIMIT", "5"),
        ("USER_RATE_LIMIT", "5/"),
        ("USER_RATE_LIMIT", "0/60"),
        ("USER_RATE_LIMIT", "5/0"),
        ("USER_RATE_LIMIT", "five per minute"),
        ("USER_RATE_BURST", "0"),
        ("USER_RATE_BURST", "lots"),
        ("MAX_CONCURRENT_MODEL_CALLS", "0"),
        ("MAX_CONCURRENT_MODEL_CALLS", "eight"),
        ("MAX_QUEUED_TURNS", "-1"),
        ("USER_DAILY_TOKENS", "0"),
        ("USER_DAILY_TOKENS", "-100"),
        ("GLOBAL_DAILY_TOKENS", "lots"),
        ("GLOBAL_DAILY_TOKENS", "1e99"),
        ("BUDGET_TIMEZONE", "Mars/Olympus"),
        ("BUDGET_TIMEZONE", "Europe"),
        ("BUDGET_TIMEZONE", "../etc/passwd"),
    ],
)
def test_bad_value_names_its_variable_in_one_line(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_controls({name: value})
    message = str(caught.value)
    assert message.startswith(f"{name} must be "), message
    assert "\n" not in message
    assert " not '" in message  # it quotes what was wrong


# --------------------------------------------------------------------------- access

ADMIN, ALICE, BOB, MALLORY = 1, 2, 3, 4
GUILD, OTHER_GUILD = 100, 101
CATEGORY, CHANNEL, THREAD, OTHER_CHANNEL = 200, 201, 202, 203
MODS, MUTED = 300, 301


def dm(user: int) -> Requester:
    return Requester(user_id=user, channel_id=900)


def at(
    user: int,
    channel: int = CHANNEL,
    *,
    guild: int = GUILD,
    roles: frozenset[int] = frozenset(),
) -> Requester:
    parents = {CHANNEL: (CATEGORY,), THREAD: (CHANNEL, CATEGORY)}.get(channel, ())
    return Requester(
        user_id=user, role_ids=roles, guild_id=guild, channel_id=channel, parent_ids=parents
    )


BASE = Controls(admin_user_ids=frozenset({ADMIN}))


def controls(**changes: object) -> Controls:
    fields = {k: frozenset(v) if isinstance(v, set) else v for k, v in changes.items()}
    return dataclasses.replace(BASE, **fields)  # type: ignore[arg-type]


CASES = [
    # (case, controls, requester, allowed, notice)
    ("open bot, server", controls(), at(ALICE), True, None),
    ("open bot, DM", controls(), dm(ALICE), True, None),
    ("blocked user", controls(blocked_user_ids={MALLORY}), at(MALLORY), False, NOTICE_WHO),
    ("blocked user in DM", controls(blocked_user_ids={MALLORY}), dm(MALLORY), False, NOTICE_WHO),
    ("other user unaffected", controls(blocked_user_ids={MALLORY}), at(ALICE), True, None),
    ("admin beats block", controls(blocked_user_ids={ADMIN}), at(ADMIN), True, None),
    ("admin beats allow list", controls(allowed_user_ids={ALICE}), at(ADMIN), True, None),
    ("allow list admits", controls(allowed_user_ids={ALICE}), at(ALICE), True, None),
    ("allow list refuses", controls(allowed_user_ids={ALICE}), at(BOB), False, NOTICE_WHO),
    ("allow list in DM", controls(allowed_user_ids={ALICE}), dm(BOB), False, NOTICE_WHO),
    ("block beats allow", controls(allowed_user_ids={ALICE}, blocked_user_ids={ALICE}),
     at(ALICE), False, NOTICE_WHO),
    ("DMs off", controls(allow_dms=False), dm(ALICE), False, NOTICE_DMS),
    ("DMs off, admin", controls(allow_dms=False), dm(ADMIN), True, None),
    ("DMs off, server fine", controls(allow_dms=False), at(ALICE), True, None),
    ("allowed role", controls(allowed_role_ids={MODS}), at(BOB, roles=frozenset({MODS})),
     True, None),
    ("missing role", controls(allowed_role_ids={MODS}), at(BOB), False, NOTICE_WHO),
    ("user or role", controls(allowed_role_ids={MODS}, allowed_user_ids={ALICE}), at(ALICE),
     True, None),
    ("blocked role", controls(blocked_role_ids={MUTED}), at(BOB, roles=frozenset({MUTED})),
     False, NOTICE_WHO),
    ("blocked role beats allowed user",
     controls(allowed_user_ids={BOB}, blocked_role_ids={MUTED}),
     at(BOB, roles=frozenset({MUTED})), False, NOTICE_WHO),
    ("roles don't apply in DMs", controls(allowed_role_ids={MODS}), dm(BOB), True, None),
    ("blocked roles don't apply in DMs", controls(blocked_role_ids={MUTED}), dm(BOB), True,
     None),
    ("allowed channel", controls(allowed_channel_ids={CHANNEL}), at(ALICE), True, None),
    ("other channel", controls(allowed_channel_ids={CHANNEL}), at(ALICE, OTHER_CHANNEL),
     False, NOTICE_WHERE),
    ("thread of allowed channel", controls(allowed_channel_ids={CHANNEL}), at(ALICE, THREAD),
     True, None),
    ("category covers channel", controls(allowed_channel_ids={CATEGORY}), at(ALICE), True,
     None),
    ("category covers thread", controls(allowed_channel_ids={CATEGORY}), at(ALICE, THREAD),
     True, None),
    ("blocked category", controls(blocked_channel_ids={CATEGORY}), at(ALICE, THREAD), False,
     NOTICE_WHERE),
    ("blocked channel blocks thread", controls(blocked_channel_ids={CHANNEL}),
     at(ALICE, THREAD), False, NOTICE_WHERE),
    ("blocked thread only", controls(blocked_channel_ids={THREAD}), at(ALICE), True, None),
    ("block beats allowed category",
     controls(allowed_channel_ids={CATEGORY}, blocked_channel_ids={THREAD}),
     at(ALICE, THREAD), False, NOTICE_WHERE),
    ("channel lists don't apply in DMs", controls(allowed_channel_ids={CHANNEL}), dm(ALICE),
     True, None),
    ("allowed guild", controls(allowed_guild_ids={GUILD}), at(ALICE), True, None),
    ("other guild", controls(allowed_guild_ids={GUILD}), at(ALICE, guild=OTHER_GUILD), False,
     NOTICE_WHERE),
    ("blocked guild", controls(blocked_guild_ids={GUILD}), at(ALICE), False, NOTICE_WHERE),
    ("blocked guild, admin", controls(blocked_guild_ids={GUILD}), at(ADMIN), True, None),
    ("guild lists don't apply in DMs", controls(allowed_guild_ids={GUILD}), dm(ALICE), True,
     None),
    ("who and where both needed",
     controls(allowed_user_ids={ALICE}, allowed_channel_ids={CHANNEL}),
     at(ALICE, OTHER_CHANNEL), False, NOTICE_WHERE),
    ("silent refusal", controls(blocked_user_ids={MALLORY}, blocked_reply="silent"),
     at(MALLORY), False, None),
    ("silent DM refusal", controls(allow_dms=False, blocked_reply="silent"), dm(ALICE), False,
     None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("c", "who", "allowed", "notice"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_policy(c: Controls, who: Requester, allowed: bool, notice: str | None) -> None:
    verdict = AccessPolicy(c).check(who)
    assert verdict.allowed is allowed, verdict.reason
    assert verdict.notice == notice
    assert verdict.reason


def test_refusal_reason_names_the_list() -> None:
    verdict = AccessPolicy(controls(blocked_channel_ids={CATEGORY})).check(at(ALICE, THREAD))
    assert "BLOCKED_CHANNEL_IDS" in verdict.reason and str(CATEGORY) in verdict.reason


def test_is_admin() -> None:
    policy = AccessPolicy(parse_controls({"ADMIN_USER_IDS": "1, 2"}))
    assert policy.is_admin(1) and policy.is_admin(2) and not policy.is_admin(3)


def test_role_only_allow_list_with_dms_warns(caplog: pytest.LogCaptureFixture) -> None:
    AccessPolicy(controls(allowed_role_ids={MODS}))
    assert "ALLOW_DMS=false" in caplog.text
    caplog.clear()
    AccessPolicy(controls(allowed_role_ids={MODS}, allow_dms=False))
    assert not caplog.text


def test_requester_places() -> None:
    assert at(ALICE, THREAD).places == {THREAD, CHANNEL, CATEGORY}
    assert Requester(user_id=1, parent_ids=(5,)).places == {5}

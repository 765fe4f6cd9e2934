"""A loopback fake of Discord's REST API and gateway that the real discord.py client talks to."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import datetime as dt
import json
import logging
import mimetypes
import re
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import discord
import yarl
from aiohttp import BodyPartReader, WSMsgType, web

if TYPE_CHECKING:
    import pytest

__all__ = [
    "DEFAULT_BOT_PERMISSIONS",
    "DEFAULT_MEMBER_PERMISSIONS",
    "FakeDiscord",
    "FakeGuild",
    "FakeInteraction",
    "RecordedRequest",
    "running_client",
]

_log = logging.getLogger(__name__)
_T = TypeVar("_T")

DISCORD_EPOCH_MS = 1420070400000

# Permission bits (https://discord.com/developers/docs/topics/permissions).
ADMINISTRATOR = 1 << 3
ADD_REACTIONS = 1 << 6
VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
MANAGE_MESSAGES = 1 << 13
ATTACH_FILES = 1 << 15
READ_MESSAGE_HISTORY = 1 << 16
MENTION_EVERYONE = 1 << 17
CREATE_PUBLIC_THREADS = 1 << 35
CREATE_PRIVATE_THREADS = 1 << 36
SEND_MESSAGES_IN_THREADS = 1 << 38
ALL_PERMISSIONS = discord.Permissions.all().value

#: Every text permission plus View Channel: what the bot gets unless a test says otherwise.
DEFAULT_BOT_PERMISSIONS: int = discord.Permissions.text().value | VIEW_CHANNEL
#: What an ordinary member invoking a slash command has by default.
DEFAULT_MEMBER_PERMISSIONS: int = DEFAULT_BOT_PERMISSIONS

# Gateway intents.
INTENT_GUILDS = 1 << 0
INTENT_GUILD_MEMBERS = 1 << 1
INTENT_GUILD_PRESENCES = 1 << 8
INTENT_GUILD_MESSAGES = 1 << 9
INTENT_GUILD_MESSAGE_REACTIONS = 1 << 10
INTENT_GUILD_MESSAGE_TYPING = 1 << 11
INTENT_DIRECT_MESSAGES = 1 << 12
INTENT_DIRECT_MESSAGE_REACTIONS = 1 << 13
INTENT_DIRECT_MESSAGE_TYPING = 1 << 14
INTENT_MESSAGE_CONTENT = 1 << 15
PRIVILEGED_INTENTS = INTENT_GUILD_MEMBERS | INTENT_GUILD_PRESENCES | INTENT_MESSAGE_CONTENT
_ALL_INTENTS = discord.Intents.all().value

# Application flags: the three "gateway intent enabled" flags and the command badge.
_APP_FLAGS = (1 << 12) | (1 << 14) | (1 << 18) | (1 << 23)
#: Each privileged intent and the application flag saying it is enabled.
_INTENT_FLAGS = {
    INTENT_GUILD_PRESENCES: 1 << 12,
    INTENT_GUILD_MEMBERS: 1 << 14,
    INTENT_MESSAGE_CONTENT: 1 << 18,
}

# Message flags.
MSG_FLAG_HAS_THREAD = 1 << 5
MSG_FLAG_EPHEMERAL = 1 << 6
MSG_FLAG_LOADING = 1 << 7

# Channel types.
CH_GUILD_TEXT = 0
CH_DM = 1
CH_ANNOUNCEMENT = 5
CH_ANNOUNCEMENT_THREAD = 10
CH_PUBLIC_THREAD = 11
CH_PRIVATE_THREAD = 12
_THREAD_TYPES = (CH_ANNOUNCEMENT_THREAD, CH_PUBLIC_THREAD, CH_PRIVATE_THREAD)

# Message types.
MSG_DEFAULT = 0
MSG_REPLY = 19
MSG_CHAT_INPUT_COMMAND = 20

_ARCHIVE_DURATIONS = (60, 1440, 4320, 10080)
#: How long an interaction's token may be used (webhook edits and followups): 15 minutes.
INTERACTION_TOKEN_SECONDS = 15 * 60
_ATTACHMENT_DESCRIPTION_LIMIT = 1024
_ATTACHMENT_SIZE_LIMIT = 10 * 1024 * 1024
_COMMAND_NAME_RE = re.compile(r"^[-_'\w]{1,32}$")
_USER_MENTION_RE = re.compile(r"<@!?(\d+)>")

# Option types of application commands.
_OPT_SUB_COMMAND = 1
_OPT_SUB_GROUP = 2
_OPT_STRING = 3
_OPT_INTEGER = 4
_OPT_BOOLEAN = 5
_OPT_USER = 6
_OPT_CHANNEL = 7
_OPT_NUMBER = 10
_OPT_ATTACHMENT = 11


def _now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


def _snowflake_time_iso(snowflake: int) -> str:
    ms = (snowflake >> 22) + DISCORD_EPOCH_MS
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat()


@dataclass
class RecordedRequest:
    """One REST request the fake received (recorded after it was answered)."""

    method: str
    path: str  # without the /api/v10 prefix and without the query string
    query: dict[str, str]
    json: Any | None  # the JSON body, or the parsed ``payload_json`` of a multipart body
    files: list[tuple[str, bytes, str]]  # (filename, content, content type as sent)
    headers: dict[str, str]
    form: dict[str, str] = field(default_factory=dict)  # other non-file multipart fields
    status: int = 0  # the status the fake answered with
    response: Any | None = None  # the JSON the fake answered with (None for 204)
    injected: bool = False  # True when the answer came from fail_next()
    received_at: float = field(default_factory=time.monotonic)  # when the request arrived


@dataclass
class FakeGuild:
    """A guild in the fake's world."""

    id: int
    name: str
    bot_permissions: int
    everyone_permissions: int
    owner_id: int
    bot_role_id: int
    joined_at: str
    channel_ids: list[int] = field(default_factory=list)
    roles: list[dict[str, Any]] = field(default_factory=list)
    members: dict[int, dict[str, Any]] = field(default_factory=dict)  # user id -> member payload


@dataclass
class FakeInteraction:
    """An interaction the fake sent (INTERACTION_CREATE) and what the bot did with it."""

    id: int
    token: str
    application_id: int
    payload: dict[str, Any]
    channel_id: int
    guild_id: int | None
    user_id: int
    created: float
    callbacks: list[dict[str, Any]] = field(default_factory=list)  # bodies POSTed to /callback
    original_message_id: int | None = None
    followup_message_ids: list[int] = field(default_factory=list)
    _fake: FakeDiscord | None = field(default=None, repr=False, compare=False)

    @property
    def callback_type(self) -> int | None:
        """Type of the first (only accepted) interaction callback, None if not answered yet."""
        return self.callbacks[0].get("type") if self.callbacks else None

    @property
    def responded(self) -> bool:
        return bool(self.callbacks)

    def original(self) -> dict[str, Any] | None:
        """The @original response message (a copy), including a still-loading placeholder."""
        assert self._fake is not None
        if self.original_message_id is None:
            return None
        msg = self._fake._messages.get(self.original_message_id)
        return copy.deepcopy(msg) if msg is not None else None

    def followups(self) -> list[dict[str, Any]]:
        """Messages the bot created through ``POST /webhooks/{app}/{token}`` (copies).

        As on Discord, the first followup after a type-5 defer *is* the original message.
        """
        assert self._fake is not None
        return [
            copy.deepcopy(self._fake._messages[mid])
            for mid in self.followup_message_ids
            if mid in self._fake._messages
        ]

    async def wait_for_callback(
        self,
        *,
        timeout: float = 5.0,  # noqa: ASYNC109 - part of the fixture's agreed API
    ) -> dict[str, Any]:
        """Wait until the bot answered the interaction; returns the callback body."""
        assert self._fake is not None
        return await self._fake._wait(
            lambda: self.callbacks[0] if self.callbacks else None,
            timeout,
            f"a callback for interaction {self.id}",
        )

    async def wait_for_response(
        self,
        *,
        timeout: float = 5.0,  # noqa: ASYNC109 - part of the fixture's agreed API
    ) -> dict[str, Any]:
        """Wait until the deferred response shows something (an edit or the first followup
        filled the "thinking…" placeholder); returns that message."""

        def filled() -> dict[str, Any] | None:
            original = self.original()
            return original if original and not original["flags"] & MSG_FLAG_LOADING else None

        assert self._fake is not None
        return await self._fake._wait(filled, timeout, f"the response of interaction {self.id}")

    async def wait_for_followups(
        self,
        count: int,
        *,
        timeout: float = 5.0,  # noqa: ASYNC109 - part of the fixture's agreed API
    ) -> list[dict[str, Any]]:
        assert self._fake is not None
        return await self._fake._wait(
            lambda: self.followups() if len(self.followup_message_ids) >= count else None,
            timeout,
            f"{count} followup(s) of interaction {self.id}",
        )


@dataclass
class _Fault:
    method: str
    regex: re.Pattern[str]
    status: int
    times: int
    retry_after: float
    body: dict[str, Any] | None


class _ApiError(Exception):
    """Raised by route handlers: turns into a Discord-style JSON error."""

    def __init__(
        self, status: int, code: int, message: str, errors: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {"message": message, "code": code}
        if errors is not None:
            self.body["errors"] = errors


def _form_error(field_path: str, code: str, message: str) -> _ApiError:
    """A 400 Invalid Form Body error for one field (``a.b.c`` nesting)."""
    errors: dict[str, Any] = {"_errors": [{"code": code, "message": message}]}
    for part in reversed(field_path.split(".")):
        errors = {part: errors}
    return _ApiError(400, 50035, "Invalid Form Body", errors)


def _missing_permissions() -> _ApiError:
    return _ApiError(403, 50013, "Missing Permissions")


@dataclass
class _Session:
    session_id: str
    shard: tuple[int, int] | None
    intents: int
    seq: int = 0
    buffer: list[tuple[int, str]] = field(default_factory=list)  # (seq, frame) for RESUME
    ws: web.WebSocketResponse | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    valid: bool = True

    def wants_guild(self, guild_id: int | None) -> bool:
        if self.shard is None:
            return True
        shard_id, count = self.shard
        if guild_id is None:
            return shard_id == 0
        return (guild_id >> 22) % count == shard_id


_Handler = Callable[[RecordedRequest, dict[str, str]], Awaitable[tuple[int, Any]]]


class FakeDiscord:
    """Discord on 127.0.0.1: REST under ``/api/v10`` and a JSON gateway at ``/gateway``.

    Build the world (``add_guild``/``add_text_channel``/``add_user``) before the client
    connects, call ``patch_discord(monkeypatch)``, then drive events with ``user_message``
    and ``slash_command`` and inspect what the bot did with ``messages``/``requests``.

    Realistic behaviour worth knowing:

    * The bot receives MESSAGE_CREATE/UPDATE/DELETE for its *own* messages too (as on
      Discord); set ``echo_bot_messages = False`` to turn that off.
    * Without the MESSAGE_CONTENT intent, guild messages arrive with empty content unless
      they mention the bot; events are filtered by the GUILD_MESSAGES/DIRECT_MESSAGES intents.
    * Message bodies are validated (2000-char content, empty message, embed limits) and
      answered with Discord's 400 errors; sending needs VIEW_CHANNEL + SEND_MESSAGES
      (SEND_MESSAGES_IN_THREADS in threads) and ATTACH_FILES for files.
    * A type-5 defer creates a loading placeholder (flags 128, hidden from ``messages()``);
      the first followup fills it, as Discord does.
    * The ``@everyone`` role has ``everyone_permissions`` (0 by default): the bot's
      permissions come from its managed role, ``bot_permissions``.
    """

    def __init__(
        self,
        *,
        bot_id: int = 1100000000000000001,
        application_id: int | None = None,
        bot_name: str = "mathbot",
        token: str | None = None,
    ) -> None:
        self.bot_id = bot_id
        self.application_id = application_id if application_id is not None else bot_id
        self.bot_name = bot_name
        #: When set, REST calls and IDENTIFY must carry this token (else 401 / close 4004).
        self.expected_token = token

        self.port: int = 0
        self.api_base: str = ""
        self.gateway_url: str = ""
        self._runner: web.AppRunner | None = None
        self._unpatch: list[Callable[[], None]] = []

        # ---- knobs
        self.shards: int = 1  # what GET /gateway/bot answers
        self.heartbeat_interval_ms: int = 45000
        self.identify_close_code: int | None = None
        self.allowed_privileged_intents: int = PRIVILEGED_INTENTS
        self.echo_bot_messages: bool = True
        #: Seconds the bot has to answer an interaction (None: no limit); Discord's is 3.
        self.interaction_ack_deadline: float | None = None
        #: Seconds by which new interactions are backdated (their snowflake's time), to test
        #: what happens near the end of the token's 15 minutes.
        self.interaction_age: float = 0.0
        self.dm_blocked_users: set[int] = set()

        # ---- world
        self.users: dict[int, dict[str, Any]] = {}
        self.guilds: dict[int, FakeGuild] = {}
        self.channels: dict[int, dict[str, Any]] = {}  # guild (non-thread) channels
        self.threads: dict[int, dict[str, Any]] = {}
        self.dm_channels: dict[int, dict[str, Any]] = {}
        self._dm_by_user: dict[int, int] = {}
        self._no_threads: set[int] = set()
        self._messages: dict[int, dict[str, Any]] = {}
        self._channel_messages: dict[int, list[int]] = {}
        self._deleted: set[int] = set()
        self._attachments: dict[int, tuple[bytes, str]] = {}
        self._download_gates: dict[str, asyncio.Event] = {}
        self.downloads_held: int = 0
        self.downloads_served: int = 0  # attachment downloads answered (404s included)
        self.interactions: dict[int, FakeInteraction] = {}
        self._interactions_by_token: dict[str, FakeInteraction] = {}
        self.registered_commands: list[dict[str, Any]] = []
        self.guild_commands: dict[int, list[dict[str, Any]]] = {}
        self.command_puts: int = 0
        self.guild_command_puts: int = 0
        self._generated_command_ids: dict[str, int] = {}

        # ---- recording
        self.requests: list[RecordedRequest] = []
        self.unknown_requests: list[RecordedRequest] = []
        self.handler_errors: list[BaseException] = []
        self.faults: list[_Fault] = []
        self.identify_payloads: list[dict[str, Any]] = []
        self.resume_payloads: list[dict[str, Any]] = []
        self.gateway_received: list[dict[str, Any]] = []  # every frame the client sent
        self.presence_updates: list[dict[str, Any]] = []
        self.sent_events: list[tuple[str, dict[str, Any]]] = []  # (session id, dispatch frame)
        self.identify_count: int = 0
        self.resume_count: int = 0
        self.heartbeat_count: int = 0
        self.gateway_connections: int = 0

        self._sessions: dict[str, _Session] = {}
        self._open_ws: set[web.WebSocketResponse] = set()
        self._ws_locks: dict[int, asyncio.Lock] = {}
        self._last_id = 0
        self._changed = asyncio.Event()
        self._routes: list[tuple[str, re.Pattern[str], _Handler]] = []
        self._install_routes()

        self.bot_user: dict[str, Any] = self.add_user(bot_id, bot_name, bot=True)
        #: The application's (and, unless add_guild says otherwise, every guild's) owner.
        self.owner_user_id: int = self._next_id()
        self.add_user(self.owner_user_id, "owner")

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Bind an aiohttp server on 127.0.0.1 with an OS-chosen port."""
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/gateway", self._gateway_handler)
        app.router.add_get("/attachments/{channel}/{att_id}/{filename}", self._attachment_handler)
        app.router.add_route("*", "/api/v{version:\\d+}/{tail:.*}", self._rest_handler)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        self.api_base = f"http://127.0.0.1:{self.port}/api/v10"
        self.gateway_url = f"ws://127.0.0.1:{self.port}/gateway"

    async def close(self) -> None:
        for ws in list(self._open_ws):
            with contextlib.suppress(Exception):
                await ws.close(code=1001, message=b"fake discord shutting down")
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        for undo in reversed(self._unpatch):
            undo()
        self._unpatch.clear()

    def patch_discord(self, monkeypatch: pytest.MonkeyPatch | None = None) -> None:
        """Point discord.py's REST base and default gateway at this fake.

        With a pytest ``monkeypatch`` the change is undone at test teardown; without one it
        is undone by ``close()``.
        """
        gateway = yarl.URL(self.gateway_url)
        if monkeypatch is not None:
            monkeypatch.setattr(discord.http.Route, "BASE", self.api_base)
            monkeypatch.setattr(discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", gateway)
            return
        old_base = discord.http.Route.BASE
        old_gateway = discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
        discord.http.Route.BASE = self.api_base
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = gateway

        def undo() -> None:
            discord.http.Route.BASE = old_base
            discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = old_gateway

        self._unpatch.append(undo)

    # ------------------------------------------------------------------ world building

    def _next_id(self) -> int:
        candidate = (int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22
        if candidate <= self._last_id:
            candidate = self._last_id + 1
        self._last_id = candidate
        return candidate

    def add_user(
        self, user_id: int, name: str, *, bot: bool = False, global_name: str | None = None
    ) -> dict[str, Any]:
        """Create (or replace) a user; returns its user payload. ``global_name`` is the
        display name (default: ``name``; bots have none)."""
        user: dict[str, Any] = {
            "id": str(user_id),
            "username": name,
            "global_name": None if bot else (global_name or name),
            "discriminator": "0",
            "avatar": None,
            "banner": None,
            "accent_color": None,
            "public_flags": 0,
            "flags": 0,
            "avatar_decoration_data": None,
            "collectibles": None,
            "primary_guild": None,
        }
        if bot:
            user["bot"] = True
        self.users[user_id] = user
        return user

    def _user(self, user_id: int) -> dict[str, Any]:
        if user_id not in self.users:
            self.add_user(user_id, f"user{user_id}")
        return self.users[user_id]

    def add_guild(
        self,
        guild_id: int,
        *,
        name: str = "Guild",
        bot_permissions: int = DEFAULT_BOT_PERMISSIONS,
        everyone_permissions: int = 0,
        owner_id: int | None = None,
    ) -> FakeGuild:
        """Add a guild the bot is in; the bot's managed role carries ``bot_permissions``."""
        owner = owner_id if owner_id is not None else self.owner_user_id
        self._user(owner)
        guild = FakeGuild(
            id=guild_id,
            name=name,
            bot_permissions=bot_permissions,
            everyone_permissions=everyone_permissions,
            owner_id=owner,
            bot_role_id=self._next_id(),
            joined_at=_now_iso(),
        )
        guild.roles = [
            self._role_payload(guild_id, "@everyone", everyone_permissions, position=0),
            self._role_payload(
                guild.bot_role_id,
                self.bot_name,
                bot_permissions,
                position=1,
                tags={"bot_id": str(self.bot_id)},
            ),
        ]
        self.guilds[guild_id] = guild
        self._add_member_to(guild, self.bot_id, roles=[guild.bot_role_id])
        self._add_member_to(guild, owner)
        return guild

    @staticmethod
    def _role_payload(
        role_id: int,
        name: str,
        permissions: int,
        *,
        position: int,
        tags: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        role: dict[str, Any] = {
            "id": str(role_id),
            "name": name,
            "color": 0,
            "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
            "hoist": False,
            "icon": None,
            "unicode_emoji": None,
            "position": position,
            "permissions": str(permissions),
            "managed": tags is not None,
            "mentionable": False,
            "flags": 0,
        }
        if tags is not None:
            role["tags"] = tags
        return role

    def _add_member_to(
        self, guild: FakeGuild, user_id: int, *, roles: Sequence[int] = ()
    ) -> dict[str, Any]:
        if user_id not in guild.members:
            guild.members[user_id] = {
                "user": self._user(user_id),
                "nick": None,
                "avatar": None,
                "banner": None,
                "roles": [str(r) for r in roles],
                "joined_at": _now_iso(),
                "premium_since": None,
                "deaf": False,
                "mute": False,
                "pending": False,
                "flags": 0,
                "communication_disabled_until": None,
            }
        return guild.members[user_id]

    def add_member(
        self, guild_id: int, user_id: int, *, roles: Sequence[int] = ()
    ) -> dict[str, Any]:
        """Make a user a member of a guild; returns the member payload."""
        return self._add_member_to(self._guild(guild_id), user_id, roles=roles)

    def add_role(self, guild_id: int, role_id: int, name: str, permissions: int) -> dict[str, Any]:
        guild = self._guild(guild_id)
        role = self._role_payload(role_id, name, permissions, position=len(guild.roles))
        guild.roles.append(role)
        return role

    def _guild(self, guild_id: int) -> FakeGuild:
        try:
            return self.guilds[guild_id]
        except KeyError:
            raise ValueError(f"unknown guild {guild_id}: call add_guild() first") from None

    def add_text_channel(
        self,
        guild_id: int,
        channel_id: int,
        *,
        name: str = "general",
        can_create_threads: bool = True,
        bot_deny: int = 0,
        topic: str | None = None,
    ) -> dict[str, Any]:
        """Add a text channel; ``can_create_threads=False`` denies the bot thread creation.

        ``bot_deny`` adds a member overwrite denying those permission bits to the bot.
        """
        guild = self._guild(guild_id)
        deny = bot_deny
        if not can_create_threads:
            deny |= CREATE_PUBLIC_THREADS | CREATE_PRIVATE_THREADS
            self._no_threads.add(channel_id)
        overwrites: list[dict[str, Any]] = []
        if deny:
            overwrites.append({"id": str(self.bot_id), "type": 1, "allow": "0", "deny": str(deny)})
        channel: dict[str, Any] = {
            "id": str(channel_id),
            "type": CH_GUILD_TEXT,
            "guild_id": str(guild_id),
            "name": name,
            "position": len(guild.channel_ids),
            "permission_overwrites": overwrites,
            "topic": topic,
            "nsfw": False,
            "last_message_id": None,
            "last_pin_timestamp": None,
            "rate_limit_per_user": 0,
            "parent_id": None,
            "flags": 0,
            "default_thread_rate_limit_per_user": 0,
        }
        self.channels[channel_id] = channel
        guild.channel_ids.append(channel_id)
        return channel

    def add_thread(
        self,
        parent_id: int,
        thread_id: int,
        *,
        name: str = "thread",
        owner_id: int | None = None,
        private: bool = False,
    ) -> dict[str, Any]:
        """Add an already-existing thread (e.g. one a user made) under a text channel."""
        parent = self.channels[parent_id]
        thread = self._thread_payload(
            thread_id,
            parent,
            name=name,
            owner_id=owner_id
            if owner_id is not None
            else self.guilds[int(parent["guild_id"])].owner_id,
            thread_type=CH_PRIVATE_THREAD if private else CH_PUBLIC_THREAD,
            auto_archive_duration=1440,
            rate_limit_per_user=0,
        )
        self.threads[thread_id] = thread
        return thread

    def dm_channel_for(self, user_id: int, channel_id: int | None = None) -> dict[str, Any]:
        """The bot's DM channel with a user (created on first use)."""
        existing = self._dm_by_user.get(user_id)
        if existing is not None:
            return self.dm_channels[existing]
        cid = channel_id if channel_id is not None else self._next_id()
        channel = {
            "id": str(cid),
            "type": CH_DM,
            "last_message_id": None,
            "flags": 0,
            "recipients": [self._user(user_id)],
        }
        self.dm_channels[cid] = channel
        self._dm_by_user[user_id] = cid
        return channel

    def _channel(self, channel_id: int) -> dict[str, Any] | None:
        return (
            self.channels.get(channel_id)
            or self.threads.get(channel_id)
            or self.dm_channels.get(channel_id)
        )

    def _guild_id_of(self, channel_id: int) -> int | None:
        channel = self._channel(channel_id)
        if channel is None or "guild_id" not in channel:
            return None
        return int(channel["guild_id"])

    # ------------------------------------------------------------------ permissions

    def permissions_for(self, guild_id: int, user_id: int, channel_id: int | None = None) -> int:
        """Compute a member's permissions in a guild (and channel), Discord's way."""
        guild = self._guild(guild_id)
        member = guild.members.get(user_id)
        role_ids = {int(r) for r in member["roles"]} if member else set()
        perms = guild.everyone_permissions
        for role in guild.roles:
            if int(role["id"]) in role_ids:
                perms |= int(role["permissions"])
        if user_id == guild.owner_id or perms & ADMINISTRATOR:
            return ALL_PERMISSIONS
        channel = self._channel(channel_id) if channel_id is not None else None
        if channel is not None and channel.get("type") in _THREAD_TYPES:
            channel = self.channels.get(int(channel["parent_id"]))
        if channel is None:
            return perms
        overwrites = channel.get("permission_overwrites", [])
        for ow in overwrites:
            if int(ow["id"]) == guild_id:
                perms = (perms & ~int(ow["deny"])) | int(ow["allow"])
        allow = deny = 0
        for ow in overwrites:
            if ow["type"] == 0 and int(ow["id"]) in role_ids:
                allow |= int(ow["allow"])
                deny |= int(ow["deny"])
        perms = (perms & ~deny) | allow
        for ow in overwrites:
            if ow["type"] == 1 and int(ow["id"]) == user_id:
                perms = (perms & ~int(ow["deny"])) | int(ow["allow"])
        return perms

    def _require_bot_perms(self, channel_id: int, needed: int) -> None:
        guild_id = self._guild_id_of(channel_id)
        if guild_id is None:
            return
        perms = self.permissions_for(guild_id, self.bot_id, channel_id)
        if not perms & VIEW_CHANNEL:
            raise _ApiError(403, 50001, "Missing Access")
        if perms & needed != needed:
            raise _missing_permissions()

    # ------------------------------------------------------------------ waiting

    def _bump(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def _wait(
        self,
        check: Callable[[], _T | None],
        timeout: float,  # noqa: ASYNC109 - part of the fixture's agreed API
        what: str,
    ) -> _T:
        try:
            async with asyncio.timeout(timeout):
                while True:
                    event = self._changed
                    result = check()
                    if result is not None and result is not False:
                        return result
                    await event.wait()
        except TimeoutError:
            recent = ", ".join(f"{r.method} {r.path} -> {r.status}" for r in self.requests[-8:])
            raise TimeoutError(
                f"timed out after {timeout}s waiting for {what}; last requests: [{recent}]"
            ) from None

    async def wait_until(
        self,
        predicate: Callable[[], bool],
        *,
        timeout: float = 5.0,  # noqa: ASYNC109 - part of the fixture's agreed API
        what: str = "condition",
    ) -> None:
        """Wait until ``predicate()`` holds; re-checked after every request and gateway change."""
        await self._wait(lambda: True if predicate() else None, timeout, what)

    async def wait_for(
        self,
        predicate: Callable[[RecordedRequest], bool],
        *,
        timeout: float = 5.0,  # noqa: ASYNC109 - part of the fixture's agreed API
    ) -> RecordedRequest:
        """The first already-recorded or future request matching ``predicate``."""
        return await self._wait(
            lambda: next((r for r in self.requests if predicate(r)), None),
            timeout,
            "a matching request",
        )

    def messages(self, channel_id: int) -> list[dict[str, Any]]:
        """Messages the bot created in a channel/thread, oldest first, as currently edited.

        Deleted messages and still-loading defer placeholders are left out.
        """
        out = []
        for mid in self._channel_messages.get(channel_id, []):
            msg = self._messages[mid]
            if mid in self._deleted or int(msg["author"]["id"]) != self.bot_id:
                continue
            if msg["flags"] & MSG_FLAG_LOADING:
                continue
            out.append(copy.deepcopy(msg))
        return out

    def all_messages(
        self, channel_id: int, *, include_deleted: bool = False
    ) -> list[dict[str, Any]]:
        """Every message (users' and the bot's, placeholders too) in a channel, oldest first."""
        return [
            copy.deepcopy(self._messages[mid])
            for mid in self._channel_messages.get(channel_id, [])
            if include_deleted or mid not in self._deleted
        ]

    def message(self, message_id: int) -> dict[str, Any] | None:
        msg = self._messages.get(message_id)
        return copy.deepcopy(msg) if msg is not None else None

    @property
    def deleted_message_ids(self) -> set[int]:
        return set(self._deleted)

    async def wait_for_messages(
        self,
        channel_id: int,
        count: int,
        *,
        timeout: float = 5.0,  # noqa: ASYNC109 - part of the fixture's agreed API
    ) -> list[dict[str, Any]]:
        """Wait until the bot has at least ``count`` messages in the channel; returns them all."""
        return await self._wait(
            lambda: msgs if len(msgs := self.messages(channel_id)) >= count else None,
            timeout,
            f"{count} bot message(s) in channel {channel_id}",
        )

    async def wait_for_message(
        self,
        channel_id: int,
        predicate: Callable[[dict[str, Any]], bool] = lambda _m: True,
        *,
        timeout: float = 5.0,  # noqa: ASYNC109 - part of the fixture's agreed API
    ) -> dict[str, Any]:
        """The first bot message in the channel (as currently edited) matching ``predicate``."""
        return await self._wait(
            lambda: next((m for m in self.messages(channel_id) if predicate(m)), None),
            timeout,
            f"a matching bot message in channel {channel_id}",
        )

    async def wait_for_ready(
        self,
        *,
        sessions: int = 1,
        timeout: float = 5.0,  # noqa: ASYNC109 - part of the fixture's agreed API
    ) -> None:
        """Wait until ``sessions`` gateway sessions have IDENTIFYed and got their READY."""
        await self.wait_until(
            lambda: (
                sum(1 for s in self._sessions.values() if s.valid and s.ws is not None) >= sessions
            ),
            timeout=timeout,
            what=f"{sessions} ready gateway session(s)",
        )

    # ------------------------------------------------------------------ fault injection

    def fail_next(
        self,
        method: str,
        path_regex: str,
        *,
        status: int,
        times: int = 1,
        retry_after: float = 0.01,
        body: dict[str, Any] | None = None,
    ) -> None:
        """Answer the next ``times`` matching requests with an error instead of handling them.

        ``path_regex`` is matched with ``re.fullmatch`` against the path without ``/api/v10``
        and without the query string, e.g. ``r"/channels/\\d+/messages"``. 429s carry
        ``Via`` and Discord's rate-limit headers (``body={"global": True}`` for a global
        one); 403 uses ``{"code": 50013, "message": "Missing Permissions"}``. ``body`` is
        merged into the default JSON error body.
        """
        self.faults.append(
            _Fault(method.upper(), re.compile(path_regex), status, times, retry_after, body)
        )

    def _take_fault(self, method: str, path: str) -> _Fault | None:
        for fault in self.faults:
            if fault.method == method and fault.regex.fullmatch(path):
                fault.times -= 1
                if fault.times <= 0:
                    self.faults.remove(fault)
                return fault
        return None

    @staticmethod
    def _fault_response(fault: _Fault) -> tuple[int, dict[str, Any], dict[str, str]]:
        status = fault.status
        headers: dict[str, str] = {}
        if status == 429:
            body: dict[str, Any] = {
                "message": "You are being rate limited.",
                "retry_after": fault.retry_after,
                "global": False,
            }
            body.update(fault.body or {})
            is_global = bool(body.get("global"))
            headers = {
                "Via": "1.1 google",
                "Retry-After": str(max(1, int(fault.retry_after + 0.999))),
                "X-RateLimit-Limit": "5",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": f"{time.time() + fault.retry_after:.3f}",
                "X-RateLimit-Reset-After": f"{fault.retry_after:.3f}",
                "X-RateLimit-Bucket": "fakebucket" + secrets.token_hex(4),
                "X-RateLimit-Scope": "global" if is_global else "user",
            }
            if is_global:
                headers["X-RateLimit-Global"] = "true"
            return status, body, headers
        if status == 403:
            body = {"message": "Missing Permissions", "code": 50013}
        elif status == 404:
            body = {"message": "404: Not Found", "code": 0}
        elif status == 401:
            body = {"message": "401: Unauthorized", "code": 0}
        elif status == 400:
            body = {"message": "Invalid Form Body", "code": 50035, "errors": {}}
        elif status >= 500:
            body = {"message": f"{status}: Internal Server Error", "code": 0}
        else:
            body = {"message": f"{status}: Error", "code": 0}
        body.update(fault.body or {})
        return status, body, headers

    # ------------------------------------------------------------------ gateway: events

    async def _send_frame(self, ws: web.WebSocketResponse, frame: dict[str, Any]) -> None:
        lock = self._ws_locks.setdefault(id(ws), asyncio.Lock())
        async with lock:
            if not ws.closed:
                await ws.send_str(json.dumps(frame))

    async def _send_dispatch(self, session: _Session, event: str, data: dict[str, Any]) -> None:
        """Send (and buffer for RESUME) one dispatch; caller holds ``session.lock``."""
        session.seq += 1
        frame = {"op": 0, "t": event, "s": session.seq, "d": data}
        text = json.dumps(frame)
        session.buffer.append((session.seq, text))
        self.sent_events.append((session.session_id, frame))
        ws = session.ws
        if ws is not None and not ws.closed:
            lock = self._ws_locks.setdefault(id(ws), asyncio.Lock())
            async with lock:
                try:
                    await ws.send_str(text)
                except (ConnectionError, RuntimeError):  # client gone: event stays buffered
                    _log.debug("dispatch %s to a closing socket kept for RESUME", event)

    async def _broadcast(
        self,
        event: str,
        data: dict[str, Any],
        *,
        guild_id: int | None,
        intent: int = 0,
        transform: Callable[[_Session, dict[str, Any]], dict[str, Any] | None] | None = None,
    ) -> int:
        """Dispatch to every valid session of the right shard that has ``intent``."""
        sent = 0
        for session in list(self._sessions.values()):
            if not session.valid or not session.wants_guild(guild_id):
                continue
            if intent and not session.intents & intent:
                continue
            payload = transform(session, data) if transform is not None else data
            if payload is None:
                continue
            async with session.lock:
                await self._send_dispatch(session, event, payload)
            sent += 1
        self._bump()
        return sent

    async def dispatch(
        self, event: str, data: dict[str, Any], *, guild_id: int | None = None
    ) -> None:
        """Send a raw dispatch to every connected session of the right shard.

        The shard is picked from ``guild_id`` or else ``data["guild_id"]``; no intent filtering.
        """
        if guild_id is None and data.get("guild_id") is not None:
            guild_id = int(data["guild_id"])
        await self._broadcast(event, data, guild_id=guild_id)

    def _require_sessions(self) -> None:
        if not any(s.valid for s in self._sessions.values()):
            raise RuntimeError(
                "no gateway session: the client is not connected to the fake (await its READY)"
            )

    def _message_intent(self, guild_id: int | None) -> int:
        return INTENT_GUILD_MESSAGES if guild_id is not None else INTENT_DIRECT_MESSAGES

    def _message_event(self, msg: dict[str, Any], guild_id: int | None) -> dict[str, Any]:
        event = copy.deepcopy(msg)
        if guild_id is not None:
            event["guild_id"] = str(guild_id)
            member = self.guilds[guild_id].members.get(int(msg["author"]["id"]))
            if member is not None:
                event["member"] = {k: v for k, v in member.items() if k != "user"}
            for mention in event.get("mentions", []):
                mm = self.guilds[guild_id].members.get(int(mention["id"]))
                if mm is not None:
                    mention["member"] = {k: v for k, v in mm.items() if k != "user"}
        return event

    def _content_filter(
        self, guild_id: int | None
    ) -> Callable[[_Session, dict[str, Any]], dict[str, Any] | None]:
        def transform(session: _Session, event: dict[str, Any]) -> dict[str, Any] | None:
            if session.intents & INTENT_MESSAGE_CONTENT or guild_id is None:
                return event
            author_id = int(event.get("author", {}).get("id", 0))
            mentioned = any(int(u["id"]) == self.bot_id for u in event.get("mentions", []))
            if author_id == self.bot_id or mentioned:
                return event
            stripped = dict(event)
            stripped.update(content="", embeds=[], attachments=[], components=[])
            stripped.pop("poll", None)
            return stripped

        return transform

    async def _dispatch_message(self, event: str, msg: dict[str, Any]) -> None:
        channel_id = int(msg["channel_id"])
        guild_id = self._guild_id_of(channel_id)
        if msg["flags"] & MSG_FLAG_EPHEMERAL:
            return
        await self._broadcast(
            event,
            self._message_event(msg, guild_id),
            guild_id=guild_id,
            intent=self._message_intent(guild_id),
            transform=self._content_filter(guild_id),
        )

    async def _echo_bot_message(self, event: str, msg: dict[str, Any]) -> None:
        if self.echo_bot_messages:
            await self._dispatch_message(event, msg)

    async def _echo_bot_delete(self, msg: dict[str, Any]) -> None:
        if not self.echo_bot_messages or msg["flags"] & MSG_FLAG_EPHEMERAL:
            return
        channel_id = int(msg["channel_id"])
        guild_id = self._guild_id_of(channel_id)
        data: dict[str, Any] = {"id": msg["id"], "channel_id": msg["channel_id"]}
        if guild_id is not None:
            data["guild_id"] = str(guild_id)
        await self._broadcast(
            "MESSAGE_DELETE", data, guild_id=guild_id, intent=self._message_intent(guild_id)
        )

    async def user_message(
        self,
        *,
        channel_id: int,
        author_id: int,
        content: str,
        guild_id: int | None = None,
        mention_bot: bool = False,
        reply_to: int | None = None,
        with_referenced: bool = True,
        attachments: Sequence[tuple[str, bytes, str]] = (),
    ) -> dict[str, Any]:
        """A user posts a message (MESSAGE_CREATE); returns the full message payload.

        ``guild_id`` defaults to the guild owning ``channel_id``; an unknown channel with no
        guild is the user's DM channel with the bot (created with that id if needed).
        ``reply_to`` makes it a reply to that message: the event carries that message as
        ``referenced_message`` (``null`` once it is deleted; left out with
        ``with_referenced=False``, as Discord sometimes does). ``attachments`` are
        (filename, bytes, content type) and are served by the fake.
        """
        self._require_sessions()
        if guild_id is None:
            guild_id = self._guild_id_of(channel_id)
        author = self._user(author_id)
        if guild_id is None:
            dm = self._dm_by_user.get(author_id)
            if dm is not None and dm != channel_id:
                raise ValueError(f"user {author_id} already has DM channel {dm}")
            self.dm_channel_for(author_id, channel_id)
        else:
            guild = self._guild(guild_id)
            if self._channel(channel_id) is None or self._guild_id_of(channel_id) != guild_id:
                raise ValueError(f"unknown channel {channel_id} in guild {guild_id}")
            self._add_member_to(guild, author_id)
        mentions: list[dict[str, Any]] = []
        if mention_bot:
            content = f"<@{self.bot_id}> {content}"
        for uid in dict.fromkeys(int(m) for m in _USER_MENTION_RE.findall(content)):
            if uid in self.users:
                mentions.append(self.users[uid])
        msg = self._new_message(channel_id, author, content, mentions=mentions)
        if reply_to is not None:
            ref = self._messages.get(reply_to)
            if ref is None:
                raise ValueError(f"unknown message {reply_to}")
            self._make_reply(msg, ref, mention_author=True)
            if reply_to in self._deleted:
                msg["referenced_message"] = None
            elif not with_referenced:
                del msg["referenced_message"]
        if attachments:
            msg["attachments"] = [
                self._store_attachment(channel_id, name, data, ctype)
                for name, data, ctype in attachments
            ]
        self._store_message(msg)
        await self._dispatch_message("MESSAGE_CREATE", msg)
        return copy.deepcopy(msg)

    async def delete_user_message(self, message_id: int) -> None:
        """The author deletes their message (MESSAGE_DELETE); replies made to it afterwards
        carry ``referenced_message: null``."""
        msg = self._messages.get(message_id)
        if msg is None or message_id in self._deleted:
            raise ValueError(f"unknown message {message_id}")
        self._deleted.add(message_id)
        channel_id = int(msg["channel_id"])
        guild_id = self._guild_id_of(channel_id)
        data: dict[str, Any] = {"id": msg["id"], "channel_id": msg["channel_id"]}
        if guild_id is not None:
            data["guild_id"] = str(guild_id)
        await self._broadcast(
            "MESSAGE_DELETE", data, guild_id=guild_id, intent=self._message_intent(guild_id)
        )

    async def edit_user_message(self, message_id: int, content: str) -> dict[str, Any]:
        """The author edits their message (MESSAGE_UPDATE with the full new message)."""
        msg = self._messages.get(message_id)
        if msg is None:
            raise ValueError(f"unknown message {message_id}")
        msg["content"] = content
        msg["edited_timestamp"] = _now_iso()
        await self._dispatch_message("MESSAGE_UPDATE", msg)
        return copy.deepcopy(msg)

    def _resolve_command(
        self, name: str, guild_id: int | None, command_type: int = 1
    ) -> tuple[dict[str, Any] | None, int | None]:
        """(registered command, guild id it is registered in)."""
        if guild_id is not None:
            for cmd in self.guild_commands.get(guild_id, []):
                if cmd["name"] == name and cmd.get("type", 1) == command_type:
                    return cmd, guild_id
        for cmd in self.registered_commands:
            if cmd["name"] == name and cmd.get("type", 1) == command_type:
                return cmd, None
        return None, None

    def _build_options(
        self,
        values: Mapping[str, Any],
        specs: Sequence[dict[str, Any]],
        resolved: dict[str, dict[str, Any]],
        channel_id: int,
        guild_id: int | None,
    ) -> list[dict[str, Any]]:
        by_name = {s["name"]: s for s in specs}
        out: list[dict[str, Any]] = []
        for name, value in values.items():
            spec = by_name.get(name)
            if spec is not None:
                opt_type = int(spec["type"])
            elif isinstance(value, bool):
                opt_type = _OPT_BOOLEAN
            elif isinstance(value, int):
                opt_type = _OPT_INTEGER
            elif isinstance(value, float):
                opt_type = _OPT_NUMBER
            elif isinstance(value, tuple):
                opt_type = _OPT_ATTACHMENT
            else:
                opt_type = _OPT_STRING
            if opt_type == _OPT_INTEGER:
                value = int(value)
            elif opt_type == _OPT_NUMBER:
                value = float(value)
            elif opt_type == _OPT_BOOLEAN:
                value = value if isinstance(value, bool) else str(value).lower() in ("1", "true")
            elif opt_type == _OPT_USER:
                uid = int(value)
                resolved.setdefault("users", {})[str(uid)] = self._user(uid)
                if guild_id is not None:
                    member = self._add_member_to(self.guilds[guild_id], uid)
                    resolved.setdefault("members", {})[str(uid)] = {
                        **{k: v for k, v in member.items() if k != "user"},
                        "permissions": str(self.permissions_for(guild_id, uid, channel_id)),
                    }
                value = str(uid)
            elif opt_type == _OPT_CHANNEL:
                cid = int(value)
                ch = self._channel(cid) or {}
                resolved.setdefault("channels", {})[str(cid)] = {
                    "id": str(cid),
                    "type": ch.get("type", CH_GUILD_TEXT),
                    "name": ch.get("name", ""),
                    "permissions": str(DEFAULT_MEMBER_PERMISSIONS),
                    **({"parent_id": ch["parent_id"]} if ch.get("parent_id") else {}),
                    **(
                        {"thread_metadata": ch["thread_metadata"]}
                        if "thread_metadata" in ch
                        else {}
                    ),
                }
                value = str(cid)
            elif opt_type == _OPT_ATTACHMENT:
                filename, data, ctype = value
                att = self._store_attachment(channel_id, filename, data, ctype)
                resolved.setdefault("attachments", {})[att["id"]] = att
                value = att["id"]
            elif opt_type == _OPT_STRING:
                value = str(value)
            out.append({"name": name, "type": opt_type, "value": value})
        return out

    async def slash_command(
        self,
        name: str,
        *,
        user_id: int,
        channel_id: int,
        guild_id: int | None = None,
        options: Mapping[str, Any] | None = None,
        member_permissions: int = DEFAULT_MEMBER_PERMISSIONS,
        context: int | None = None,
        locale: str = "en-US",
    ) -> FakeInteraction:
        """A user runs a chat-input command (INTERACTION_CREATE type 2).

        ``name`` may be ``"group sub"`` for subcommands. Option values are converted to the
        types the registered command declares (str/int/float/bool; user and channel ids;
        ``(filename, bytes, content_type)`` for attachments). ``guild_id`` defaults to the
        guild owning the channel; with none it is a DM (context 1).
        """
        self._require_sessions()
        if guild_id is None:
            guild_id = self._guild_id_of(channel_id)
        self._user(user_id)  # an unknown user fails here, before anything is sent
        parts = name.split()
        cmd, cmd_guild = self._resolve_command(parts[0], guild_id)
        if cmd is not None:
            cmd_id = int(cmd["id"])
        else:
            cmd_id = self._generated_command_ids.setdefault(parts[0], self._next_id())
        specs: list[dict[str, Any]] = list(cmd.get("options", [])) if cmd else []
        resolved: dict[str, dict[str, Any]] = {}
        # Walk down subcommand groups/subcommands.
        chain: list[tuple[str, int]] = []
        for sub in parts[1:]:
            spec = next((s for s in specs if s["name"] == sub), None)
            sub_type = int(spec["type"]) if spec else _OPT_SUB_COMMAND
            chain.append((sub, sub_type))
            specs = list(spec.get("options", [])) if spec else []
        leaf = self._build_options(options or {}, specs, resolved, channel_id, guild_id)
        for sub, sub_type in reversed(chain):
            leaf = [{"name": sub, "type": sub_type, "options": leaf}]

        data: dict[str, Any] = {"id": str(cmd_id), "name": parts[0], "type": 1}
        if leaf:
            data["options"] = leaf
        if resolved:
            data["resolved"] = resolved
        if cmd_guild is not None:
            data["guild_id"] = str(cmd_guild)

        return await self._send_interaction(
            data,
            user_id=user_id,
            channel_id=channel_id,
            guild_id=guild_id,
            member_permissions=member_permissions,
            context=context,
            locale=locale,
        )

    async def message_command(
        self,
        name: str,
        *,
        user_id: int,
        message_id: int,
        member_permissions: int = DEFAULT_MEMBER_PERMISSIONS,
        context: int | None = None,
        locale: str = "en-US",
    ) -> FakeInteraction:
        """A user picks the message command ``name`` (Apps menu) on message ``message_id``:
        INTERACTION_CREATE type 2 with ``data.type`` 3 (MESSAGE), ``target_id`` and the
        message in ``data.resolved.messages``, as Discord documents it. The interaction
        comes from the message's channel (a guild channel, or the user's DM, context 1)."""
        self._require_sessions()
        target = self._messages.get(message_id)
        if target is None or message_id in self._deleted:
            raise ValueError(f"unknown message {message_id}")
        channel_id = int(target["channel_id"])
        guild_id = self._guild_id_of(channel_id)
        cmd, cmd_guild = self._resolve_command(name, guild_id, command_type=3)
        cmd_id = int(cmd["id"]) if cmd is not None else self._next_id()
        message = copy.deepcopy(target)
        message.pop("referenced_message", None)
        data: dict[str, Any] = {
            "id": str(cmd_id),
            "name": name,
            "type": 3,
            "target_id": str(message_id),
            "resolved": {"messages": {str(message_id): message}},
        }
        if cmd_guild is not None:
            data["guild_id"] = str(cmd_guild)
        return await self._send_interaction(
            data,
            user_id=user_id,
            channel_id=channel_id,
            guild_id=guild_id,
            member_permissions=member_permissions,
            context=context,
            locale=locale,
        )

    async def _send_interaction(
        self,
        data: dict[str, Any],
        *,
        user_id: int,
        channel_id: int,
        guild_id: int | None,
        member_permissions: int,
        context: int | None,
        locale: str,
    ) -> FakeInteraction:
        """An application command interaction (type 2) carrying ``data``, from ``user_id`` in
        ``channel_id``: a guild channel, or (no guild) the user's DM with the bot."""
        user = self._user(user_id)
        interaction_id = self._interaction_snowflake()
        token = "aW50ZXJhY3Rpb24" + secrets.token_urlsafe(48)
        payload: dict[str, Any] = {
            "id": str(interaction_id),
            "application_id": str(self.application_id),
            "type": 2,
            "data": data,
            "token": token,
            "version": 1,
            "locale": locale,
            "entitlements": [],
            "attachment_size_limit": _ATTACHMENT_SIZE_LIMIT,
            "channel_id": str(channel_id),
        }
        if guild_id is not None:
            guild = self._guild(guild_id)
            channel = self._channel(channel_id)
            if channel is None or self._guild_id_of(channel_id) != guild_id:
                raise ValueError(f"unknown channel {channel_id} in guild {guild_id}")
            member = self._add_member_to(guild, user_id)
            payload.update(
                guild_id=str(guild_id),
                guild={"id": str(guild_id), "locale": "en-US", "features": []},
                guild_locale="en-US",
                member={
                    **copy.deepcopy(member),
                    "permissions": str(member_permissions),
                },
                channel={**copy.deepcopy(channel), "permissions": str(member_permissions)},
                app_permissions=str(self.permissions_for(guild_id, self.bot_id, channel_id)),
                authorizing_integration_owners={"0": str(guild_id)},
                context=0 if context is None else context,
            )
        else:
            dm = self.dm_channel_for(user_id, channel_id)
            if int(dm["id"]) != channel_id:
                raise ValueError(f"user {user_id} already has DM channel {dm['id']}")
            payload.update(
                user=user,
                channel=copy.deepcopy(dm),
                app_permissions=str(DEFAULT_BOT_PERMISSIONS),
                authorizing_integration_owners={"0": "0"},
                context=1 if context is None else context,
            )
        interaction = FakeInteraction(
            id=interaction_id,
            token=token,
            application_id=self.application_id,
            payload=payload,
            channel_id=channel_id,
            guild_id=guild_id,
            user_id=user_id,
            created=time.monotonic(),
            _fake=self,
        )
        self.interactions[interaction_id] = interaction
        self._interactions_by_token[token] = interaction
        await self._broadcast("INTERACTION_CREATE", payload, guild_id=guild_id)
        return interaction

    async def announce_guild(self, guild_id: int) -> None:
        """Send GUILD_CREATE for a guild added after the client connected (the bot joined)."""
        await self._broadcast("GUILD_CREATE", self._guild_create(guild_id), guild_id=guild_id)

    async def announce_channel(self, channel_id: int) -> None:
        """Send CHANNEL_CREATE for a channel added after the client connected."""
        channel = self.channels[channel_id]
        await self._broadcast(
            "CHANNEL_CREATE", copy.deepcopy(channel), guild_id=int(channel["guild_id"])
        )

    # ------------------------------------------------------------------ gateway: connection

    async def drop_gateway(self, *, code: int = 4000) -> None:
        """Close every gateway connection with ``code``; sessions stay resumable."""
        sockets = list(self._open_ws)
        for session in self._sessions.values():
            session.ws = None
        for ws in sockets:
            with contextlib.suppress(Exception):
                await ws.close(code=code, message=b"fake gateway drop")
        self._bump()

    async def invalidate_session(self) -> None:
        """Send op 9 (d=false) on every session; the client must IDENTIFY again."""
        for session in list(self._sessions.values()):
            session.valid = False
            ws = session.ws
            session.ws = None
            if ws is not None:
                with contextlib.suppress(Exception):
                    await self._send_frame(ws, {"op": 9, "d": False, "s": None, "t": None})
        self._sessions.clear()
        self._bump()

    async def request_reconnect(self) -> None:
        """Send op 7 RECONNECT on every connection; the client should close and RESUME."""
        for ws in list(self._open_ws):
            with contextlib.suppress(Exception):
                await self._send_frame(ws, {"op": 7, "d": None, "s": None, "t": None})

    @property
    def sessions(self) -> list[_Session]:
        return [s for s in self._sessions.values() if s.valid]

    def _ready_payload(self, session: _Session) -> dict[str, Any]:
        guild_ids = [gid for gid in self.guilds if session.wants_guild(gid)]
        ready: dict[str, Any] = {
            "v": 10,
            "user": {
                **self.bot_user,
                "verified": True,
                "mfa_enabled": False,
                "email": None,
            },
            "guilds": [{"id": str(gid), "unavailable": True} for gid in guild_ids],
            "session_id": session.session_id,
            "session_type": "normal",
            "resume_gateway_url": self.gateway_url,
            "application": {"id": str(self.application_id), "flags": _APP_FLAGS},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "guild_join_requests": [],
            "user_settings": {},
            "geo_ordered_rtc_regions": ["fake"],
            "auth": {},
            "_trace": ['["fake-gateway",{"micros":1}]'],
        }
        if session.shard is not None:
            ready["shard"] = list(session.shard)
        return ready

    def _guild_create(self, guild_id: int) -> dict[str, Any]:
        guild = self.guilds[guild_id]
        channels = []
        for cid in guild.channel_ids:
            ch = copy.deepcopy(self.channels[cid])
            ch.pop("guild_id", None)
            channels.append(ch)
        threads = [
            copy.deepcopy(t)
            for t in self.threads.values()
            if int(t["guild_id"]) == guild_id and not t["thread_metadata"]["archived"]
        ]
        return {
            "id": str(guild_id),
            "name": guild.name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": str(guild.owner_id),
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "roles": copy.deepcopy(guild.roles),
            "emojis": [],
            "stickers": [],
            "features": [],
            "mfa_level": 0,
            "application_id": None,
            "system_channel_id": str(guild.channel_ids[0]) if guild.channel_ids else None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "safety_alerts_channel_id": None,
            "vanity_url_code": None,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "premium_progress_bar_enabled": False,
            "preferred_locale": "en-US",
            "nsfw_level": 0,
            "max_members": 500000,
            "max_video_channel_users": 25,
            "joined_at": guild.joined_at,
            "large": False,
            "unavailable": False,
            "lazy": True,
            "member_count": len(guild.members),
            "members": copy.deepcopy(list(guild.members.values())),
            "channels": channels,
            "threads": threads,
            "voice_states": [],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
            "embedded_activities": [],
            "application_command_counts": {},
            "version": int(time.time() * 1000),
        }

    async def _gateway_handler(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(timeout=5.0, max_msg_size=0, compress=False)
        await ws.prepare(request)
        self._open_ws.add(ws)
        self.gateway_connections += 1
        session: _Session | None = None
        try:
            await self._send_frame(
                ws,
                {
                    "op": 10,
                    "d": {
                        "heartbeat_interval": self.heartbeat_interval_ms,
                        "_trace": ['["fake-gateway",{"micros":1}]'],
                    },
                    "s": None,
                    "t": None,
                },
            )
            async for msg in ws:
                if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                    continue
                try:
                    frame = json.loads(msg.data)
                except ValueError:
                    await ws.close(code=4002, message=b"Error while decoding payload.")
                    break
                self.gateway_received.append(frame)
                session = await self._handle_gateway_frame(ws, frame, session)
                self._bump()
        finally:
            self._open_ws.discard(ws)
            self._ws_locks.pop(id(ws), None)
            if session is not None and session.ws is ws:
                session.ws = None
            self._bump()
        return ws

    async def _handle_gateway_frame(
        self, ws: web.WebSocketResponse, frame: dict[str, Any], session: _Session | None
    ) -> _Session | None:
        op = frame.get("op")
        d = frame.get("d")
        if op == 1:
            self.heartbeat_count += 1
            await self._send_frame(ws, {"op": 11, "d": None, "s": None, "t": None})
        elif op == 2:
            return await self._identify(ws, d or {})
        elif op == 6:
            return await self._resume(ws, d or {})
        elif op == 3:
            self.presence_updates.append(d or {})
        elif op == 8 and session is not None:
            await self._request_members(session, d or {})
        return session

    async def _identify(self, ws: web.WebSocketResponse, d: dict[str, Any]) -> _Session | None:
        self.identify_count += 1
        self.identify_payloads.append(d)
        if self.identify_close_code is not None:
            await ws.close(code=self.identify_close_code, message=b"fake identify rejection")
            return None
        if self.expected_token is not None and d.get("token") != self.expected_token:
            await ws.close(code=4004, message=b"Authentication failed.")
            return None
        shard_raw = d.get("shard")
        shard: tuple[int, int] | None = None
        if shard_raw is not None:
            shard = (int(shard_raw[0]), int(shard_raw[1]))
            if shard[1] < 1 or not 0 <= shard[0] < shard[1]:
                await ws.close(code=4010, message=b"Invalid shard.")
                return None
        intents = int(d.get("intents", _ALL_INTENTS))
        if intents & PRIVILEGED_INTENTS & ~self.allowed_privileged_intents:
            await ws.close(code=4014, message=b"Disallowed intent(s).")
            return None
        session = _Session(session_id=uuid.uuid4().hex, shard=shard, intents=intents)
        async with session.lock:
            session.ws = ws
            self._sessions[session.session_id] = session
            await self._send_dispatch(session, "READY", self._ready_payload(session))
            for gid in self.guilds:
                if session.wants_guild(gid):
                    await self._send_dispatch(session, "GUILD_CREATE", self._guild_create(gid))
        return session

    async def _resume(self, ws: web.WebSocketResponse, d: dict[str, Any]) -> _Session | None:
        self.resume_payloads.append(d)
        session = self._sessions.get(str(d.get("session_id")))
        if session is None or not session.valid:
            await self._send_frame(ws, {"op": 9, "d": False, "s": None, "t": None})
            return None
        if self.expected_token is not None and d.get("token") != self.expected_token:
            await ws.close(code=4004, message=b"Authentication failed.")
            return None
        self.resume_count += 1
        last_seq = d.get("seq") or 0
        async with session.lock:
            old = session.ws
            session.ws = ws
            if old is not None and old is not ws:
                with contextlib.suppress(Exception):
                    await old.close(code=4000)
            for seq, text in list(session.buffer):
                if seq > last_seq:
                    await self._send_frame(ws, json.loads(text))
            await self._send_dispatch(session, "RESUMED", {"_trace": ['["fake-gateway"]']})
        return session

    async def _request_members(self, session: _Session, d: dict[str, Any]) -> None:
        guild = self.guilds.get(int(d.get("guild_id", 0)))
        members = list(guild.members.values()) if guild is not None else []
        user_ids = d.get("user_ids")
        if user_ids:
            wanted = {str(u) for u in user_ids}
            members = [m for m in members if m["user"]["id"] in wanted]
        query = d.get("query") or ""
        if query:
            members = [m for m in members if m["user"]["username"].startswith(query)]
        limit = d.get("limit") or 0
        if limit:
            members = members[:limit]
        chunk: dict[str, Any] = {
            "guild_id": str(d.get("guild_id")),
            "members": copy.deepcopy(members),
            "chunk_index": 0,
            "chunk_count": 1,
        }
        if d.get("nonce") is not None:
            chunk["nonce"] = d["nonce"]
        async with session.lock:
            await self._send_dispatch(session, "GUILD_MEMBERS_CHUNK", chunk)

    # ------------------------------------------------------------------ REST plumbing

    def _install_routes(self) -> None:
        snow = r"(?P<{}>\d+)"
        cid, mid, gid, app = (
            snow.format("cid"),
            snow.format("mid"),
            snow.format("gid"),
            snow.format("app"),
        )
        token = r"(?P<token>[^/]+)"
        table: list[tuple[str, str, _Handler]] = [
            ("GET", r"/users/@me", self._get_me),
            ("GET", rf"/users/{snow.format('uid')}", self._get_user),
            ("POST", r"/users/@me/channels", self._create_dm),
            ("GET", r"/oauth2/applications/@me", self._get_application),
            ("GET", r"/applications/@me", self._get_application),
            ("GET", r"/gateway", self._get_gateway),
            ("GET", r"/gateway/bot", self._get_gateway_bot),
            ("GET", rf"/channels/{cid}", self._get_channel),
            ("GET", rf"/channels/{cid}/messages", self._get_history),
            ("POST", rf"/channels/{cid}/messages", self._post_message),
            ("GET", rf"/channels/{cid}/messages/{mid}", self._get_message),
            ("PATCH", rf"/channels/{cid}/messages/{mid}", self._patch_message),
            ("DELETE", rf"/channels/{cid}/messages/{mid}", self._delete_message),
            ("POST", rf"/channels/{cid}/typing", self._typing),
            (
                "PUT",
                rf"/channels/{cid}/messages/{mid}/reactions/(?P<emoji>[^/]+)/@me",
                self._add_reaction,
            ),
            (
                "DELETE",
                rf"/channels/{cid}/messages/{mid}/reactions/(?P<emoji>[^/]+)/@me",
                self._remove_reaction,
            ),
            ("POST", rf"/channels/{cid}/messages/{mid}/threads", self._thread_from_message),
            ("POST", rf"/channels/{cid}/threads", self._thread_without_message),
            ("PUT", rf"/channels/{cid}/thread-members/@me", self._no_content),
            ("DELETE", rf"/channels/{cid}/thread-members/@me", self._no_content),
            ("GET", rf"/guilds/{gid}", self._get_guild),
            ("GET", rf"/guilds/{gid}/channels", self._get_guild_channels),
            ("GET", rf"/guilds/{gid}/members/{snow.format('uid')}", self._get_member),
            (
                "POST",
                rf"/interactions/{snow.format('iid')}/{token}/callback",
                self._interaction_callback,
            ),
            (
                "GET",
                rf"/webhooks/{app}/{token}/messages/(?P<mid>@original|\d+)",
                self._get_webhook_message,
            ),
            (
                "PATCH",
                rf"/webhooks/{app}/{token}/messages/(?P<mid>@original|\d+)",
                self._patch_webhook_message,
            ),
            (
                "DELETE",
                rf"/webhooks/{app}/{token}/messages/(?P<mid>@original|\d+)",
                self._delete_webhook_message,
            ),
            ("POST", rf"/webhooks/{app}/{token}", self._execute_webhook),
            ("GET", rf"/applications/{app}/commands", self._get_commands),
            ("PUT", rf"/applications/{app}/commands", self._put_commands),
            ("POST", rf"/applications/{app}/commands", self._post_command),
            ("GET", rf"/applications/{app}/commands/{snow.format('cmd')}", self._get_command),
            ("PATCH", rf"/applications/{app}/commands/{snow.format('cmd')}", self._patch_command),
            ("DELETE", rf"/applications/{app}/commands/{snow.format('cmd')}", self._delete_command),
            ("GET", rf"/applications/{app}/guilds/{gid}/commands", self._get_commands),
            ("PUT", rf"/applications/{app}/guilds/{gid}/commands", self._put_commands),
            ("POST", rf"/applications/{app}/guilds/{gid}/commands", self._post_command),
            (
                "GET",
                rf"/applications/{app}/guilds/{gid}/commands/{snow.format('cmd')}",
                self._get_command,
            ),
            (
                "PATCH",
                rf"/applications/{app}/guilds/{gid}/commands/{snow.format('cmd')}",
                self._patch_command,
            ),
            (
                "DELETE",
                rf"/applications/{app}/guilds/{gid}/commands/{snow.format('cmd')}",
                self._delete_command,
            ),
        ]
        self._routes = [(m, re.compile(p), h) for m, p, h in table]

    @staticmethod
    async def _read_body(
        request: web.Request,
    ) -> tuple[Any | None, list[tuple[str, bytes, str]], dict[str, str]]:
        files: list[tuple[str, bytes, str]] = []
        form: dict[str, str] = {}
        body: Any | None = None
        if request.content_type.startswith("multipart/"):
            reader = await request.multipart()
            async for part in reader:
                if not isinstance(part, BodyPartReader):
                    continue
                if part.filename is not None:
                    data = bytes(await part.read(decode=False))
                    ctype = part.headers.get("Content-Type", "application/octet-stream")
                    files.append((part.filename, data, ctype))
                elif part.name == "payload_json":
                    body = json.loads(await part.text())
                elif part.name is not None:
                    form[part.name] = await part.text()
        elif request.can_read_body:
            raw = await request.read()
            if raw:
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = raw.decode("utf-8", "replace")
        return body, files, form

    @staticmethod
    def _json_response(
        status: int, payload: Any, headers: Mapping[str, str] | None = None
    ) -> web.Response:
        hdrs = dict(headers or {})
        if payload is None or status == 204:
            return web.Response(status=status, headers=hdrs)
        hdrs["Content-Type"] = "application/json"  # exactly; discord.py compares the string
        return web.Response(status=status, body=json.dumps(payload).encode(), headers=hdrs)

    def _authorized(self, path: str, headers: Mapping[str, str]) -> bool:
        if self.expected_token is None or path.startswith(("/webhooks/", "/interactions/")):
            return True
        return headers.get("Authorization") == f"Bot {self.expected_token}"

    async def _rest_handler(self, request: web.Request) -> web.Response:
        path = "/" + request.match_info["tail"]
        body, files, form = await self._read_body(request)
        rec = RecordedRequest(
            method=request.method,
            path=path,
            query=dict(request.query),
            json=body,
            files=files,
            headers=dict(request.headers),
            form=form,
        )
        extra: dict[str, str] = {}
        fault = self._take_fault(rec.method, path)
        if fault is not None:
            rec.status, rec.response, extra = self._fault_response(fault)
            rec.injected = True
        elif not self._authorized(path, rec.headers):
            rec.status, rec.response = 401, {"message": "401: Unauthorized", "code": 0}
        else:
            rec.status, rec.response = await self._route(rec)
        self.requests.append(rec)
        self._bump()
        return self._json_response(rec.status, rec.response, extra)

    async def _route(self, rec: RecordedRequest) -> tuple[int, Any]:
        path_matched = False
        for method, pattern, handler in self._routes:
            match = pattern.fullmatch(rec.path)
            if match is None:
                continue
            path_matched = True
            if method != rec.method:
                continue
            try:
                return await handler(rec, match.groupdict())
            except _ApiError as exc:
                return exc.status, exc.body
            except Exception as exc:  # noqa: BLE001 - a fake bug: answer loudly, never hang
                _log.exception("fake discord handler crashed on %s %s", rec.method, rec.path)
                self.handler_errors.append(exc)
                return 503, {"message": f"fake discord crashed: {exc!r}", "code": 0}
        self.unknown_requests.append(rec)
        if path_matched:
            return 405, {"message": "405: Method Not Allowed", "code": 0}
        _log.warning("fake discord: unknown route %s %s", rec.method, rec.path)
        return 404, {"message": "404: Not Found", "code": 0}

    def hold_downloads(self, filename: str) -> asyncio.Event:
        """Hold every download of an attachment named ``filename`` until the returned event
        is set; ``downloads_held`` counts the downloads waiting at the gate."""
        gate = asyncio.Event()
        self._download_gates[filename] = gate
        return gate

    async def _attachment_handler(self, request: web.Request) -> web.Response:
        gate = self._download_gates.get(request.match_info["filename"])
        if gate is not None and not gate.is_set():
            self.downloads_held += 1
            self._bump()
            try:
                await gate.wait()
            finally:
                self.downloads_held -= 1
        self.downloads_served += 1
        try:
            data, ctype = self._attachments[int(request.match_info["att_id"])]
        except (KeyError, ValueError):
            return web.Response(status=404)
        return web.Response(body=data, headers={"Content-Type": ctype})

    # ------------------------------------------------------------------ messages

    def _new_message(
        self,
        channel_id: int,
        author: dict[str, Any],
        content: str,
        *,
        mentions: list[dict[str, Any]] | None = None,
        msg_type: int = MSG_DEFAULT,
        flags: int = 0,
    ) -> dict[str, Any]:
        mid = self._next_id()
        return {
            "id": str(mid),
            "channel_id": str(channel_id),
            "author": copy.deepcopy(author),
            "content": content,
            "timestamp": _snowflake_time_iso(mid),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": copy.deepcopy(mentions or []),
            "mention_roles": [],
            "attachments": [],
            "embeds": [],
            "reactions": [],
            "pinned": False,
            "type": msg_type,
            "flags": flags,
            "components": [],
        }

    def _store_message(self, msg: dict[str, Any]) -> None:
        mid = int(msg["id"])
        cid = int(msg["channel_id"])
        self._messages[mid] = msg
        self._channel_messages.setdefault(cid, []).append(mid)
        channel = self._channel(cid)
        if channel is not None:
            channel["last_message_id"] = msg["id"]
            if cid in self.threads:
                channel["message_count"] += 1
                channel["total_message_sent"] += 1

    def _store_attachment(
        self, channel_id: int, filename: str, data: bytes, content_type: str | None
    ) -> dict[str, Any]:
        att_id = self._next_id()
        ctype = content_type
        if not ctype or ctype == "application/octet-stream":
            ctype = mimetypes.guess_type(filename)[0] or "application/octet-stream"
        self._attachments[att_id] = (data, ctype)
        url = f"http://127.0.0.1:{self.port}/attachments/{channel_id}/{att_id}/{filename}"
        return {
            "id": str(att_id),
            "filename": filename,
            "size": len(data),
            "url": url,
            "proxy_url": url,
            "content_type": ctype,
        }

    def _make_reply(
        self, msg: dict[str, Any], ref: dict[str, Any], *, mention_author: bool
    ) -> None:
        msg["type"] = MSG_REPLY
        reference: dict[str, Any] = {
            "type": 0,
            "message_id": ref["id"],
            "channel_id": ref["channel_id"],
        }
        guild_id = self._guild_id_of(int(ref["channel_id"]))
        if guild_id is not None:
            reference["guild_id"] = str(guild_id)
        msg["message_reference"] = reference
        referenced = copy.deepcopy(ref)
        referenced.pop("referenced_message", None)
        msg["referenced_message"] = referenced
        if mention_author and all(m["id"] != ref["author"]["id"] for m in msg["mentions"]):
            msg["mentions"].append(copy.deepcopy(ref["author"]))

    @staticmethod
    def _validate_message_body(body: dict[str, Any], *, has_files: bool, partial: bool) -> None:
        content = body.get("content")
        if content is not None and not isinstance(content, str):
            raise _form_error("content", "BASE_TYPE_STRING", "Must be a string.")
        if content is not None and len(content) > 2000:
            raise _form_error("content", "BASE_TYPE_MAX_LENGTH", "Must be 2000 or fewer in length.")
        embeds = body.get("embeds") or []
        if len(embeds) > 10:
            raise _form_error("embeds", "BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length.")
        total = 0
        limits = {"title": 256, "description": 4096}
        for i, embed in enumerate(embeds):
            for key, limit in limits.items():
                value = embed.get(key) or ""
                total += len(value)
                if len(value) > limit:
                    raise _form_error(
                        f"embeds.{i}.{key}",
                        "BASE_TYPE_MAX_LENGTH",
                        f"Must be {limit} or fewer in length.",
                    )
            fields = embed.get("fields") or []
            if len(fields) > 25:
                raise _form_error(
                    f"embeds.{i}.fields", "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length."
                )
            for j, fld in enumerate(fields):
                total += len(fld.get("name", "")) + len(fld.get("value", ""))
                if len(fld.get("name", "")) > 256 or len(fld.get("value", "")) > 1024:
                    raise _form_error(
                        f"embeds.{i}.fields.{j}", "BASE_TYPE_MAX_LENGTH", "Field too long."
                    )
            total += len((embed.get("footer") or {}).get("text", ""))
            total += len((embed.get("author") or {}).get("name", ""))
        if total > 6000:
            raise _form_error(
                "embeds", "MAX_EMBED_SIZE_EXCEEDED", "Embed size exceeds maximum size of 6000"
            )
        FakeDiscord._validate_attachments(body)
        if partial:
            return
        if not (
            content
            or embeds
            or has_files
            or body.get("sticker_ids")
            or body.get("components")
            or body.get("poll")
        ):
            raise _ApiError(400, 50006, "Cannot send an empty message")

    @staticmethod
    def _validate_attachments(body: dict[str, Any]) -> None:
        """Attachment metadata: a description (alt text) has at most 1,024 characters."""
        for i, meta in enumerate(body.get("attachments") or []):
            description = meta.get("description")
            if description is not None and len(description) > _ATTACHMENT_DESCRIPTION_LIMIT:
                raise _form_error(
                    f"attachments.{i}.description",
                    "BASE_TYPE_MAX_LENGTH",
                    f"Must be {_ATTACHMENT_DESCRIPTION_LIMIT} or fewer in length.",
                )

    def _mentions_for(
        self, body: dict[str, Any], content: str
    ) -> tuple[list[dict[str, Any]], bool]:
        allowed = body.get("allowed_mentions")
        ids = [int(m) for m in dict.fromkeys(_USER_MENTION_RE.findall(content))]
        if allowed is not None:
            parse = allowed.get("parse") or []
            if "users" not in parse:
                explicit = {int(u) for u in allowed.get("users") or []}
                ids = [i for i in ids if i in explicit]
        mentions = [copy.deepcopy(self.users[i]) for i in ids if i in self.users]
        everyone = "@everyone" in content or "@here" in content
        if allowed is not None and "everyone" not in (allowed.get("parse") or []):
            everyone = False
        return mentions, everyone

    def _apply_message_body(
        self,
        msg: dict[str, Any],
        body: dict[str, Any],
        files: Sequence[tuple[str, bytes, str]],
        *,
        editing: bool,
        allow_ephemeral: bool = False,
    ) -> None:
        if "content" in body:
            msg["content"] = body["content"] or ""
            mentions, everyone = self._mentions_for(body, msg["content"])
            ref = msg.get("referenced_message")
            if ref is not None:  # keep the replied-to author's mention, if it was made
                author_id = ref["author"]["id"]
                had = any(m["id"] == author_id for m in msg["mentions"])
                if had and all(m["id"] != author_id for m in mentions):
                    mentions.append(copy.deepcopy(ref["author"]))
            msg["mentions"] = mentions
            msg["mention_everyone"] = everyone
        if "embeds" in body:
            msg["embeds"] = copy.deepcopy(body["embeds"] or [])
            for embed in msg["embeds"]:
                embed.setdefault("type", "rich")
        if "components" in body:
            msg["components"] = copy.deepcopy(body["components"] or [])
        if body.get("tts") is not None:
            msg["tts"] = bool(body["tts"])
        if "flags" in body and body["flags"] is not None:
            keep = msg["flags"] & (MSG_FLAG_EPHEMERAL | MSG_FLAG_HAS_THREAD)
            settable = 4 | 4096  # SUPPRESS_EMBEDS, SUPPRESS_NOTIFICATIONS
            if allow_ephemeral and not editing:
                settable |= MSG_FLAG_EPHEMERAL
            msg["flags"] = (
                keep | (int(body["flags"]) & settable) | (msg["flags"] & MSG_FLAG_LOADING)
            )
        if body.get("poll"):
            msg["poll"] = copy.deepcopy(body["poll"])
        cid = int(msg["channel_id"])
        new_atts: list[dict[str, Any]] = []
        meta = {str(a.get("id")): a for a in body.get("attachments") or []}
        for index, (filename, data, ctype) in enumerate(files):
            info = meta.get(str(index), {})
            att = self._store_attachment(cid, info.get("filename") or filename, data, ctype)
            if info.get("description"):
                att["description"] = info["description"]
            if msg["flags"] & MSG_FLAG_EPHEMERAL:
                att["ephemeral"] = True
            new_atts.append(att)
        if editing and "attachments" in body:
            keep_ids = {str(a.get("id")) for a in body["attachments"] or []}
            msg["attachments"] = [a for a in msg["attachments"] if a["id"] in keep_ids] + new_atts
        else:
            msg["attachments"] = msg["attachments"] + new_atts

    def _create_bot_message(
        self,
        channel_id: int,
        body: dict[str, Any],
        files: Sequence[tuple[str, bytes, str]],
        *,
        interaction: FakeInteraction | None = None,
        flags: int = 0,
    ) -> dict[str, Any]:
        msg = self._new_message(
            channel_id,
            self.bot_user,
            "",
            msg_type=MSG_CHAT_INPUT_COMMAND if interaction is not None else MSG_DEFAULT,
            flags=flags,
        )
        if interaction is not None:
            self._add_interaction_metadata(msg, interaction)
        self._apply_message_body(
            msg, body, files, editing=False, allow_ephemeral=interaction is not None
        )
        ref = body.get("message_reference")
        if ref and ref.get("message_id") is not None:
            target = self._messages.get(int(ref["message_id"]))
            if target is None or int(ref["message_id"]) in self._deleted:
                if ref.get("fail_if_not_exists", True):
                    raise _form_error(
                        "message_reference", "MESSAGE_REFERENCE_UNKNOWN_MESSAGE", "Unknown message"
                    )
            else:
                allowed = body.get("allowed_mentions") or {}
                self._make_reply(msg, target, mention_author=allowed.get("replied_user", True))
        if body.get("nonce") is not None:
            msg["nonce"] = body["nonce"]
        self._store_message(msg)
        return msg

    def _add_interaction_metadata(self, msg: dict[str, Any], interaction: FakeInteraction) -> None:
        user = self._user(interaction.user_id)
        owners = interaction.payload.get("authorizing_integration_owners", {})
        msg["webhook_id"] = str(self.application_id)
        msg["application_id"] = str(self.application_id)
        name = interaction.payload.get("data", {}).get("name", "")
        msg["interaction"] = {
            "id": str(interaction.id),
            "type": interaction.payload["type"],
            "name": name,
            "user": copy.deepcopy(user),
        }
        metadata: dict[str, Any] = {
            "id": str(interaction.id),
            "type": interaction.payload["type"],
            "user": copy.deepcopy(user),
            "authorizing_integration_owners": copy.deepcopy(owners),
        }
        if interaction.original_message_id is not None:
            metadata["original_response_message_id"] = str(interaction.original_message_id)
        msg["interaction_metadata"] = metadata

    def _channel_or_404(self, channel_id: int) -> dict[str, Any]:
        channel = self._channel(channel_id)
        if channel is None:
            raise _ApiError(404, 10003, "Unknown Channel")
        return channel

    def _message_or_404(self, channel_id: int, message_id: int) -> dict[str, Any]:
        msg = self._messages.get(message_id)
        if msg is None or message_id in self._deleted or int(msg["channel_id"]) != channel_id:
            raise _ApiError(404, 10008, "Unknown Message")
        return msg

    def _check_can_send(self, channel_id: int, channel: dict[str, Any], has_files: bool) -> None:
        if channel.get("type") == CH_DM:
            recipient = int(channel["recipients"][0]["id"])
            if recipient in self.dm_blocked_users:
                raise _ApiError(403, 50007, "Cannot send messages to this user")
            return
        needed = SEND_MESSAGES_IN_THREADS if channel.get("type") in _THREAD_TYPES else SEND_MESSAGES
        if has_files:
            needed |= ATTACH_FILES
        self._require_bot_perms(channel_id, needed)
        if channel.get("thread_metadata", {}).get("locked"):
            raise _ApiError(403, 50083, "Thread is archived")

    # ------------------------------------------------------------------ REST handlers

    async def _no_content(self, rec: RecordedRequest, p: dict[str, str]) -> tuple[int, Any]:
        return 204, None

    async def _get_me(self, rec: RecordedRequest, p: dict[str, str]) -> tuple[int, Any]:
        return 200, {
            **copy.deepcopy(self.bot_user),
            "mfa_enabled": False,
            "locale": "en-US",
            "verified": True,
            "email": None,
            "premium_type": 0,
        }

    async def _get_user(self, rec: RecordedRequest, p: dict[str, str]) -> tuple[int, Any]:
        user = self.users.get(int(p["uid"]))
        if user is None:
            raise _ApiError(404, 10013, "Unknown User")
        return 200, copy.deepcopy(user)

    async def _get_application(self, rec: RecordedRequest, p: dict[str, str]) -> tuple[int, Any]:
        owner = self._user(self.owner_user_id)
        return 200, {
            "id": str(self.application_id),
            "name": self.bot_name,
            "icon": None,
            "description": "",
            "summary": "",
            "type": None,
            "bot": copy.deepcopy(self.bot_user),
            "bot_public": True,
            "bot_require_code_grant": False,
            "verify_key": "0" * 64,
            "flags": self._app_flags(),
            "flags_new": str(self._app_flags()),
            "redirect_uris": [],
            "interactions_endpoint_url": None,
            "role_connections_verification_url": None,
            "owner": copy.deepcopy(owner),
            "team": None,
            "approximate_guild_count": len(self.guilds),
            "approximate_user_install_count": 0,
            "approximate_user_authorization_count": 0,
            "explicit_content_filter": 0,
            "eligible_oauth2_scopes": ["bot", "applications.commands"],
            "rpc_origins": [],
            "tags": [],
            "install_params": {"scopes": ["bot", "applications.commands"], "permissions": "0"},
            "integration_types_config": {"0": {}},
        }

    def _app_flags(self) -> int:
        """`_APP_FLAGS` without the flags of intents turned off (`allowed_privileged_intents`)."""
        off = [f for i, f in _INTENT_FLAGS.items() if not i & self.allowed_privileged_intents]
        return _APP_FLAGS & ~sum(off)

    async def _get_gateway(self, rec: RecordedRequest, p: dict[str, str]) -> tuple[int, Any]:
        return 200, {"url": self.gateway_url}

    async def _get_gateway_bot(self, rec: RecordedRequest, p: dict[str, str]) -> tuple[int, Any]:
        return 200, {
            "url": self.gateway_url,
            "shards": self.shards,
            "session_start_limit": {
                "total": 1000,
                "remaining": 1000 - self.identify_count,
                "reset_after": 86_400_000,
                "max_concurrency": 1,
            },
        }

    async def _get_channel(self, rec: RecordedRequest, p: dict[str, str]) -> tuple[int, Any]:
        return 200, copy.deepcopy(self._channel_or_404(int(p["cid"])))

    async def _get_guild(self, rec: RecordedRequest, p: dict[str, str]) -> tuple[int, Any]:
        gid = int(p["gid"])
        if gid not in self.guilds:
            raise _ApiError(404, 10004, "Unknown Guild")
        data = self._guild_create(gid)
        for key in (
            "members",
            "channels",
            "threads",
            "voice_states",
            "presences",
            "joined_at",
            "large",
            "unavailable",
            "member_count",
            "lazy",
        ):
            data.pop(key, None)
        return 200, data

    async def _get_guild_channels(self, rec: RecordedRequest, p: dict[str, str]) -> tuple[int, Any]:
        gid = int(p["gid"])
        if gid not in self.guilds:
            raise _ApiError(404, 10004, "Unknown Guild")
        return 200, [copy.deepcopy(self.channels[c]) for c in self.guilds[gid].channel_ids]

    async def _get_member(self, rec: RecordedRequest, p: dict[str, str]) -> tuple[int, Any]:
        guild = self.guilds.get(int(p["gid"]))
        if guild is None:
            raise _ApiError(404, 10004, "Unknown Guild")
        member = guild.members.get(int(p["uid"]))
        if member is None:
            raise _ApiError(404, 10007, "Unknown Member")
        return 200, copy.deepcopy(member)

    async def _create_dm(self, rec: RecordedRequest, p: dict[str, str]) -> tuple[int, Any]:
        body = rec.json or {}
        if body.get("recipient_id") is None:
            raise _form_error("recipient_id", "BASE_TYPE_REQUIRED", "This field is required")
        uid = int(body["recipient_id"])
        if uid not in self.users:
            raise _ApiError(400, 50033, "Invalid Recipient(s)")
        return 200, copy.deepcopy(self.dm_channel_for(uid))

    async def _get_history(self, rec: RecordedRequest, p: dict[str, str]) -> tuple[int, Any]:
        cid = int(p["cid"])
        self._channel_or_404(cid)
        self._require_bot_perms(cid, READ_MESSAGE_HISTORY)
        limit = max(1, min(100, int(rec.query.get("limit", 50))))
        ids = [m for m in self._channel_messages.get(cid, []) if m not in self._deleted]
        if "before" in rec.query:
            ids = [m for m in ids if m < int(rec.query["before"])]
            ids = ids[-limit:]
        elif "after" in rec.query:
            ids = [m for m in ids if m > int(rec.query["after"])]
            ids = ids[:limit]
        elif "around" in rec.query:
            around = int(rec.query["around"])
            older = [m for m in ids if m <= around][-((limit + 1) // 2) :]
            newer = [m for m in ids if m > around][: limit // 2]
            ids = older + newer
        else:
            ids = ids[-limit:]
        return 200, [copy.deepcopy(self._messages[m]) for m in reversed(ids)]

    async def _post_message(self, rec: RecordedRequest, p: dict[str, str]) -> tuple[int, Any]:
        cid = int(p["cid"])
        channel = self._channel_or_404(cid)
        body = rec.json if isinstance(rec.json, dict) else {}
        self._check_can_send(cid, channel, bool(rec.files))
        self._validate_message_body(body, has_files=bool(rec.files), partial=False)
        msg = self._create_bot_message(cid, body, rec.files)
        await self._echo_bot_message("MESSAGE_CREATE", msg)
        return 200, copy.deepcopy(msg)

    async def _get_message(self, rec: RecordedRequest, p: dict[str, str]) -> tuple[int, Any]:
        cid = int(p["cid"])
        self._channel_or_404(cid)
        self._require_bot_perms(cid, READ_MESSAGE_HISTORY)
        return 200, copy.deepcopy(self._message_or_404(cid, int(p["mid"])))

    def _edit(self, msg: dict[str, Any], rec: RecordedRequest) -> bool:
        """Apply a PATCH body; returns True when it filled a loading placeholder."""
        body = rec.json if isinstance(rec.json, dict) else {}
        self._validate_message_body(body, has_files=bool(rec.files), partial=True)
        was_loading = bool(msg["flags"] & MSG_FLAG_LOADING)
        self._apply_message_body(msg, body, rec.files, editing=True)
        if was_loading:
            msg["flags"] &= ~MSG_FLAG_LOADING
        else:
            msg["edited_timestamp"] = _now_iso()
        if not (
            msg["content"]
            or msg["embeds"]
            or msg["attachments"]
            or msg["components"]
            or msg.get("poll")
        ):
            raise _ApiError(400, 50006, "Cannot send an empty message")
        return was_loading

    async def _patch_message(self, rec: RecordedRequest, p: dict[str, str]) -> tuple[int, Any]:
        cid = int(p["cid"])
        self._channel_or_404(cid)
        msg = self._message_or_404(cid, int(p["mid"]))
        if int(msg["author"]["id"]) != self.bot_id:
            raise _ApiError(403, 50005, "Cannot edit a message authored by another user")
        backup = copy.deepcopy(msg)
        try:
            self._edit(msg, rec)
        except _ApiError:
            msg.clear()
            msg.update(backup)
            raise
        await self._echo_bot_message("MESSAGE_UPDATE", msg)
        return 200, copy.deepcopy(msg)

    async def _delete_message(self, rec: RecordedRequest, p: dict[str, str]) -> tuple[int, Any]:
        cid = int(p["cid"])
        channel = self._channel_or_404(cid)
        msg = self._message_or_404(cid, int(p["mid"]))
        if int(msg["author"]["id"]) != self.bot_id:
            if channel.get("type") == CH_DM:
                raise _ApiError(403, 50003, "Cannot execute action on a DM channel")
            self._require_bot_perms(cid, MANAGE_MESSAGES)
        self._deleted.add(int(msg["id"]))
        await self._echo_bot_delete(msg)
        return 204, None

    async def _typing(self, rec: RecordedRequest, p: dict[str, str]) -> tuple[int, Any]:
        self._channel_or_404(int(p["cid"]))
        return 204, None

    async def _add_reaction(self, rec: RecordedRequest, p: dict[str, str]) -> tuple[int, Any]:
        cid = int(p["cid"])
        self._channel_or_404(cid)
        msg = self._message_or_404(cid, int(p["mid"]))
        self._require_bot_perms(cid, ADD_REACTIONS | READ_MESSAGE_HISTORY)
        name, _, emoji_id = p["emoji"].partition(":")
        for reaction in msg["reactions"]:
            if reaction["emoji"]["name"] == name:
                if not reaction["me"]:
                    reaction["me"] = True
                    reaction["count"] += 1
                    reaction["count_details"]["normal"] += 1
                return 204, None
        msg["reactions"].append(
            {
                "count": 1,
                "count_details": {"burst": 0, "normal": 1},
                "me": True,
                "me_burst": False,
                "burst_colors": [],
                "emoji": {"id": emoji_id or None, "name": name},
            }
        )
        return 204, None

    async def _remove_reaction(self, rec: RecordedRequest, p: dict[str, str]) -> tuple[int, Any]:
        cid = int(p["cid"])
        msg = self._message_or_404(cid, int(p["mid"]))
        name = p["emoji"].partition(":")[0]
        for reaction in list(msg["reactions"]):
            if reaction["emoji"]["name"] == name and reaction["me"]:
                reaction["me"] = False
                reaction["count"] -= 1
                reaction["count_details"]["normal"] -= 1
                if reaction["count"] <= 0:
                    msg["reactions"].remove(reaction)
        return 204, None

    # ------------------------------------------------------------------ threads

    def _thread_payload(
        self,
        thread_id: int,
        parent: dict[str, Any],
        *,
        name: str,
        owner_id: int,
        thread_type: int,
        auto_archive_duration: int,
        rate_limit_per_user: int,
        invitable: bool | None = None,
    ) -> dict[str, Any]:
        now = _now_iso()
        metadata: dict[str, Any] = {
            "archived": False,
            "archive_timestamp": now,
            "auto_archive_duration": auto_archive_duration,
            "locked": False,
            "create_timestamp": now,
        }
        if thread_type == CH_PRIVATE_THREAD:
            metadata["invitable"] = True if invitable is None else invitable
        thread: dict[str, Any] = {
            "id": str(thread_id),
            "type": thread_type,
            "guild_id": parent["guild_id"],
            "parent_id": parent["id"],
            "owner_id": str(owner_id),
            "name": name,
            "last_message_id": None,
            "last_pin_timestamp": None,
            "rate_limit_per_user": rate_limit_per_user,
            "message_count": 0,
            "member_count": 1,
            "total_message_sent": 0,
            "flags": 0,
            "applied_tags": [],
            "thread_metadata": metadata,
        }
        if owner_id == self.bot_id:
            thread["member"] = {
                "id": str(thread_id),
                "user_id": str(self.bot_id),
                "join_timestamp": now,
                "flags": 1,
            }
        return thread

    def _thread_params(self, body: dict[str, Any], parent: dict[str, Any]) -> tuple[str, int, int]:
        name = body.get("name")
        if not isinstance(name, str) or not 1 <= len(name) <= 100:
            raise _form_error(
                "name", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length."
            )
        duration = body.get("auto_archive_duration")
        if duration is None:
            duration = parent.get("default_auto_archive_duration", 4320)
        if duration not in _ARCHIVE_DURATIONS:
            raise _form_error(
                "auto_archive_duration",
                "BASE_TYPE_CHOICES",
                "Value must be one of (60, 1440, 4320, 10080).",
            )
        return name, int(duration), int(body.get("rate_limit_per_user") or 0)

    async def _announce_thread(self, thread: dict[str, Any]) -> None:
        event = {**copy.deepcopy(thread), "newly_created": True}
        await self._broadcast(
            "THREAD_CREATE", event, guild_id=int(thread["guild_id"]), intent=INTENT_GUILDS
        )

    async def _thread_from_message(
        self, rec: RecordedRequest, p: dict[str, str]
    ) -> tuple[int, Any]:
        cid, mid = int(p["cid"]), int(p["mid"])
        parent = self._channel_or_404(cid)
        if parent.get("type") not in (CH_GUILD_TEXT, CH_ANNOUNCEMENT):
            raise _ApiError(400, 50024, "Cannot execute action on this channel type")
        msg = self._message_or_404(cid, mid)
        self._require_bot_perms(cid, CREATE_PUBLIC_THREADS | READ_MESSAGE_HISTORY)
        if cid in self._no_threads:
            raise _missing_permissions()
        if mid in self.threads or msg.get("thread"):
            raise _ApiError(400, 160004, "A thread has already been created for this message")
        name, duration, slowmode = self._thread_params(rec.json or {}, parent)
        thread_type = (
            CH_ANNOUNCEMENT_THREAD if parent["type"] == CH_ANNOUNCEMENT else CH_PUBLIC_THREAD
        )
        thread = self._thread_payload(
            mid,
            parent,
            name=name,
            owner_id=self.bot_id,
            thread_type=thread_type,
            auto_archive_duration=duration,
            rate_limit_per_user=slowmode,
        )
        self.threads[mid] = thread
        msg["thread"] = copy.deepcopy(thread)
        msg["flags"] |= MSG_FLAG_HAS_THREAD
        await self._announce_thread(thread)
        return 201, copy.deepcopy(thread)

    async def _thread_without_message(
        self, rec: RecordedRequest, p: dict[str, str]
    ) -> tuple[int, Any]:
        cid = int(p["cid"])
        parent = self._channel_or_404(cid)
        if parent.get("type") not in (CH_GUILD_TEXT, CH_ANNOUNCEMENT):
            raise _ApiError(400, 50024, "Cannot execute action on this channel type")
        body = rec.json or {}
        thread_type = int(body.get("type") or CH_PRIVATE_THREAD)
        if thread_type not in _THREAD_TYPES:
            raise _form_error("type", "BASE_TYPE_CHOICES", "Value must be one of (10, 11, 12).")
        needed = (
            CREATE_PRIVATE_THREADS if thread_type == CH_PRIVATE_THREAD else CREATE_PUBLIC_THREADS
        )
        self._require_bot_perms(cid, needed)
        if cid in self._no_threads:
            raise _missing_permissions()
        name, duration, slowmode = self._thread_params(body, parent)
        thread = self._thread_payload(
            self._next_id(),
            parent,
            name=name,
            owner_id=self.bot_id,
            thread_type=thread_type,
            auto_archive_duration=duration,
            rate_limit_per_user=slowmode,
            invitable=body.get("invitable"),
        )
        self.threads[int(thread["id"])] = thread
        await self._announce_thread(thread)
        return 201, copy.deepcopy(thread)

    # ------------------------------------------------------------------ interactions

    def _interaction_snowflake(self) -> int:
        """A new interaction's id, from `interaction_age` seconds ago (unique all the same)."""
        return self._next_id() - (int(self.interaction_age * 1000) << 22)

    @staticmethod
    def _check_token_alive(interaction: FakeInteraction) -> None:
        """Discord refuses an interaction token 15 minutes after the interaction was created."""
        created_ms = (interaction.id >> 22) + DISCORD_EPOCH_MS
        if time.time() * 1000 - created_ms > INTERACTION_TOKEN_SECONDS * 1000:
            raise _ApiError(401, 50027, "Invalid Webhook Token")

    def _interaction_for_webhook(self, p: dict[str, str]) -> FakeInteraction:
        interaction = self._interactions_by_token.get(p["token"])
        if interaction is not None:
            self._check_token_alive(interaction)
        if interaction is None or int(p["app"]) != self.application_id:
            raise _ApiError(404, 10015, "Unknown Webhook")
        return interaction

    async def _interaction_callback(
        self, rec: RecordedRequest, p: dict[str, str]
    ) -> tuple[int, Any]:
        interaction = self.interactions.get(int(p["iid"]))
        if interaction is None or interaction.token != p["token"]:
            raise _ApiError(404, 10062, "Unknown interaction")
        deadline = self.interaction_ack_deadline
        if deadline is not None and time.monotonic() - interaction.created > deadline:
            raise _ApiError(404, 10062, "Unknown interaction")
        if interaction.callbacks:
            raise _ApiError(400, 40060, "Interaction has already been acknowledged.")
        body = rec.json if isinstance(rec.json, dict) else {}
        cb_type = body.get("type")
        data = body.get("data") or {}
        resource: dict[str, Any] | None = None
        loading = ephemeral = False
        if cb_type == 4:
            self._validate_message_body(data, has_files=bool(rec.files), partial=False)
            msg = self._create_bot_message(
                interaction.channel_id, data, rec.files, interaction=interaction
            )
            interaction.original_message_id = int(msg["id"])
            ephemeral = bool(msg["flags"] & MSG_FLAG_EPHEMERAL)
            resource = {"type": 4, "message": copy.deepcopy(msg)}
            interaction.callbacks.append(body)
            await self._echo_bot_message("MESSAGE_CREATE", msg)
        elif cb_type == 5:
            flags = MSG_FLAG_LOADING | (int(data.get("flags") or 0) & MSG_FLAG_EPHEMERAL)
            msg = self._create_bot_message(
                interaction.channel_id, {}, [], interaction=interaction, flags=flags
            )
            interaction.original_message_id = int(msg["id"])
            loading, ephemeral = True, bool(flags & MSG_FLAG_EPHEMERAL)
            interaction.callbacks.append(body)
            await self._echo_bot_message("MESSAGE_CREATE", msg)
        elif cb_type == 7:
            target = interaction.payload.get("message")
            if target is None:
                raise _ApiError(400, 40004, "Interaction has no message to update")
            msg = self._message_or_404(int(target["channel_id"]), int(target["id"]))
            self._validate_message_body(data, has_files=bool(rec.files), partial=True)
            self._apply_message_body(msg, data, rec.files, editing=True)
            msg["edited_timestamp"] = _now_iso()
            resource = {"type": 7, "message": copy.deepcopy(msg)}
            interaction.callbacks.append(body)
            await self._echo_bot_message("MESSAGE_UPDATE", msg)
        elif cb_type in (1, 6, 8, 9, 10, 12):
            interaction.callbacks.append(body)
        else:
            raise _form_error("type", "BASE_TYPE_CHOICES", "Value must be a valid callback type.")
        if rec.query.get("with_response") not in ("1", "true", "True"):
            return 204, None
        info: dict[str, Any] = {"id": str(interaction.id), "type": interaction.payload["type"]}
        if interaction.original_message_id is not None:
            info["response_message_id"] = str(interaction.original_message_id)
            info["response_message_loading"] = loading
            info["response_message_ephemeral"] = ephemeral
        reply: dict[str, Any] = {"interaction": info}
        if resource is not None:
            reply["resource"] = resource
        return 200, reply

    def _webhook_target(self, interaction: FakeInteraction, mid: str) -> dict[str, Any]:
        if mid == "@original":
            msg_id = interaction.original_message_id
            if msg_id is None:
                target = interaction.payload.get("message")
                if interaction.callback_type in (6, 7) and target is not None:
                    msg_id = int(target["id"])
        else:
            msg_id = int(mid)
            allowed = {interaction.original_message_id, *interaction.followup_message_ids}
            if msg_id not in allowed:
                raise _ApiError(404, 10008, "Unknown Message")
        if msg_id is None or msg_id not in self._messages or msg_id in self._deleted:
            raise _ApiError(404, 10008, "Unknown Message")
        return self._messages[msg_id]

    async def _get_webhook_message(
        self, rec: RecordedRequest, p: dict[str, str]
    ) -> tuple[int, Any]:
        interaction = self._interaction_for_webhook(p)
        return 200, copy.deepcopy(self._webhook_target(interaction, p["mid"]))

    async def _patch_webhook_message(
        self, rec: RecordedRequest, p: dict[str, str]
    ) -> tuple[int, Any]:
        interaction = self._interaction_for_webhook(p)
        msg = self._webhook_target(interaction, p["mid"])
        backup = copy.deepcopy(msg)
        try:
            filled = self._edit(msg, rec)
        except _ApiError:
            msg.clear()
            msg.update(backup)
            raise
        await self._echo_bot_message("MESSAGE_UPDATE", msg)
        if filled:
            _log.debug("interaction %s: deferred response filled by an edit", interaction.id)
        return 200, copy.deepcopy(msg)

    async def _delete_webhook_message(
        self, rec: RecordedRequest, p: dict[str, str]
    ) -> tuple[int, Any]:
        interaction = self._interaction_for_webhook(p)
        msg = self._webhook_target(interaction, p["mid"])
        self._deleted.add(int(msg["id"]))
        await self._echo_bot_delete(msg)
        return 204, None

    async def _execute_webhook(self, rec: RecordedRequest, p: dict[str, str]) -> tuple[int, Any]:
        interaction = self._interaction_for_webhook(p)
        if not interaction.callbacks:
            raise _ApiError(404, 10015, "Unknown Webhook")
        body = rec.json if isinstance(rec.json, dict) else {}
        self._validate_message_body(body, has_files=bool(rec.files), partial=False)
        original = (
            self._messages.get(interaction.original_message_id)
            if interaction.original_message_id is not None
            else None
        )
        if (
            original is not None
            and original["flags"] & MSG_FLAG_LOADING
            and not interaction.followup_message_ids
            and int(original["id"]) not in self._deleted
        ):
            # Discord: the first followup after a deferred response replaces the placeholder.
            no_flags = {k: v for k, v in body.items() if k != "flags"}
            self._apply_message_body(original, no_flags, rec.files, editing=False)
            original["flags"] &= ~MSG_FLAG_LOADING
            interaction.followup_message_ids.append(int(original["id"]))
            await self._echo_bot_message("MESSAGE_UPDATE", original)
            msg = original
        else:
            channel_id = int(rec.query.get("thread_id") or interaction.channel_id)
            msg = self._create_bot_message(
                channel_id, body, rec.files, interaction=interaction, flags=0
            )
            interaction.followup_message_ids.append(int(msg["id"]))
            await self._echo_bot_message("MESSAGE_CREATE", msg)
        if rec.query.get("wait") in ("1", "true", "True"):
            return 200, copy.deepcopy(msg)
        return 204, None

    # ------------------------------------------------------------------ application commands

    def _check_app(self, p: dict[str, str]) -> list[dict[str, Any]]:
        if int(p["app"]) != self.application_id:
            raise _ApiError(404, 10002, "Unknown Application")
        if p.get("gid") is not None:
            gid = int(p["gid"])
            if gid not in self.guilds:
                raise _ApiError(403, 50001, "Missing Access")
            return self.guild_commands.setdefault(gid, [])
        return self.registered_commands

    def _validate_command(self, index: int, cmd: dict[str, Any]) -> None:
        prefix = str(index)
        ctype = int(cmd.get("type") or 1)
        name = cmd.get("name")
        if ctype == 1:
            if (
                not isinstance(name, str)
                or not _COMMAND_NAME_RE.fullmatch(name)
                or name != name.lower()
            ):
                raise _form_error(
                    f"{prefix}.name", "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid"
                )
            desc = cmd.get("description")
            if not isinstance(desc, str) or not 1 <= len(desc) <= 100:
                raise _form_error(
                    f"{prefix}.description",
                    "BASE_TYPE_BAD_LENGTH",
                    "Must be between 1 and 100 in length.",
                )
        else:  # USER (2) and MESSAGE (3) commands: any 1-32 character name, no description
            if not isinstance(name, str) or not 1 <= len(name) <= 32:
                raise _form_error(
                    f"{prefix}.name", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 32 in length."
                )
            if cmd.get("description") or cmd.get("options"):
                raise _form_error(
                    f"{prefix}.description",
                    "APPLICATION_COMMAND_CONTEXT_MENU_NO_DESCRIPTION",
                    "Context menu commands cannot have description or options",
                )
        self._validate_options(f"{prefix}.options", cmd.get("options") or [])

    def _validate_options(self, prefix: str, options: list[dict[str, Any]]) -> None:
        if len(options) > 25:
            raise _form_error(prefix, "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
        seen: set[str] = set()
        optional_seen = False
        for i, opt in enumerate(options):
            name = opt.get("name")
            if (
                not isinstance(name, str)
                or not _COMMAND_NAME_RE.fullmatch(name)
                or name != name.lower()
            ):
                raise _form_error(
                    f"{prefix}.{i}.name",
                    "APPLICATION_COMMAND_INVALID_NAME",
                    "Command name is invalid",
                )
            if name in seen:
                raise _form_error(
                    f"{prefix}.{i}.name",
                    "APPLICATION_COMMAND_OPTIONS_NAME_ALREADY_EXISTS",
                    "Duplicate name",
                )
            seen.add(name)
            desc = opt.get("description")
            if not isinstance(desc, str) or not 1 <= len(desc) <= 100:
                raise _form_error(
                    f"{prefix}.{i}.description",
                    "BASE_TYPE_BAD_LENGTH",
                    "Must be between 1 and 100 in length.",
                )
            if len(opt.get("choices") or []) > 25:
                raise _form_error(
                    f"{prefix}.{i}.choices",
                    "BASE_TYPE_MAX_LENGTH",
                    "Must be 25 or fewer in length.",
                )
            if opt.get("type") in (_OPT_SUB_COMMAND, _OPT_SUB_GROUP):
                self._validate_options(f"{prefix}.{i}.options", opt.get("options") or [])
                continue
            if opt.get("required"):
                if optional_seen:
                    raise _form_error(
                        f"{prefix}.{i}.required",
                        "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                        "Required options must be placed before non-required options",
                    )
            else:
                optional_seen = True

    def _command_payload(
        self, cmd: dict[str, Any], existing: list[dict[str, Any]], guild_id: int | None
    ) -> dict[str, Any]:
        ctype = int(cmd.get("type") or 1)
        old = next((c for c in existing if c["name"] == cmd["name"] and c["type"] == ctype), None)
        out: dict[str, Any] = {
            "id": old["id"] if old else str(self._next_id()),
            "application_id": str(self.application_id),
            "version": str(self._next_id()),
            "type": ctype,
            "name": cmd["name"],
            "description": cmd.get("description") or "",
            "default_member_permissions": cmd.get("default_member_permissions"),
            "dm_permission": cmd.get("dm_permission", True),
            "nsfw": bool(cmd.get("nsfw", False)),
            "name_localizations": cmd.get("name_localizations"),
            "description_localizations": cmd.get("description_localizations"),
        }
        if guild_id is not None:
            out["guild_id"] = str(guild_id)
        else:
            out["contexts"] = cmd.get("contexts")
            out["integration_types"] = cmd.get("integration_types") or [0]
        if cmd.get("options"):
            out["options"] = copy.deepcopy(cmd["options"])
        return out

    async def _get_commands(self, rec: RecordedRequest, p: dict[str, str]) -> tuple[int, Any]:
        return 200, copy.deepcopy(self._check_app(p))

    async def _put_commands(self, rec: RecordedRequest, p: dict[str, str]) -> tuple[int, Any]:
        existing = self._check_app(p)
        body = rec.json if isinstance(rec.json, list) else []
        if sum(1 for c in body if int(c.get("type") or 1) == 1) > 100:
            raise _form_error("_", "BASE_TYPE_MAX_LENGTH", "Must be 100 or fewer in length.")
        for i, cmd in enumerate(body):
            self._validate_command(i, cmd)
        guild_id = int(p["gid"]) if p.get("gid") else None
        new = [self._command_payload(c, existing, guild_id) for c in body]
        existing[:] = new
        if guild_id is None:
            self.command_puts += 1
        else:
            self.guild_command_puts += 1
        return 200, copy.deepcopy(new)

    async def _post_command(self, rec: RecordedRequest, p: dict[str, str]) -> tuple[int, Any]:
        existing = self._check_app(p)
        body = rec.json if isinstance(rec.json, dict) else {}
        self._validate_command(0, body)
        guild_id = int(p["gid"]) if p.get("gid") else None
        cmd = self._command_payload(body, existing, guild_id)
        replaced = any(c["id"] == cmd["id"] for c in existing)
        existing[:] = [c for c in existing if c["id"] != cmd["id"]] + [cmd]
        return (200 if replaced else 201), copy.deepcopy(cmd)

    def _command_or_404(self, commands: list[dict[str, Any]], cmd_id: str) -> dict[str, Any]:
        cmd = next((c for c in commands if c["id"] == cmd_id), None)
        if cmd is None:
            raise _ApiError(404, 10063, "Unknown application command")
        return cmd

    async def _get_command(self, rec: RecordedRequest, p: dict[str, str]) -> tuple[int, Any]:
        return 200, copy.deepcopy(self._command_or_404(self._check_app(p), p["cmd"]))

    async def _patch_command(self, rec: RecordedRequest, p: dict[str, str]) -> tuple[int, Any]:
        commands = self._check_app(p)
        cmd = self._command_or_404(commands, p["cmd"])
        body = rec.json if isinstance(rec.json, dict) else {}
        merged = {**cmd, **body}
        self._validate_command(0, merged)
        cmd.update({k: copy.deepcopy(v) for k, v in body.items()})
        cmd["version"] = str(self._next_id())
        return 200, copy.deepcopy(cmd)

    async def _delete_command(self, rec: RecordedRequest, p: dict[str, str]) -> tuple[int, Any]:
        commands = self._check_app(p)
        cmd = self._command_or_404(commands, p["cmd"])
        commands.remove(cmd)
        return 204, None


async def _no_identify_delay(shard_id: int | None, *, initial: bool = False) -> None:
    return None


@contextlib.asynccontextmanager
async def running_client(
    client: discord.Client,
    *,
    token: str = "fake-token",
    timeout: float = 5.0,  # noqa: ASYNC109 - part of the fixture's agreed API
    fast_identify: bool = True,
) -> AsyncIterator[discord.Client]:
    """Log ``client`` in, connect it in a task and wait for its READY; close it on exit.

    ``fast_identify`` replaces the instance's ``before_identify_hook`` (which sleeps 5 s
    before every re-IDENTIFY) with a no-op. If the connection fails before READY, the
    client's exception is raised.
    """
    if fast_identify:
        client.before_identify_hook = _no_identify_delay  # type: ignore[method-assign]
    await client.login(token)
    task = asyncio.create_task(client.connect(), name="fake-discord-client")
    ready = asyncio.create_task(client.wait_until_ready())
    try:
        done, _ = await asyncio.wait(
            {task, ready}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
        if task in done:
            task.result()  # raises the connection error, if any
            raise RuntimeError("client.connect() returned before READY")
        if ready not in done:
            raise TimeoutError(f"client not READY after {timeout}s")
        yield client
    finally:
        ready.cancel()
        await client.close()
        await asyncio.wait_for(task, timeout=timeout)  # re-raises a connection error

"""The loopback fake Discord works with the real discord.py client over HTTP and websocket."""

from __future__ import annotations

import asyncio
import io
import json
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import discord
import jsonschema
import pytest
from discord import app_commands

from tests.fakes.discord_server import FakeDiscord, RecordedRequest, running_client

GUILD_ID = 900000000000000001
CHANNEL_ID = 900000000000000010
NO_THREADS_ID = 900000000000000011
DM_ID = 900000000000000020
ALICE = 900000000000000100
TOKEN = "fake.bot.token"

# A vendored subset of Discord's official OpenAPI document: see tests/specs/README.md.
SPEC_PATH = Path(__file__).resolve().parents[1] / "specs" / "discord-openapi.json"


class ProbeClient(discord.Client):
    """A tiny real discord.py client that records what reaches it."""

    def __init__(self) -> None:
        intents = discord.Intents.default()
        intents.message_content = True
        super().__init__(intents=intents, guild_ready_timeout=0.01)
        self.tree = app_commands.CommandTree(self)
        self.events: list[tuple[str, Any]] = []
        self._changed = asyncio.Event()

    def _record(self, name: str, value: Any) -> None:
        self.events.append((name, value))
        self._changed.set()
        self._changed = asyncio.Event()

    async def on_message(self, message: discord.Message) -> None:
        self._record("message", message)

    async def on_thread_create(self, thread: discord.Thread) -> None:
        self._record("thread_create", thread)

    async def on_resumed(self) -> None:
        self._record("resumed", None)

    async def wait_event(
        self, name: str, check: Callable[[Any], bool] = lambda _v: True, *, within: float = 5.0
    ) -> Any:
        async with asyncio.timeout(within):
            while True:
                changed = self._changed
                for event, value in self.events:
                    if event == name and check(value):
                        return value
                await changed.wait()


@pytest.fixture
async def fake(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeDiscord]:
    server = FakeDiscord(token=TOKEN)
    await server.start()
    server.patch_discord(monkeypatch)
    server.add_guild(GUILD_ID, name="Maths")
    server.add_text_channel(GUILD_ID, CHANNEL_ID, name="general")
    server.add_text_channel(GUILD_ID, NO_THREADS_ID, name="no-threads", can_create_threads=False)
    server.add_user(ALICE, "alice")
    yield server
    await server.close()
    assert not server.unknown_requests, server.unknown_requests
    assert not server.handler_errors, server.handler_errors


@pytest.fixture
async def client(fake: FakeDiscord) -> AsyncIterator[ProbeClient]:
    probe = ProbeClient()
    async with running_client(probe, token=TOKEN):
        yield probe


def _from_others(client: ProbeClient) -> Callable[[discord.Message], bool]:
    return lambda m: client.user is not None and m.author.id != client.user.id


async def test_login_and_ready_with_guild_cached(fake: FakeDiscord, client: ProbeClient) -> None:
    assert client.is_ready()
    assert client.user is not None and client.user.id == fake.bot_id
    assert client.user.name == "mathbot" and client.user.bot
    assert client.application_id == fake.application_id
    guild = client.get_guild(GUILD_ID)
    assert guild is not None and guild.name == "Maths" and not guild.unavailable
    channel = guild.get_channel(CHANNEL_ID)
    assert isinstance(channel, discord.TextChannel) and channel.name == "general"
    assert guild.me is not None and guild.me.id == fake.bot_id
    assert channel.permissions_for(guild.me).send_messages
    assert not guild.get_channel(NO_THREADS_ID).permissions_for(guild.me).create_public_threads  # type: ignore[union-attr]
    paths = [(r.method, r.path) for r in fake.requests]
    assert ("GET", "/users/@me") in paths
    assert ("GET", "/oauth2/applications/@me") in paths
    assert all(r.headers.get("Authorization") == f"Bot {TOKEN}" for r in fake.requests)
    assert fake.identify_count == 1
    assert fake.identify_payloads[0]["intents"] & (1 << 15)  # message content requested


async def test_message_create_reaches_on_message(fake: FakeDiscord, client: ProbeClient) -> None:
    sent = await fake.user_message(
        channel_id=CHANNEL_ID, author_id=ALICE, content="what is 2+2?", mention_bot=True
    )
    message: discord.Message = await client.wait_event("message", _from_others(client))
    assert message.id == int(sent["id"])
    assert message.content == f"<@{fake.bot_id}> what is 2+2?"
    assert message.author.id == ALICE and message.author.name == "alice"
    assert isinstance(message.author, discord.Member)
    assert message.channel.id == CHANNEL_ID and isinstance(message.channel, discord.TextChannel)
    assert message.guild is not None and message.guild.id == GUILD_ID
    assert client.user in message.mentions


async def test_client_sends_message_and_file(fake: FakeDiscord, client: ProbeClient) -> None:
    channel = client.get_channel(CHANNEL_ID)
    assert isinstance(channel, discord.TextChannel)
    sent = await channel.send("2 + 2 = 4")
    assert sent.content == "2 + 2 = 4" and sent.author.id == fake.bot_id
    with_file = await channel.send(
        "see attached", file=discord.File(io.BytesIO(b"x^2 + 1"), filename="work.txt")
    )
    messages = await fake.wait_for_messages(CHANNEL_ID, 2)
    assert [m["content"] for m in messages] == ["2 + 2 = 4", "see attached"]
    post = await fake.wait_for(lambda r: r.method == "POST" and bool(r.files))
    assert post.files[0][:2] == ("work.txt", b"x^2 + 1")
    assert messages[1]["attachments"][0]["content_type"].startswith("text/plain")
    assert await with_file.attachments[0].read() == b"x^2 + 1"  # served by the fake
    # As on Discord, the bot also receives its own messages over the gateway.
    echoed = await client.wait_event("message", lambda m: m.id == sent.id)
    assert echoed.author.id == fake.bot_id
    edited = await sent.edit(content="2 + 2 = 4 (checked)")
    assert edited.edited_at is not None
    assert fake.messages(CHANNEL_ID)[0]["content"] == "2 + 2 = 4 (checked)"
    with pytest.raises(discord.HTTPException) as too_long:
        await channel.send("x" * 2001)
    assert too_long.value.code == 50035


async def test_thread_from_message(fake: FakeDiscord, client: ProbeClient) -> None:
    await fake.user_message(channel_id=CHANNEL_ID, author_id=ALICE, content="integrate x dx")
    message: discord.Message = await client.wait_event("message", _from_others(client))
    thread = await message.create_thread(name="integrate x dx")
    assert thread.id == message.id and thread.parent_id == CHANNEL_ID
    assert fake.threads[message.id]["name"] == "integrate x dx"
    created = await client.wait_event("thread_create", lambda t: t.id == message.id)
    assert created.guild.get_thread(message.id) is not None
    await thread.send("x^2/2 + C")
    replies = await fake.wait_for_messages(message.id, 1)
    assert replies[0]["content"] == "x^2/2 + C"
    assert fake.messages(CHANNEL_ID) == []

    # A channel that forbids thread creation answers 403 Missing Permissions.
    other = await fake.user_message(channel_id=NO_THREADS_ID, author_id=ALICE, content="hi")
    locked = client.get_channel(NO_THREADS_ID)
    assert isinstance(locked, discord.TextChannel)
    with pytest.raises(discord.Forbidden) as denied:
        await locked.get_partial_message(int(other["id"])).create_thread(name="nope")
    assert denied.value.code == 50013


async def test_dm_message(fake: FakeDiscord, client: ProbeClient) -> None:
    await fake.user_message(channel_id=DM_ID, author_id=ALICE, content="private question")
    message: discord.Message = await client.wait_event("message", _from_others(client))
    assert isinstance(message.channel, discord.DMChannel)
    assert message.guild is None and message.content == "private question"
    assert message.author.id == ALICE
    await message.channel.send("private answer")
    assert (await fake.wait_for_messages(DM_ID, 1))[0]["content"] == "private answer"
    user = await client.fetch_user(ALICE)
    await user.send("another one")
    assert [m["content"] for m in await fake.wait_for_messages(DM_ID, 2)][1] == "another one"


async def test_rate_limit_is_retried(fake: FakeDiscord, client: ProbeClient) -> None:
    fake.fail_next("POST", rf"/channels/{CHANNEL_ID}/messages", status=429, retry_after=0.01)
    channel = client.get_channel(CHANNEL_ID)
    assert isinstance(channel, discord.TextChannel)
    await channel.send("after the rate limit")
    posts = [r for r in fake.requests if r.method == "POST" and r.path.endswith("/messages")]
    assert [(r.status, r.injected) for r in posts] == [(429, True), (200, False)]
    assert posts[0].json == posts[1].json
    assert [m["content"] for m in fake.messages(CHANNEL_ID)] == ["after the rate limit"]
    assert not fake.faults


async def test_slash_command_defer_and_followup(fake: FakeDiscord) -> None:
    probe = ProbeClient()
    seen: list[tuple[str, int]] = []

    @probe.tree.command(name="solve", description="Solve an expression")
    async def solve(interaction: discord.Interaction, expression: str, precision: int = 2) -> None:
        seen.append((expression, precision))
        await interaction.response.defer(thinking=True)
        await interaction.followup.send(f"{expression} = 4")

    @probe.tree.command(name="hint", description="Give a hint privately")
    async def hint(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("thinking…", ephemeral=True)
        await interaction.edit_original_response(content="try factoring")

    async with running_client(probe, token=TOKEN):
        synced = await probe.tree.sync()
        assert fake.command_puts == 1
        assert {c["name"] for c in fake.registered_commands} == {"solve", "hint"}
        registered = {c["name"]: int(c["id"]) for c in fake.registered_commands}
        assert {c.name: c.id for c in synced} == registered

        inter = await fake.slash_command(
            "solve",
            user_id=ALICE,
            channel_id=CHANNEL_ID,
            options={"expression": "2+2", "precision": "3"},
        )
        assert int(inter.payload["data"]["id"]) == registered["solve"]
        assert inter.payload["context"] == 0
        messages = await fake.wait_for_messages(CHANNEL_ID, 1)
        assert seen == [("2+2", 3)]
        assert inter.callback_type == 5
        assert [m["content"] for m in messages] == ["2+2 = 4"]
        assert messages[0]["interaction_metadata"]["id"] == str(inter.id)
        callback = await fake.wait_for(lambda r: r.path.endswith("/callback"))
        assert callback.query.get("with_response") == "1"

        dm_inter = await fake.slash_command("hint", user_id=ALICE, channel_id=DM_ID)
        assert dm_inter.payload["context"] == 1 and "user" in dm_inter.payload
        await fake.wait_for_message(DM_ID, lambda m: m["content"] == "try factoring")
        original = dm_inter.original()
        assert original is not None and original["flags"] & 64  # ephemeral
        assert dm_inter.callback_type == 4


async def test_message_command_resolves_its_target(fake: FakeDiscord) -> None:
    probe = ProbeClient()
    seen: list[tuple[str, str, int]] = []

    @probe.tree.context_menu(name="Quote it")
    async def quote_it(interaction: discord.Interaction, message: discord.Message) -> None:
        seen.append((message.content, message.author.name, message.channel.id))
        await interaction.response.send_message("quoted", ephemeral=True)

    async with running_client(probe, token=TOKEN):
        await probe.tree.sync()
        [menu] = fake.registered_commands
        assert menu["type"] == 3 and menu["description"] == ""
        target = await fake.user_message(channel_id=CHANNEL_ID, author_id=ALICE, content="2+2")
        inter = await fake.message_command("Quote it", user_id=ALICE, message_id=int(target["id"]))
        data = inter.payload["data"]
        assert data["type"] == 3 and data["target_id"] == target["id"]
        assert data["id"] == menu["id"]
        assert (await inter.wait_for_callback())["type"] == 4
        assert seen == [("2+2", "alice", CHANNEL_ID)]

        dm_target = await fake.user_message(channel_id=DM_ID, author_id=ALICE, content="3+3")
        dm_inter = await fake.message_command(
            "Quote it", user_id=ALICE, message_id=int(dm_target["id"])
        )
        assert dm_inter.payload["context"] == 1
        await dm_inter.wait_for_callback()
        assert seen[-1] == ("3+3", "alice", DM_ID)


async def test_disallowed_intents_close_raises(fake: FakeDiscord) -> None:
    fake.identify_close_code = 4014
    probe = ProbeClient()
    try:
        with pytest.raises(discord.PrivilegedIntentsRequired):
            await asyncio.wait_for(probe.start(TOKEN), timeout=5)
    finally:
        await probe.close()
    assert fake.identify_count == 1


async def test_dropped_gateway_resumes(fake: FakeDiscord, client: ProbeClient) -> None:
    await fake.drop_gateway(code=4000)
    # Sent while the client is away: buffered and replayed on RESUME.
    await fake.user_message(channel_id=CHANNEL_ID, author_id=ALICE, content="while away")
    await fake.wait_until(lambda: fake.resume_count == 1, what="a RESUME")
    await client.wait_event("resumed")
    away = await client.wait_event("message", lambda m: m.content == "while away")
    assert away.author.id == ALICE
    await fake.user_message(channel_id=CHANNEL_ID, author_id=ALICE, content="after resume")
    await client.wait_event("message", lambda m: m.content == "after resume")
    assert fake.identify_count == 1
    contents = [m.content for name, m in client.events if name == "message"]
    assert contents.count("while away") == 1  # replayed exactly once


async def test_invalidated_session_reidentifies(fake: FakeDiscord, client: ProbeClient) -> None:
    await fake.invalidate_session()
    await fake.wait_for_ready()
    assert fake.identify_count == 2
    await fake.user_message(channel_id=CHANNEL_ID, author_id=ALICE, content="fresh session")
    await client.wait_event("message", lambda m: m.content == "fresh session")


def _schema_validator(spec: dict[str, Any], name: str) -> Any:
    schema = {"$ref": f"#/components/schemas/{name}", "components": spec["components"]}
    return jsonschema.Draft202012Validator(schema)


async def test_rest_responses_match_openapi_schemas(fake: FakeDiscord) -> None:
    spec = json.loads(SPEC_PATH.read_text(encoding="utf-8"))
    probe = ProbeClient()

    @probe.tree.command(name="ask", description="Ask a question")
    async def ask(interaction: discord.Interaction, question: str) -> None:
        await interaction.response.send_message(f"answer to {question}")
        await interaction.followup.send("a followup")

    async with running_client(probe, token=TOKEN):
        await probe.tree.sync()
        user_msg = await fake.user_message(channel_id=CHANNEL_ID, author_id=ALICE, content="hi")
        channel = probe.get_channel(CHANNEL_ID)
        assert isinstance(channel, discord.TextChannel)
        await channel.send("plain", file=discord.File(io.BytesIO(b"png?"), filename="plot.png"))
        thread = await channel.get_partial_message(int(user_msg["id"])).create_thread(name="t")
        await probe.fetch_channel(thread.id)
        await probe.fetch_channel(CHANNEL_ID)
        await (await probe.fetch_user(ALICE)).create_dm()
        inter = await fake.slash_command(
            "ask", user_id=ALICE, channel_id=CHANNEL_ID, options={"question": "q"}
        )
        await inter.wait_for_followups(1)
    headers = {"Authorization": f"Bot {TOKEN}"}
    async with (
        aiohttp.ClientSession(headers=headers) as http,
        http.get(f"{fake.api_base}/gateway/bot") as resp,
    ):
        assert resp.headers["Content-Type"] == "application/json"
        gateway_bot = await resp.json()

    def last(method: str, pattern: str) -> RecordedRequest:
        return [r for r in fake.requests if r.method == method and re.fullmatch(pattern, r.path)][
            -1
        ]

    checks: list[tuple[str, Any]] = [
        ("UserPIIResponse", last("GET", r"/users/@me").response),
        ("PrivateApplicationResponse", last("GET", r"/oauth2/applications/@me").response),
        ("MessageResponse", last("POST", r"/channels/\d+/messages").response),
        ("MessageResponse", user_msg),
        ("ThreadResponse", last("POST", r"/channels/\d+/messages/\d+/threads").response),
        ("ThreadResponse", last("GET", rf"/channels/{thread.id}").response),
        ("GuildChannelResponse", last("GET", rf"/channels/{CHANNEL_ID}").response),
        ("PrivateChannelResponse", last("POST", r"/users/@me/channels").response),
        ("UserResponse", last("GET", rf"/users/{ALICE}").response),
        ("InteractionCallbackResponse", last("POST", r"/interactions/\d+/[^/]+/callback").response),
        ("MessageResponse", last("POST", r"/webhooks/\d+/[^/]+").response),
        ("GatewayBotResponse", gateway_bot),
    ]
    checks += [
        ("ApplicationCommandResponse", c)
        for c in last("PUT", r"/applications/\d+/commands").response
    ]
    for name, instance in checks:
        assert instance is not None, name
        errors = sorted(_schema_validator(spec, name).iter_errors(instance), key=str)
        assert not errors, f"{name}: {[f'{list(e.path)}: {e.message}' for e in errors[:5]]}"


async def test_auto_sharded_client_gets_guilds_per_shard(fake: FakeDiscord) -> None:
    other_guild = GUILD_ID + (1 << 22)  # lands on the other shard of two
    other_channel = CHANNEL_ID + 100
    fake.add_guild(other_guild, name="Other")
    fake.add_text_channel(other_guild, other_channel)
    fake.shards = 2
    intents = discord.Intents.default()
    intents.message_content = True
    sharded = discord.AutoShardedClient(intents=intents, guild_ready_timeout=0.01)
    async with running_client(sharded, token=TOKEN):
        assert sharded.shard_count == 2
        assert sorted(p["shard"] for p in fake.identify_payloads) == [[0, 2], [1, 2]]
        assert {g.id for g in sharded.guilds} == {GUILD_ID, other_guild}
        guild_shards = {sharded.get_guild(g).shard_id for g in (GUILD_ID, other_guild)}  # type: ignore[union-attr]
        assert guild_shards == {0, 1}
        received = asyncio.Event()
        sharded.event(_set_on_message(received))
        await fake.user_message(channel_id=other_channel, author_id=ALICE, content="shard?")
        async with asyncio.timeout(5):
            await received.wait()
    ready_guilds = [
        frame["d"]["guilds"] for _sid, frame in fake.sent_events if frame["t"] == "READY"
    ]
    assert sorted(len(g) for g in ready_guilds) == [1, 1]  # each shard only sees its own guild


def _set_on_message(flag: asyncio.Event) -> Callable[[discord.Message], Any]:
    async def on_message(message: discord.Message) -> None:
        if message.content == "shard?":
            flag.set()

    return on_message

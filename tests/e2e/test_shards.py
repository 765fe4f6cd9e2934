"""Two bot processes on different shards share one PostgreSQL: memory follows the user."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import asyncpg
import pytest

from bot.app import build
from bot.config.settings import Settings
from bot.discord_app.build import build_bot
from bot.discord_app.client import ShardedMathBot
from bot.memory.keys import user_session_id
from bot.memory.postgres import PostgresStore
from bot.tools.calculator.calculator import Calculator
from bot.tools.plotting.plotter import Plotter
from tests.fakes.discord_server import FakeDiscord, running_client
from tests.fakes.llm_server import FakeLLM
from tests.harness import ALICE, build_discord
from tests.memory.backends import POSTGRES_URL, asyncpg_dsn, need, need_packages

GUILD_A, CHANNEL_A = 900000000000000001, 900000000000000011  # shard 1 of 2
GUILD_B, CHANNEL_B = 900000000004194305, 900000000004194315  # shard 0 of 2


@pytest.fixture
async def tables() -> AsyncIterator[tuple[str, str]]:
    need_packages("postgres", "sqlalchemy", "asyncpg")
    need("postgres")
    tag = uuid.uuid4().hex[:12]
    names = (f"mbs_{tag}_sessions", f"mbs_{tag}_messages")
    yield names
    conn = await asyncpg.connect(asyncpg_dsn(POSTGRES_URL), timeout=5)
    try:
        await conn.execute(f"DROP TABLE IF EXISTS {names[1]}, {names[0]}")
    finally:
        await conn.close()


async def start_process(
    stack: AsyncExitStack, settings: Settings, shard: int, tables: tuple[str, str]
) -> ShardedMathBot:
    """One bot "process": its own store (engine), assistant and sharded client."""
    store = PostgresStore(POSTGRES_URL, sessions_table=tables[0], messages_table=tables[1])
    mine = dataclasses.replace(settings, shard_count=2, shard_ids=(shard,))
    assistant = build(mine, store=store, calculator=Calculator(), plotter=Plotter())
    bot = build_bot(mine, assistant, guild_ready_timeout=0.01)
    assert isinstance(bot, ShardedMathBot)
    await stack.enter_async_context(running_client(bot, token=mine.discord_token))
    return bot


async def test_a_users_memory_written_via_one_shard_is_read_via_the_other(
    llm: FakeLLM,
    llm_settings: Settings,
    tables: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    discord: FakeDiscord = build_discord()
    discord.add_guild(GUILD_B, name="Other club")
    discord.add_text_channel(GUILD_B, CHANNEL_B)
    discord.shards = 2
    assert (GUILD_A >> 22) % 2 == 1 and (GUILD_B >> 22) % 2 == 0
    await discord.start()
    discord.patch_discord(monkeypatch)
    try:
        async with AsyncExitStack() as stack:
            first = await start_process(stack, llm_settings, 0, tables)
            second = await start_process(stack, llm_settings, 1, tables)
            assert [g.id for g in first.guilds] == [GUILD_B]
            assert [g.id for g in second.guilds] == [GUILD_A]

            llm.reply("4")
            question = await discord.user_message(
                channel_id=CHANNEL_A, author_id=ALICE, content="what is 2+2?", mention_bot=True
            )
            await discord.wait_for_messages(int(question["id"]), 1)  # answered by shard 1
            llm.reply("8")
            follow_up = await discord.user_message(
                channel_id=CHANNEL_B, author_id=ALICE, content="multiply that by 2",
                mention_bot=True,
            )  # fmt: skip
            [answer] = await discord.wait_for_messages(int(follow_up["id"]), 1)  # by shard 0
            assert answer["content"] == "8"
            assert FakeLLM.user_texts(llm.requests[1]) == ["what is 2+2?", "multiply that by 2"]

        conn = await asyncpg.connect(asyncpg_dsn(POSTGRES_URL), timeout=5)
        try:
            rows = await conn.fetchval(
                f"SELECT count(*) FROM {tables[1]} WHERE session_id = $1", user_session_id(ALICE)
            )
        finally:
            await conn.close()
        assert rows == 4
    finally:
        await discord.close()

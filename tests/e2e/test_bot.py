"""The whole bot end to end: real discord.py and openai clients against loopback fakes."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

import discord
import pytest

from bot.core.assistant import HELP
from bot.core.failures import TIMED_OUT, UNAVAILABLE
from bot.memory.keys import channel_session_id, user_session_id
from tests.fakes.discord_server import MANAGE_MESSAGES, FakeDiscord
from tests.fakes.llm_server import FakeLLM
from tests.harness import ALICE, ALICE_DM, BOB, BOB_DM, CHANNEL, GUILD, NO_THREADS, OTHER_BOT, World
from tests.subprocess_bot import DISCORD_TOKEN, LLM_KEY, bot_env

EPHEMERAL = 1 << 6


def bot_posts(world: World) -> list:
    """Every request by which the bot created or edited a message."""
    return [
        r
        for r in world.discord.requests
        if r.method in {"POST", "PATCH"}
        and (r.path.endswith("/messages") or "/webhooks/" in r.path or "/messages/" in r.path)
        and not r.path.endswith("/threads")
    ]


async def mention(world: World, text: str, *, author: int = ALICE, channel: int = CHANNEL) -> dict:
    return await world.discord.user_message(
        channel_id=channel, author_id=author, content=text, mention_bot=True
    )


async def dm(world: World, text: str, *, author: int = ALICE, channel: int = ALICE_DM) -> dict:
    return await world.discord.user_message(channel_id=channel, author_id=author, content=text)


async def test_mention_starts_a_thread_and_follow_ups_need_no_mention(world: World) -> None:
    world.llm.reply("4")
    world.llm.reply("8")
    question = await mention(world, "what is 2+2?")
    thread_id = int(question["id"])  # a thread started on a message has the message's id
    [answer] = await world.discord.wait_for_messages(thread_id, 1)
    assert answer["content"] == "4"
    assert world.discord.threads[thread_id]["name"] == "what is 2+2?"
    assert world.discord.messages(CHANNEL) == []  # nothing posted in the channel itself
    typing = [r for r in world.discord.requests if r.path == f"/channels/{thread_id}/typing"]
    assert typing, "no typing indicator"

    await world.discord.user_message(
        channel_id=thread_id, author_id=ALICE, content="multiply that by 2"
    )
    answers = await world.discord.wait_for_messages(thread_id, 2)
    assert answers[1]["content"] == "8"
    second = world.llm.requests[1]
    assert FakeLLM.user_texts(second) == ["what is 2+2?", "multiply that by 2"]
    assert [m["role"] for m in FakeLLM.messages(second)] == ["system", "user", "assistant", "user"]


async def test_mention_inside_an_existing_thread_answers_in_place(world: World) -> None:
    world.llm.reply("first")
    question = await mention(world, "start")
    thread_id = int(question["id"])
    await world.discord.wait_for_messages(thread_id, 1)
    world.llm.reply("in place")
    await mention(world, "again", channel=thread_id, author=BOB)
    answers = await world.discord.wait_for_messages(thread_id, 2)
    assert answers[1]["content"] == "in place"
    assert len(world.discord.threads) == 1


async def test_direct_messages_are_answered_without_mention(world: World) -> None:
    world.llm.reply("4")
    await dm(world, "what is 2+2?")
    [answer] = await world.discord.wait_for_messages(ALICE_DM, 1)
    assert answer["content"] == "4"


async def test_math_command_in_a_server_defers_then_answers(world: World) -> None:
    world.llm.reply("4")
    interaction = await world.discord.slash_command(
        "math", user_id=ALICE, channel_id=CHANNEL, options={"question": "what is 2+2?"}
    )
    callback = await interaction.wait_for_callback()
    assert callback["type"] == 5  # deferred: "mathbot is thinking…"
    answer = await interaction.wait_for_response()
    assert answer["content"] == "> what is 2+2?\n4"
    assert FakeLLM.user_texts(world.llm.requests[0]) == ["what is 2+2?"]


async def test_math_command_in_a_dm_shares_the_users_memory(world: World) -> None:
    world.llm.reply("4")
    await dm(world, "what is 2+2?")
    await world.discord.wait_for_messages(ALICE_DM, 1)
    world.llm.reply("8")
    interaction = await world.discord.slash_command(
        "math", user_id=ALICE, channel_id=ALICE_DM, options={"question": "multiply that by 2"}
    )
    assert (await interaction.wait_for_callback())["type"] == 5
    answer = await interaction.wait_for_response()
    assert answer["content"].endswith("\n8")
    assert FakeLLM.user_texts(world.llm.requests[1]) == ["what is 2+2?", "multiply that by 2"]


async def test_forget_wipes_memory_and_confirms_privately(world: World) -> None:
    world.llm.reply("4")
    await dm(world, "what is 2+2?")
    await world.discord.wait_for_messages(ALICE_DM, 1)
    assert world.rows(user_session_id(ALICE))

    interaction = await world.discord.slash_command("forget", user_id=ALICE, channel_id=CHANNEL)
    callback = await interaction.wait_for_callback()
    assert callback["type"] == 5 and callback["data"]["flags"] & EPHEMERAL
    [confirmation] = await interaction.wait_for_followups(1)
    assert "forgotten" in confirmation["content"]
    assert confirmation["flags"] & EPHEMERAL
    assert world.rows(user_session_id(ALICE)) == []

    world.llm.reply("what is 'that'?")
    await dm(world, "multiply that by 2")
    await world.discord.wait_for_messages(ALICE_DM, 2)
    assert FakeLLM.user_texts(world.llm.requests[-1]) == ["multiply that by 2"]


async def test_users_do_not_share_memory(world: World) -> None:
    world.llm.reply("4")
    await dm(world, "what is 2+2?")
    await world.discord.wait_for_messages(ALICE_DM, 1)
    world.llm.reply("multiply what?")
    await dm(world, "multiply that by 2", author=BOB, channel=BOB_DM)
    await world.discord.wait_for_messages(BOB_DM, 1)
    bobs = world.llm.requests[1]
    assert FakeLLM.user_texts(bobs) == ["multiply that by 2"]
    assert "4" not in str(FakeLLM.messages(bobs))


async def test_memory_survives_a_restart(world: World) -> None:
    world.llm.reply("4")
    await dm(world, "what is 2+2?")
    await world.discord.wait_for_messages(ALICE_DM, 1)
    await world.restart_bot()
    world.llm.reply("8")
    await dm(world, "multiply that by 2")
    answers = await world.discord.wait_for_messages(ALICE_DM, 2)
    assert answers[1]["content"] == "8"
    assert FakeLLM.user_texts(world.llm.requests[1]) == ["what is 2+2?", "multiply that by 2"]


async def test_slash_commands_are_uploaded_only_when_changed(world: World) -> None:
    assert world.discord.command_puts == 1
    assert {c["name"] for c in world.discord.registered_commands if c["type"] == 1} == {
        "math", "forget", "cancel", "usage", "history", "export", "help", "style", "settings",
    }  # fmt: skip
    math = next(c for c in world.discord.registered_commands if c["name"] == "math")
    assert sorted(math["integration_types"]) == [0, 1]
    assert sorted(math["contexts"]) == [0, 1, 2]
    await world.restart_bot()
    assert world.discord.command_puts == 1


async def test_help_explains_asking_commands_and_stored_data_privately(world: World) -> None:
    interaction = await world.discord.slash_command("help", user_id=ALICE, channel_id=CHANNEL)
    callback = await interaction.wait_for_callback()
    assert callback["type"] == 4 and callback["data"]["flags"] & EPHEMERAL
    text = callback["data"]["content"]
    registered = {c["name"] for c in world.discord.registered_commands if c["type"] == 1}
    assert all(f"/{name}" in text for name in registered)  # every command is explained
    assert "20 exchanges" in text  # what the model sees (HISTORY_TURNS defaults to 20)
    assert len(text) <= 2000  # Discord's message limit
    assert world.llm.requests == []


async def test_two_messages_at_once_are_answered_in_order(world: World) -> None:
    world.llm.delay(0.3, "one")  # a slow first answer: the second turn must wait for it
    world.llm.reply("two")
    await dm(world, "first")
    await dm(world, "second")
    answers = await world.discord.wait_for_messages(ALICE_DM, 2)
    assert [a["content"] for a in answers] == ["one", "two"]
    second = world.llm.requests[1]
    assert FakeLLM.user_texts(second) == ["first", "second"]
    assert [m["role"] for m in FakeLLM.messages(second)] == ["system", "user", "assistant", "user"]
    assert [r.get("role") for r in world.rows(user_session_id(ALICE))] == [
        "user", "assistant", "user", "assistant",
    ]  # fmt: skip


@pytest.mark.parametrize("failure", ["500", "timeout"])
async def test_model_failure_is_polite_and_leaves_no_dangling_question(
    world: World, failure: str
) -> None:
    await world.restart_bot(llm_timeout=0.5)
    world.llm.reply("4")
    await dm(world, "what is 2+2?")
    await world.discord.wait_for_messages(ALICE_DM, 1)
    if failure == "500":
        world.llm.error(500, message="internal error")
    else:
        world.llm.hang()
    await dm(world, "this one fails")
    answers = await world.discord.wait_for_messages(ALICE_DM, 2)
    assert answers[1]["content"] == (UNAVAILABLE if failure == "500" else TIMED_OUT)
    assert len(world.rows(user_session_id(ALICE))) == 2  # no half turn was stored
    world.llm.reply("8")
    await dm(world, "multiply that by 2")
    await world.discord.wait_for_messages(ALICE_DM, 3)
    assert FakeLLM.user_texts(world.llm.requests[-1]) == ["what is 2+2?", "multiply that by 2"]


async def test_long_answer_arrives_in_pieces(world: World) -> None:
    long = "\n".join(f"step {i}: " + "x" * 60 for i in range(75))
    assert len(long) > 5000
    world.llm.reply(long)
    await dm(world, "show your work")
    await world.discord.wait_until(
        lambda: sum(len(m["content"]) + 1 for m in world.discord.messages(ALICE_DM)) > len(long),
        timeout=5,
        what="the whole long answer",
    )
    pieces = [m["content"] for m in world.discord.messages(ALICE_DM)]
    assert len(pieces) >= 3 and all(0 < len(p) <= 2000 for p in pieces)
    assert "\n".join(pieces) == long


async def test_an_answer_with_everyone_pings_nobody(world: World) -> None:
    world.llm.reply(f"@everyone @here <@&{GUILD}> <@{BOB}> the answer is 4")
    question = await mention(world, "ping them all")
    [answer] = await world.discord.wait_for_messages(int(question["id"]), 1)
    assert answer["mention_everyone"] is False
    assert answer["mentions"] == [] and answer["mention_roles"] == []
    for request in bot_posts(world):
        allowed = request.json["allowed_mentions"]
        assert allowed["parse"] == [] and not allowed.get("users") and not allowed.get("roles")


async def test_empty_mention_gets_help_without_a_model_call(world: World) -> None:
    await mention(world, "")
    [reply] = await world.discord.wait_for_messages(CHANNEL, 1)
    assert reply["content"] == HELP
    assert world.llm.requests == [] and world.discord.threads == {}


async def test_huge_message_is_refused_without_a_model_call(world: World) -> None:
    await dm(world, "1+" * 2500)
    [reply] = await world.discord.wait_for_messages(ALICE_DM, 1)
    assert "too long" in reply["content"]
    assert world.llm.requests == []


async def test_messages_from_bots_are_ignored(world: World) -> None:
    await world.discord.user_message(
        channel_id=CHANNEL, author_id=OTHER_BOT, content="what is 1+1?", mention_bot=True
    )
    world.llm.reply("4")
    question = await mention(world, "what is 2+2?")  # handled after the bot's message
    await world.discord.wait_for_messages(int(question["id"]), 1)
    assert [FakeLLM.user_texts(r) for r in world.llm.requests] == [["what is 2+2?"]]
    assert len(world.discord.threads) == 1


async def test_without_thread_permission_it_replies_and_logs_once(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="bot")
    world.llm.reply("4")
    world.llm.reply("6")
    first = await mention(world, "what is 2+2?", channel=NO_THREADS)
    await mention(world, "what is 3+3?", channel=NO_THREADS)
    replies = await world.discord.wait_for_messages(NO_THREADS, 2)
    assert [r["content"] for r in replies] == ["4", "6"]
    assert replies[0]["message_reference"]["message_id"] == first["id"]
    warnings = [r for r in caplog.records if "permission to create threads" in r.getMessage()]
    assert len(warnings) == 1


async def test_channel_scope_shares_a_thread_and_guards_forget(world: World) -> None:
    await world.restart_bot(session_scope="channel")
    world.llm.reply("4")
    world.llm.reply("8")
    question = await mention(world, "what is 2+2?")
    thread_id = int(question["id"])
    await world.discord.wait_for_messages(thread_id, 1)
    await world.discord.user_message(channel_id=thread_id, author_id=BOB, content="times 2?")
    await world.discord.wait_for_messages(thread_id, 2)
    assert FakeLLM.user_texts(world.llm.requests[1]) == ["what is 2+2?", "times 2?"]
    session = channel_session_id(thread_id)
    assert len(world.rows(session)) == 4

    denied = await world.discord.slash_command(
        "forget", user_id=BOB, channel_id=thread_id, member_permissions=0
    )
    callback = await denied.wait_for_callback()
    assert callback["type"] == 4 and "Manage Messages" in callback["data"]["content"]
    assert len(world.rows(session)) == 4

    allowed = await world.discord.slash_command(
        "forget", user_id=BOB, channel_id=thread_id, member_permissions=MANAGE_MESSAGES
    )
    await allowed.wait_for_followups(1)
    assert world.rows(session) == []


async def bot_until_exit(
    discord: FakeDiscord, llm: FakeLLM, tmp_path: Path, **extra: str
) -> tuple[int | None, str]:
    """`python -m bot` against `discord` (started here, closed after) until it exits: its
    exit status and what it wrote to stderr."""
    await discord.start()
    try:
        env = bot_env(
            api_url=discord.api_base,
            gateway_url=discord.gateway_url,
            llm_base_url=llm.base_url,
            session_db=str(tmp_path / "maths_db.db"),
            **extra,
        )
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", cwd=tmp_path, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        _, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
    finally:
        await discord.close()
    return process.returncode, stderr.decode()


async def test_refused_message_content_intent_exits_2_with_advice(
    llm: FakeLLM, tmp_path: Path
) -> None:
    discord = FakeDiscord()
    discord.identify_close_code = 4014
    returncode, text = await bot_until_exit(discord, llm, tmp_path)
    assert returncode == 2, text
    assert "MESSAGE CONTENT INTENT" in text
    assert "Traceback" not in text
    assert "fake.discord.token" not in text and "fake-google-key" not in text


@pytest.mark.parametrize("shards", [None, "2"], ids=["one connection", "sharded"])
async def test_a_rejected_token_exits_2_with_one_plain_line(
    llm: FakeLLM, tmp_path: Path, shards: str | None
) -> None:
    discord = FakeDiscord(token="the.real.token")  # the bot's token is not it: REST says 401
    extra = {"SHARD_COUNT": shards} if shards else {}
    returncode, text = await bot_until_exit(discord, llm, tmp_path, **extra)
    assert returncode == 2, text
    assert "Discord rejected DISCORD_TOKEN" in text
    assert "Traceback" not in text and "Error" not in text.replace("ERROR", ""), text
    assert DISCORD_TOKEN not in text and LLM_KEY not in text


async def test_sharded_bot_answers_on_every_shard(world: World) -> None:
    second_guild, second_channel = 900000000004194305, 900000000004194315
    world.discord.add_guild(second_guild, name="Other club")
    world.discord.add_text_channel(second_guild, second_channel)
    assert (second_guild >> 22) % 2 != (GUILD >> 22) % 2  # one guild per shard
    world.discord.shards = 2
    bot = await world.restart_bot(shard_count=2, shard_ids=(0, 1))
    assert isinstance(bot, discord.AutoShardedClient) and bot.shard_count == 2
    assert sorted(p["shard"][0] for p in world.discord.identify_payloads[-2:]) == [0, 1]
    world.llm.reply("4")
    world.llm.reply("8")
    first = await mention(world, "what is 2+2?")
    await world.discord.wait_for_messages(int(first["id"]), 1)
    second = await mention(world, "multiply that by 2", channel=second_channel)
    [answer] = await world.discord.wait_for_messages(int(second["id"]), 1)
    assert answer["content"] == "8"
    assert FakeLLM.user_texts(world.llm.requests[1]) == ["what is 2+2?", "multiply that by 2"]

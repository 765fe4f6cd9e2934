"""Cost and abuse controls end to end: who may ask, how fast, how much, and /cancel, /usage."""

from __future__ import annotations

import dataclasses
import datetime as dt

from bot.config.controls import Controls, RateLimit
from bot.memory.keys import user_session_id
from tests.harness import ALICE, ALICE_DM, BOB, BOB_DM, CHANNEL, World

EPHEMERAL = 1 << 6


async def restart_with(world: World, **controls: object) -> None:
    await world.restart_bot(controls=dataclasses.replace(Controls(), **controls))


async def dm(world: World, text: str, *, author: int = ALICE, channel: int = ALICE_DM) -> None:
    await world.discord.user_message(channel_id=channel, author_id=author, content=text)


async def test_an_over_rate_user_is_refused_before_any_model_call(world: World) -> None:
    await restart_with(world, user_rate=RateLimit(count=2, period=60, burst=2))
    for text in ("one", "two", "three"):
        await dm(world, text)
    replies = await world.discord.wait_for_messages(ALICE_DM, 3)
    refusals = [r for r in replies if "try again in" in r["content"].lower()]
    assert len(refusals) == 1  # the refusal may arrive before the answers: it needs no model
    assert len(world.llm.requests) == 2
    await dm(world, "bob is not limited", author=BOB, channel=BOB_DM)
    await world.discord.wait_for_messages(BOB_DM, 1)
    assert len(world.llm.requests) == 3


async def test_a_blocked_user_gets_a_private_notice_and_no_model_call(world: World) -> None:
    await restart_with(world, blocked_user_ids=frozenset({BOB}))
    await world.discord.user_message(
        channel_id=CHANNEL, author_id=BOB, content="what is 2+2?", mention_bot=True
    )
    world.llm.reply("4")
    await dm(world, "what is 2+2?")  # handled after Bob's message
    await world.discord.wait_for_messages(ALICE_DM, 1)
    assert [r["messages"][-1]["content"] for r in world.llm.requests] == ["what is 2+2?"]
    assert world.discord.threads == {} and world.discord.messages(CHANNEL) == []
    bobs_dm = world.discord.dm_channel_for(BOB)
    [notice] = await world.discord.wait_for_messages(int(bobs_dm["id"]), 1)
    assert "access" in notice["content"]


async def test_a_silent_block_says_nothing(world: World) -> None:
    await restart_with(world, blocked_user_ids=frozenset({BOB}), blocked_reply="silent")
    await dm(world, "hello?", author=BOB, channel=BOB_DM)
    world.llm.reply("4")
    await dm(world, "what is 2+2?")
    await world.discord.wait_for_messages(ALICE_DM, 1)
    assert world.discord.messages(BOB_DM) == []
    assert len(world.llm.requests) == 1


async def test_blocked_slash_command_is_refused_privately(world: World) -> None:
    await restart_with(world, blocked_user_ids=frozenset({BOB}))
    interaction = await world.discord.slash_command(
        "math", user_id=BOB, channel_id=CHANNEL, options={"question": "2+2"}
    )
    callback = await interaction.wait_for_callback()
    assert callback["type"] == 4 and callback["data"]["flags"] & EPHEMERAL
    assert world.llm.requests == []


async def test_daily_budget_stops_model_calls_and_resets_the_next_day(world: World) -> None:
    await restart_with(world, user_daily_tokens=20)  # each fake answer costs 15 tokens
    await dm(world, "one")
    await dm(world, "two")  # 15 used < 20: still allowed
    await dm(world, "three")  # 30 used: refused without a model call
    replies = await world.discord.wait_for_messages(ALICE_DM, 3)
    assert [r["content"] for r in replies[:2]] == ["echo: one", "echo: two"]
    assert "budget" in replies[2]["content"] and "resets" in replies[2]["content"]
    assert len(world.llm.requests) == 2

    world.now += dt.timedelta(days=1)
    await dm(world, "a new day")
    replies = await world.discord.wait_for_messages(ALICE_DM, 4)
    assert replies[3]["content"] == "echo: a new day"
    assert len(world.llm.requests) == 3

    usage = await world.discord.slash_command("usage", user_id=ALICE, channel_id=CHANNEL)
    [report] = await usage.wait_for_followups(1)
    assert report["flags"] & EPHEMERAL
    assert "Today: 15 tokens" in report["content"] and "In total: 45 tokens" in report["content"]


async def test_the_global_cap_holds_with_fifty_users(world: World) -> None:
    await restart_with(world, max_concurrent_model_calls=5, max_queued_turns=100)
    users = [800000000000001000 + i for i in range(50)]
    for user in users:
        world.discord.add_user(user, f"user{user % 1000}")
        world.llm.delay(0.05, "ok")
    for user in users:
        await dm(world, "hi", author=user, channel=user + 1)
    for user in users:
        await world.discord.wait_for_messages(user + 1, 1, timeout=20)
    assert len(world.llm.requests) == 50
    assert world.llm.max_in_flight == 5


async def test_a_full_queue_answers_busy(world: World) -> None:
    await restart_with(world, max_concurrent_model_calls=1, max_queued_turns=0)
    world.llm.hang()
    await dm(world, "slow one")
    await world.llm.wait_for_requests(1)
    await dm(world, "another", author=BOB, channel=BOB_DM)
    [busy] = await world.discord.wait_for_messages(BOB_DM, 1)
    assert "busy" in busy["content"]
    assert len(world.llm.requests) == 1


async def test_cancel_stops_the_turn_in_flight_and_keeps_memory(world: World) -> None:
    world.llm.reply("4")
    await dm(world, "what is 2+2?")
    await world.discord.wait_for_messages(ALICE_DM, 1)
    world.llm.hang()
    await dm(world, "a slow question")
    await world.llm.wait_for_requests(2)
    interaction = await world.discord.slash_command("cancel", user_id=ALICE, channel_id=CHANNEL)
    callback = await interaction.wait_for_callback()
    assert "Stopped" in callback["data"]["content"]
    replies = await world.discord.wait_for_messages(ALICE_DM, 2)
    assert replies[1]["content"].startswith("Stopped")
    assert len(world.rows(user_session_id(ALICE))) == 2  # the first turn, and nothing more


async def test_forget_also_stops_the_turn_in_flight(world: World) -> None:
    world.llm.hang()
    await dm(world, "a slow question")
    await world.llm.wait_for_requests(1)
    interaction = await world.discord.slash_command("forget", user_id=ALICE, channel_id=CHANNEL)
    await interaction.wait_for_followups(1)
    replies = await world.discord.wait_for_messages(ALICE_DM, 1)
    assert replies[0]["content"].startswith("Stopped")
    assert world.rows(user_session_id(ALICE)) == []

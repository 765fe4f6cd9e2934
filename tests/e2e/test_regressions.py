"""Regressions from issue #12 item 7: each test fails when the code is broken that way."""

from __future__ import annotations

import sqlite3

from bot.core.assistant import MAX_AGENT_STEPS
from bot.core.failures import UNREACHABLE
from bot.memory.keys import user_session_id
from tests.fakes.llm_server import FakeLLM
from tests.harness import ALICE, ALICE_DM, BOB, CHANNEL, GUILD, NO_THREADS, World

USER_THREAD = 900000000000000099  # a thread a user started, not the bot
DISCORD_MESSAGE_CHARS = 2000


async def test_a_reply_without_thread_permission_pings_nobody(world: World) -> None:
    world.llm.reply(f"@everyone @here <@&{GUILD}> <@{BOB}> the answer is 4")
    await world.discord.user_message(
        channel_id=NO_THREADS, author_id=ALICE, content="ping them all", mention_bot=True
    )
    [answer] = await world.discord.wait_for_messages(NO_THREADS, 1)
    assert answer["mention_everyone"] is False and answer["mention_roles"] == []
    posts = [
        r
        for r in world.discord.requests
        if r.method == "POST" and r.path == f"/channels/{NO_THREADS}/messages"
    ]
    assert posts
    for request in posts:
        allowed = request.json["allowed_mentions"]
        assert allowed["parse"] == [], allowed  # no @everyone, @here, roles or users parsed
        assert not allowed.get("users") and not allowed.get("roles"), allowed


async def test_no_answer_in_a_thread_the_bot_did_not_start_unless_mentioned(
    world: World,
) -> None:
    world.discord.add_thread(CHANNEL, USER_THREAD, name="alice's thread", owner_id=ALICE)
    await world.restart_bot()  # the thread arrives with the guild: the bot knows it is one
    await world.discord.user_message(channel_id=USER_THREAD, author_id=ALICE, content="2+2?")
    world.llm.reply("6")
    await world.discord.user_message(
        channel_id=USER_THREAD, author_id=ALICE, content="3+3?", mention_bot=True
    )  # handled after the message without a mention
    [answer] = await world.discord.wait_for_messages(USER_THREAD, 1)
    assert answer["content"] == "6"
    assert [FakeLLM.user_texts(r)[-1] for r in world.llm.requests] == ["3+3?"]


async def test_a_failed_streamed_answer_leaves_no_draft_posted(world: World) -> None:
    await world.restart_bot(streaming=True, stream_edit_interval=0.1)
    long = "\n".join(f"line {i}: " + "z" * 60 for i in range(100))  # three messages of drafts
    world.llm.chunk_size, world.llm.chunk_delay = 500, 0.05
    world.llm.stream_then_drop(long, after_chunks=12)
    await world.discord.user_message(channel_id=ALICE_DM, author_id=ALICE, content="go")
    await world.discord.wait_until(
        lambda: (
            len(world.discord.deleted_message_ids) >= 1
            and [m["content"] for m in world.discord.messages(ALICE_DM)] == [UNREACHABLE]
        ),
        timeout=10,
        what="the drafts replaced by the polite failure alone",
    )
    posted = [r for r in world.discord.requests if r.method == "POST" and "/messages" in r.path]
    assert len(posted) >= 2  # several draft messages had been posted before the failure


async def test_a_run_that_hits_the_step_limit_still_charges_its_tokens(world: World) -> None:
    for step in range(MAX_AGENT_STEPS + 2):
        world.llm.tool_call("calculate", {"expression": "1+1"}, call_id=f"call_{step}")
    await world.discord.user_message(channel_id=ALICE_DM, author_id=ALICE, content="loop")
    await world.discord.wait_for_messages(ALICE_DM, 1, timeout=20)
    assert len(world.llm.requests) >= MAX_AGENT_STEPS
    with sqlite3.connect(world.settings.usage_path) as conn:
        [(total,)] = conn.execute(
            "SELECT SUM(total_tokens) FROM mathbot_usage WHERE session_id = ?",
            (user_session_id(ALICE),),
        ).fetchall()
    assert total and total >= 15 * MAX_AGENT_STEPS  # 10 + 5 tokens per model request


async def test_two_users_in_one_guild_channel_do_not_share_memory(world: World) -> None:
    """Both are answered in the same channel (no threads there): per-user memory must keep
    Alice's question out of Bob's request, which per-channel memory would not."""
    world.llm.reply("noted")
    await world.discord.user_message(
        channel_id=NO_THREADS, author_id=ALICE, content="my number is 7", mention_bot=True
    )
    await world.discord.wait_for_messages(NO_THREADS, 1)
    world.llm.reply("what number?")
    await world.discord.user_message(
        channel_id=NO_THREADS, author_id=BOB, content="what is my number?", mention_bot=True
    )
    await world.discord.wait_for_messages(NO_THREADS, 2)
    assert FakeLLM.user_texts(world.llm.requests[1]) == ["what is my number?"]
    assert all(
        len(m["content"]) <= DISCORD_MESSAGE_CHARS for m in world.discord.messages(NO_THREADS)
    )

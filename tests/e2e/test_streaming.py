"""Streamed answers: posted early, drafts edited at a bounded pace, the final answer at once,
stored exactly as without streaming."""

from __future__ import annotations

import itertools

from bot.core.failures import UNREACHABLE
from bot.memory.keys import user_session_id
from tests.fakes.llm_server import FakeLLM
from tests.harness import ALICE, ALICE_DM, World

INTERVAL = 0.1
ANSWER = "The derivative of x^3 is 3x^2, because the power rule brings the exponent down. " * 2


async def dm(world: World, text: str) -> None:
    await world.discord.user_message(channel_id=ALICE_DM, author_id=ALICE, content=text)


async def stored(world: World, count: int) -> list[dict]:
    """Wait until the session holds `count` items (the turn is stored before the final edit)."""
    session = user_session_id(ALICE)
    await world.discord.wait_until(
        lambda: len(world.rows(session)) >= count, timeout=10, what=f"{count} stored items"
    )
    return world.rows(session)


def edits(world: World) -> list:
    return [r for r in world.discord.requests if r.method == "PATCH" and "/messages/" in r.path]


async def test_answer_is_posted_early_and_edited_at_a_bounded_pace(world: World) -> None:
    await world.restart_bot(streaming=True, stream_edit_interval=INTERVAL)
    world.llm.chunk_size, world.llm.chunk_delay = 6, 0.01
    world.llm.reply(ANSWER)
    await dm(world, "derivative of x^3?")
    rows = await stored(world, 2)
    await world.discord.wait_until(
        lambda: [m["content"] for m in world.discord.messages(ALICE_DM)] == [ANSWER.strip()],
        timeout=10,
        what="the final text",
    )
    assert world.llm.requests[0]["stream"] is True
    posts = [r for r in world.discord.requests if r.method == "POST" and r.path.endswith(
        f"/channels/{ALICE_DM}/messages")]  # fmt: skip
    assert len(posts) == 1
    assert len(posts[0].json["content"]) < len(ANSWER.strip())  # a draft came first
    patches = edits(world)
    assert len(patches) >= 2
    drafts = [posts[0].received_at] + [p.received_at for p in patches[:-1]]
    gaps = [later - earlier for earlier, later in itertools.pairwise(drafts)]
    assert min(gaps) >= INTERVAL * 0.9, gaps
    assert [r.get("role") for r in rows] == ["user", "assistant"]
    assert rows[1]["content"][0]["text"] == ANSWER


async def test_the_final_answer_does_not_wait_for_the_drafts_pace(world: World) -> None:
    interval = 2.0  # the first draft shows after 1 s, the next edit would wait 2 s more
    await world.restart_bot(streaming=True, stream_edit_interval=interval)
    world.llm.chunk_size, world.llm.chunk_delay = len(ANSWER) // 12 + 1, 0.1  # ~1.2 s
    world.llm.reply(ANSWER)
    await dm(world, "derivative of x^3?")
    await world.discord.wait_until(
        lambda: [m["content"] for m in world.discord.messages(ALICE_DM)] == [ANSWER.strip()],
        timeout=10,
        what="the final text",
    )
    [post] = [r for r in world.discord.requests if r.method == "POST" and r.path.endswith(
        f"/channels/{ALICE_DM}/messages")]  # fmt: skip
    assert len(post.json["content"]) < len(ANSWER.strip())  # a draft came first
    final = edits(world)[-1]
    assert final.json["content"] == ANSWER.strip()
    # The answer ended ~0.2 s after the draft: it is shown then, not a pace later.
    assert final.received_at - post.received_at < interval / 2


async def test_stored_turn_is_the_same_as_without_streaming(world: World) -> None:
    world.llm.reply(ANSWER)
    await dm(world, "derivative of x^3?")
    await world.discord.wait_for_messages(ALICE_DM, 1)
    plain = world.rows(user_session_id(ALICE))
    await world.restart_bot(streaming=True, stream_edit_interval=INTERVAL)
    world.llm.reply(ANSWER)
    await dm(world, "derivative of x^3?")
    rows = await stored(world, 4)

    def strip_ids(item: dict) -> dict:  # ids differ from one response to the next
        kept = {k: v for k, v in item.items() if k not in {"id", "provider_data"}}
        data = {k: v for k, v in item.get("provider_data", {}).items() if k != "response_id"}
        return {**kept, "provider_data": data}

    assert [strip_ids(r) for r in rows[2:]] == [strip_ids(r) for r in plain]


async def test_a_long_streamed_answer_continues_in_a_new_message(world: World) -> None:
    await world.restart_bot(streaming=True, stream_edit_interval=INTERVAL)
    long = "\n".join(f"line {i}: " + "y" * 50 for i in range(45))
    world.llm.chunk_size = 300
    world.llm.reply(long)
    await dm(world, "a long one")
    await stored(world, 2)
    await world.discord.wait_until(
        lambda: "\n".join(m["content"] for m in world.discord.messages(ALICE_DM)) == long,
        timeout=10,
        what="the whole long answer",
    )
    pieces = world.discord.messages(ALICE_DM)
    assert len(pieces) == 2 and all(len(p["content"]) <= 2000 for p in pieces)


async def test_a_failure_mid_stream_leaves_no_half_turn(world: World) -> None:
    await world.restart_bot(streaming=True, stream_edit_interval=INTERVAL)
    world.llm.reply("4")
    await dm(world, "what is 2+2?")
    await stored(world, 2)
    world.llm.chunk_size = 4
    world.llm.stream_then_drop("This answer breaks off in the middle of", after_chunks=3)
    await dm(world, "tell me a long story")
    await world.discord.wait_until(
        lambda: any(m["content"] == UNREACHABLE for m in world.discord.messages(ALICE_DM)),
        timeout=10,
        what="the polite failure in place of the draft",
    )
    assert len(world.rows(user_session_id(ALICE))) == 2
    world.llm.reply("8")
    await dm(world, "multiply that by 2")
    await stored(world, 4)
    assert FakeLLM.user_texts(world.llm.requests[-1]) == ["what is 2+2?", "multiply that by 2"]


async def test_gemini_style_streamed_tool_call_without_index_or_id(world: World) -> None:
    await world.restart_bot(streaming=True, stream_edit_interval=INTERVAL)
    world.llm.gemini_style_stream_tool_calls = True  # tool-call chunks carry no `index`
    world.llm.tool_call("calculate", {"expression": "2**10"}, call_id="")
    world.llm.reply("2^10 = 1024")
    await dm(world, "what is 2^10?")
    rows = await stored(world, 4)
    assert [r.get("role") or r.get("type") for r in rows] == [
        "user", "function_call", "function_call_output", "assistant",
    ]  # fmt: skip
    assert rows[1]["call_id"] and rows[1]["call_id"] == rows[2]["call_id"]
    assert '"result":"1024"' in rows[2]["output"].replace(" ", "")


async def test_two_gemini_style_tool_calls_in_one_message_stay_apart(world: World) -> None:
    await world.restart_bot(streaming=True, stream_edit_interval=INTERVAL)
    world.llm.gemini_style_stream_tool_calls = True
    world.llm.tool_calls(
        [("calculate", {"expression": "2+2"}, ""), ("calculate", {"expression": "3+3"}, "")]
    )
    world.llm.reply("4 and 6")
    await dm(world, "2+2 and 3+3?")
    rows = await stored(world, 6)
    outputs = [
        r["output"].replace(" ", "") for r in rows if r.get("type") == "function_call_output"
    ]
    assert len(outputs) == 2
    assert '"result":"4"' in outputs[0] and '"result":"6"' in outputs[1]

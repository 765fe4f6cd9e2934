"""Hostile and long answers end to end: Discord's limits hold, the caps users expect apply."""

from __future__ import annotations

from typing import Any

from bot.config.controls import Controls
from bot.memory.keys import user_session_id
from tests.harness import ALICE, ALICE_DM, World

# Facts of Discord's API, not the code's constants.
DISCORD_MESSAGE_CHARS = 2000
DISCORD_ATTACHMENTS = 10
MOST_MESSAGES = 5  # what a user is promised: a long answer takes at most five messages
INTERVAL = 0.1


def outgoing(world: World) -> list[Any]:
    """Every request by which the bot created or edited a message."""
    return [
        r
        for r in world.discord.requests
        if r.method in {"POST", "PATCH"}
        and ("/messages" in r.path or "/webhooks/" in r.path)
        and isinstance(r.json, dict)
    ]


def assert_within_discord_limits(world: World) -> None:
    """No message the bot sent or edited was over Discord's limits, and none was refused."""
    requests = outgoing(world)
    assert requests
    for request in requests:
        content = request.json.get("content") or ""
        assert len(content) <= DISCORD_MESSAGE_CHARS, (request.path, len(content))
        assert len(request.files) <= DISCORD_ATTACHMENTS
        assert request.status < 400, (request.path, request.status, request.response)


async def dm(world: World, text: str) -> None:
    await world.discord.user_message(channel_id=ALICE_DM, author_id=ALICE, content=text)


async def answered(world: World) -> list[dict[str, Any]]:
    """The bot's messages in Alice's DM once her turn is stored and the answer is final."""
    session = user_session_id(ALICE)
    await world.discord.wait_until(
        lambda: len(world.rows(session)) >= 2, timeout=20, what="the stored turn"
    )
    await world.discord.wait_until(
        lambda: any(
            "answer.md" in [a["filename"] for a in m["attachments"]]
            for m in world.discord.messages(ALICE_DM)
        ),
        timeout=20,
        what="answer.md attached",
    )
    return world.discord.messages(ALICE_DM)


def long_answer(lines: int) -> str:
    return "\n".join(
        f"step {i}: " + "the next line of a long derivation, " * 3 + "then" for i in range(lines)
    )


def attached_answer(world: World) -> bytes:
    [file] = [f for r in outgoing(world) for f in r.files if f[0] == "answer.md"]
    return file[1]


async def test_a_long_answer_takes_five_messages_and_attaches_the_whole_text(world: World) -> None:
    # about 30,000 characters, 16 messages' worth (under LLM_MAX_TOKENS's default: not cut)
    text = long_answer(250)
    world.llm.reply(text)
    await dm(world, "derive everything")
    messages = await answered(world)
    assert len(messages) <= MOST_MESSAGES
    assert all(0 < len(m["content"]) <= DISCORD_MESSAGE_CHARS for m in messages)
    assert "answer.md" in messages[-1]["content"]  # the user is told where the rest is
    assert attached_answer(world).decode() == text
    assert messages[0]["content"].startswith("step 0:")
    assert_within_discord_limits(world)


async def test_a_long_streamed_answer_drafts_and_ends_within_five_messages(world: World) -> None:
    await world.restart_bot(streaming=True, stream_edit_interval=INTERVAL)
    text = long_answer(250)
    world.llm.chunk_size, world.llm.chunk_delay = 4000, 0.02
    world.llm.reply(text)
    await dm(world, "derive everything, slowly")
    messages = await answered(world)
    assert len(messages) <= MOST_MESSAGES
    posted = [r for r in outgoing(world) if r.method == "POST"]
    assert len(posted) <= MOST_MESSAGES  # drafts never posted more than the final answer keeps
    assert attached_answer(world).decode() == text
    assert_within_discord_limits(world)


HOSTILE_ANSWERS = {
    "one long line": "x" * 9_000,
    "unclosed display openers": "\\[\n" * 3_000,
    "a long code block": "```\n" + "\n".join("print(1)" for _ in range(2_000)) + "\n```",
    "a long display block": "$$\n" + "\n".join("x + " * 40 for _ in range(200)) + "\n$$",
    "inline formulas": "$x^2$ " * 1_500,
    "backtick runs": "``a `b " * 1_500,
}


async def test_no_message_over_discord_limit_whatever_the_answer(world: World) -> None:
    """Every request the bot made, for every hostile answer, is within Discord's 2,000
    characters: a longer one is refused by Discord and the user would get nothing."""
    await world.restart_bot(controls=Controls(user_rate=None))  # six questions in a row
    session = user_session_id(ALICE)
    for turn, text in enumerate(HOSTILE_ANSWERS.values(), start=1):
        world.llm.reply(text)
        await dm(world, f"question {turn}")
        await world.discord.wait_until(
            lambda turn=turn: len(world.rows(session)) >= 2 * turn, timeout=20, what="the turn"
        )
    world.llm.reply("done")  # answered after every answer before it
    await dm(world, "last question")
    await world.discord.wait_for_message(ALICE_DM, lambda m: m["content"] == "done", timeout=20)
    assert sum("answer.md" in str(r.files) for r in outgoing(world)) >= 1
    assert_within_discord_limits(world)

"""Conversation quality end to end: /history, /export, edit to re-ask, attachments."""

from __future__ import annotations

import base64
import json

from bot.memory.keys import user_session_id
from bot.memory.transcript import EXPORT_FORMAT
from tests.fakes.llm_server import FakeLLM
from tests.harness import ALICE, ALICE_DM, CHANNEL, World

EPHEMERAL = 1 << 6
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


async def dm(world: World, text: str, **extra: object) -> dict:
    return await world.discord.user_message(
        channel_id=ALICE_DM, author_id=ALICE, content=text, **extra
    )


async def converse(world: World) -> None:
    world.llm.reply("4")
    await dm(world, "what is 2+2?")
    world.llm.tool_call("calculate", {"expression": "2**10"}, call_id="c1")
    world.llm.reply("1024")
    await dm(world, "and 2^10?")
    world.llm.reply("8")
    await dm(world, "multiply 4 by 2")
    await world.discord.wait_for_messages(ALICE_DM, 3, timeout=15)


async def test_history_shows_what_the_store_holds(world: World) -> None:
    await converse(world)
    interaction = await world.discord.slash_command(
        "history", user_id=ALICE, channel_id=CHANNEL, options={"turns": 2}
    )
    [shown] = await interaction.wait_for_followups(1)
    assert shown["flags"] & EPHEMERAL
    text = shown["content"]
    assert "last 2 of 3 stored exchanges" in text
    assert "and 2^10?" in text and "calculate(2**10)" in text and "1024" in text
    assert "multiply 4 by 2" in text and "**mathbot:** 8" in text
    assert "what is 2+2?" not in text


async def test_export_is_exactly_the_stored_conversation(world: World) -> None:
    await converse(world)
    interaction = await world.discord.slash_command("export", user_id=ALICE, channel_id=CHANNEL)
    [message] = await interaction.wait_for_followups(1)
    assert message["flags"] & EPHEMERAL
    upload = next(r for r in world.discord.requests if r.files and "/webhooks/" in r.path)
    name, data, _ = upload.files[0]
    assert name == "mathbot-conversation.json"
    document = json.loads(data)
    assert document["format"] == EXPORT_FORMAT
    assert document["session_id"] == user_session_id(ALICE)
    assert document["items"] == world.rows(user_session_id(ALICE))
    assert [e["question"] for e in document["exchanges"]] == [
        "what is 2+2?", "and 2^10?", "multiply 4 by 2",
    ]  # fmt: skip


async def test_editing_the_latest_question_replaces_the_turn(world: World) -> None:
    world.llm.reply("4")
    await dm(world, "what is 2+2?")
    world.llm.reply("6")
    question = await dm(world, "what is 2+3?")
    answers = await world.discord.wait_for_messages(ALICE_DM, 2)
    assert answers[1]["content"] == "6"

    world.llm.reply("5")
    await world.discord.edit_user_message(int(question["id"]), "what is 2+3, really?")
    await world.discord.wait_until(
        lambda: [m["content"] for m in world.discord.messages(ALICE_DM)] == ["4", "5"],
        timeout=10,
        what="the answer edited in place",
    )
    assert FakeLLM.user_texts(world.llm.requests[-1]) == ["what is 2+2?", "what is 2+3, really?"]
    rows = world.rows(user_session_id(ALICE))
    texts = [json.dumps(r) for r in rows]
    assert len(rows) == 4
    assert not any("what is 2+3?" in t for t in texts) and not any('"6"' in t for t in texts)


async def test_editing_an_older_question_changes_nothing(world: World) -> None:
    world.llm.reply("4")
    first = await dm(world, "what is 2+2?")
    world.llm.reply("6")
    await dm(world, "what is 3+3?")
    await world.discord.wait_for_messages(ALICE_DM, 2)
    await world.discord.edit_user_message(int(first["id"]), "what is 2+2+2?")
    world.llm.reply("9")
    await dm(world, "what is 4+5?")  # handled after the edit
    await world.discord.wait_for_messages(ALICE_DM, 3)
    assert [m["content"] for m in world.discord.messages(ALICE_DM)] == ["4", "6", "9"]
    assert len(world.llm.requests) == 3


async def test_a_text_attachment_is_read_with_the_question(world: World) -> None:
    world.llm.reply("The mean is 2.")
    await dm(world, "what is the mean?", attachments=[("data.csv", b"x\n1\n2\n3\n", "text/csv")])
    await world.discord.wait_for_messages(ALICE_DM, 1)
    [text] = FakeLLM.user_texts(world.llm.requests[0])
    assert text.startswith("what is the mean?") and "[attached file data.csv]" in text
    assert "1\n2\n3" in text


async def test_an_image_reaches_the_model_but_not_the_memory(world: World) -> None:
    world.llm.reply("That is a single pixel.")
    await dm(world, "what is in this picture?", attachments=[("dot.png", PNG, "image/png")])
    await world.discord.wait_for_messages(ALICE_DM, 1)
    [user] = [m for m in FakeLLM.messages(world.llm.requests[0]) if m["role"] == "user"]
    parts = {p["type"]: p for p in user["content"]}
    assert parts["image_url"]["image_url"]["url"].startswith("data:image/png;base64,")
    stored = json.dumps(world.rows(user_session_id(ALICE)))
    assert "base64" not in stored and "[an image was attached here]" in stored


async def test_images_are_refused_politely_when_the_model_cannot_read_them(world: World) -> None:
    await world.restart_bot(llm_images=False)
    await dm(world, "what is this?", attachments=[("dot.png", PNG, "image/png")])
    [reply] = await world.discord.wait_for_messages(ALICE_DM, 1)
    assert "can't read images" in reply["content"]
    assert world.llm.requests == []


async def test_an_unsupported_or_huge_file_is_refused(world: World) -> None:
    await dm(world, "run this", attachments=[("tool.exe", b"MZ", "application/octet-stream")])
    await dm(world, "read this", attachments=[("big.txt", b"1 " * 40_000, "text/plain")])
    replies = await world.discord.wait_for_messages(ALICE_DM, 2)
    assert "tool.exe" in replies[0]["content"] and "too big" in replies[1]["content"]
    assert world.llm.requests == []

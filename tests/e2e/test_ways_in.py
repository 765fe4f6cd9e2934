"""Ways in about another message, end to end: a mention that replies to it, and its Apps menu
"Ask mathbot"; and a user's messages answered in the order they arrived, files or not."""

from __future__ import annotations

import base64

from bot.memory.keys import user_session_id
from tests.fakes.discord_server import READ_MESSAGE_HISTORY
from tests.fakes.llm_server import FakeLLM
from tests.harness import ALICE, ALICE_DM, BOB, CHANNEL, GUILD, World

EPHEMERAL = 1 << 6
CAROL = 800000000000000009
HIDDEN = 900000000000000019  # a channel whose history the bot may not read
DISCORD_MESSAGE_CHARS = 2000  # Discord's limit for a message's content (without Nitro)
TYPED_TEXT_LIMIT = 4000  # characters of typed text one question may carry (docs/using.md)
TEXT_FILE_LIMIT = 50_000  # bytes of one text file (docs/using.md)
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


async def post(world: World, text: str, *, author: int = BOB, **extra: object) -> dict:
    """A message in the server channel that is not for the bot."""
    return await world.discord.user_message(
        channel_id=CHANNEL, author_id=author, content=text, **extra
    )


async def reply(world: World, to: dict, text: str, *, author: int = ALICE, **extra: object) -> dict:
    """A mention of the bot replying to message `to`, in `to`'s channel."""
    return await world.discord.user_message(
        channel_id=int(to["channel_id"]),
        author_id=author,
        content=text,
        mention_bot=True,
        reply_to=int(to["id"]),
        **extra,
    )


async def handled(world: World, question: dict) -> None:
    """Wait until the bot has seen Discord's answer to its post of the answer to `question`
    (in-process: a user replying within that millisecond is not something a test should race)."""
    assert world.bot is not None
    asked = world.bot._messages._asked.get(int(question["id"]))
    assert asked is not None
    await asked.ready.wait()


async def test_a_mention_replying_to_a_message_asks_about_it(world: World) -> None:
    world.discord.add_user(CAROL, "carol_99", global_name="Carol Ng")
    problem = await post(
        world,
        "Who can solve x^2 = 4?",
        author=CAROL,
        attachments=[("work.txt", b"I tried x = 2 only", "text/plain")],
    )
    world.llm.reply("x = 2 or x = -2")
    question = await reply(world, problem, "solve this")
    [answer] = await world.discord.wait_for_messages(int(question["id"]), 1)  # its thread
    assert answer["content"] == "x = 2 or x = -2"
    assert world.discord.threads[int(question["id"])]["name"] == "solve this"
    [text] = FakeLLM.user_texts(world.llm.requests[0])
    assert text.startswith("solve this")
    assert "by Carol Ng]" in text and "carol_99" not in text  # the display name
    assert "Who can solve x^2 = 4?" in text
    assert "[attached file work.txt]" in text and "I tried x = 2 only" in text


async def test_a_reply_whose_message_did_not_come_with_it_is_fetched(world: World) -> None:
    problem = await post(world, "what is 7*6?")
    world.llm.reply("42")
    question = await reply(world, problem, "check this", with_referenced=False)
    await world.discord.wait_for_messages(int(question["id"]), 1)
    [text] = FakeLLM.user_texts(world.llm.requests[0])
    assert "by bob]" in text and "what is 7*6?" in text


async def test_a_message_the_bot_cannot_read_gets_a_polite_line(world: World) -> None:
    problem = await post(world, "a problem, soon deleted")
    await world.discord.delete_user_message(int(problem["id"]))
    await reply(world, problem, "solve this")
    [line] = await world.discord.wait_for_messages(CHANNEL, 1)
    assert "can't read the message you replied to" in line["content"]

    world.discord.add_text_channel(GUILD, HIDDEN, name="hidden", bot_deny=READ_MESSAGE_HISTORY)
    await world.discord.announce_channel(HIDDEN)
    hidden = await world.discord.user_message(channel_id=HIDDEN, author_id=BOB, content="2x=6")
    await reply(world, hidden, "solve this", with_referenced=False)  # must be fetched: 403
    [line] = await world.discord.wait_for_messages(HIDDEN, 1)
    assert "can't read the message you replied to" in line["content"]
    assert world.llm.requests == []


async def test_a_reply_to_the_bots_answer_continues_its_conversation(world: World) -> None:
    world.discord.fail_next("POST", r"/channels/\d+/messages/\d+/threads", status=403)
    world.llm.reply("4")
    first = await world.discord.user_message(
        channel_id=CHANNEL, author_id=ALICE, content="what is 2+2?", mention_bot=True
    )
    [answer] = await world.discord.wait_for_messages(CHANNEL, 1)  # no thread: in the channel
    await handled(world, first)

    world.llm.reply("12")
    await reply(world, answer, "and times 3?")
    answers = await world.discord.wait_for_messages(CHANNEL, 2)
    assert answers[1]["content"] == "12"
    assert answers[1]["message_reference"]["channel_id"] == str(CHANNEL)  # answered in place
    assert world.discord.threads == {}
    # the conversation remembers the answer replied to: it is not sent again
    assert FakeLLM.user_texts(world.llm.requests[1]) == ["what is 2+2?", "and times 3?"]
    assert len(world.rows(user_session_id(ALICE))) == 4

    world.llm.reply("8")  # another user replying to it: their conversation has not seen it
    await reply(world, answer, "what about times 2?", author=BOB)
    await world.discord.wait_for_messages(CHANNEL, 3)
    [text] = FakeLLM.user_texts(world.llm.requests[2])
    assert text.startswith("what about times 2?") and "by mathbot]" in text and "\n4\n" in text


async def test_the_menu_in_a_server_answers_in_a_thread_on_the_message(world: World) -> None:
    problem = await post(world, "integrate x^2 from 0 to 3")
    world.llm.reply("9")
    menu = await world.discord.message_command(
        "Ask mathbot", user_id=ALICE, message_id=int(problem["id"])
    )
    callback = await menu.wait_for_callback()
    assert callback["type"] == 5 and callback["data"]["flags"] & EPHEMERAL
    thread_id = int(problem["id"])  # a thread started on a message has the message's id
    [answer] = await world.discord.wait_for_messages(thread_id, 1)
    assert answer["content"] == "9"
    [pointer] = await menu.wait_for_followups(1)
    assert f"<#{thread_id}>" in pointer["content"] and pointer["flags"] & EPHEMERAL
    [text] = FakeLLM.user_texts(world.llm.requests[0])
    assert "by bob]" in text and "integrate x^2 from 0 to 3" in text

    world.llm.reply("27")  # a follow-up in the thread continues that conversation
    await world.discord.user_message(
        channel_id=thread_id, author_id=ALICE, content="and to 3^(1/3)?"
    )
    await world.discord.wait_for_messages(thread_id, 2)
    assert FakeLLM.user_texts(world.llm.requests[1]) == [text, "and to 3^(1/3)?"]


async def test_the_menu_is_a_message_command_for_servers_dms_and_user_installs(
    world: World,
) -> None:
    [menu] = [c for c in world.discord.registered_commands if c["name"] == "Ask mathbot"]
    assert menu["type"] == 3 and menu["description"] == ""  # MESSAGE
    assert sorted(menu["integration_types"]) == [0, 1]  # guild install, user install
    assert sorted(menu["contexts"]) == [0, 1, 2]  # guilds, bot DMs, private channels


async def test_the_menu_in_a_dm_answers_privately(world: World) -> None:
    mine = await world.discord.user_message(
        channel_id=ALICE_DM, author_id=ALICE, content="my homework: 3*3"
    )
    world.llm.reply("9")
    await world.discord.wait_for_messages(ALICE_DM, 1)  # the DM itself was a question
    world.llm.reply("It is 9 because 3+3+3 = 9.")
    menu = await world.discord.message_command(
        "Ask mathbot", user_id=ALICE, message_id=int(mine["id"])
    )
    assert menu.payload["context"] == 1
    [answer] = await menu.wait_for_followups(1)
    assert answer["content"] == "It is 9 because 3+3+3 = 9." and answer["flags"] & EPHEMERAL
    assert world.discord.threads == {}
    text = FakeLLM.user_texts(world.llm.requests[1])[-1]
    assert "by alice]" in text and "my homework: 3*3" in text


async def test_too_much_about_a_message_is_refused_before_any_download(world: World) -> None:
    long = await post(world, "x" * DISCORD_MESSAGE_CHARS)
    await reply(world, long, "y" * (TYPED_TEXT_LIMIT - DISCORD_MESSAGE_CHARS))
    files = [(f"part{i}.txt", b"1+1", "text/plain") for i in range(3)]
    many = await post(world, "three files", attachments=files)
    await reply(world, many, "and two more", attachments=files[:2])
    too_big = [("big.txt", b"1" * (TEXT_FILE_LIMIT + 1), "text/plain")]
    big = await post(world, "a big file", attachments=too_big)
    await reply(world, big, "read it")
    refusals = await world.discord.wait_for_messages(CHANNEL, 3)
    assert "too long" in refusals[0]["content"] and "4,000" in refusals[0]["content"]
    assert "at most 4 files" in refusals[1]["content"]
    assert "too big" in refusals[2]["content"]

    menu = await world.discord.message_command(
        "Ask mathbot", user_id=ALICE, message_id=int(big["id"])
    )
    callback = await menu.wait_for_callback()
    assert callback["type"] == 4 and callback["data"]["flags"] & EPHEMERAL
    assert "too big" in callback["data"]["content"]
    assert world.discord.downloads_served == 0
    assert world.llm.requests == []


async def test_a_message_with_a_file_is_answered_before_a_later_one(world: World) -> None:
    gate = world.discord.hold_downloads("data.csv")
    world.llm.reply("the mean is 2")
    world.llm.reply("hello")
    await world.discord.user_message(
        channel_id=ALICE_DM,
        author_id=ALICE,
        content="what is the mean?",
        attachments=[("data.csv", b"x\n1\n2\n3\n", "text/csv")],
    )
    await world.discord.wait_until(lambda: world.discord.downloads_held == 1, what="a download")
    await world.discord.user_message(channel_id=ALICE_DM, author_id=ALICE, content="hi")
    typing = f"/channels/{ALICE_DM}/typing"
    await world.discord.wait_until(
        lambda: any(r.path == typing for r in world.discord.requests),
        what="the second message's turn under way",
    )
    gate.set()
    answers = await world.discord.wait_for_messages(ALICE_DM, 2)
    assert [a["content"] for a in answers] == ["the mean is 2", "hello"]
    assert FakeLLM.user_texts(world.llm.requests[0])[0].startswith("what is the mean?")
    assert FakeLLM.user_texts(world.llm.requests[1])[-1] == "hi"


async def test_a_refused_download_does_not_hold_up_later_messages(world: World) -> None:
    world.llm.reply("hello")
    await world.discord.user_message(
        channel_id=ALICE_DM,
        author_id=ALICE,
        content="read this",
        attachments=[("notes.txt", b"\xff\xfe not utf-8", "text/plain")],
    )
    await world.discord.user_message(channel_id=ALICE_DM, author_id=ALICE, content="hi")
    replies = await world.discord.wait_for_messages(ALICE_DM, 2)
    assert {r["content"] for r in replies} >= {"hello"}
    assert any("not UTF-8" in r["content"] for r in replies)


async def test_an_image_in_the_message_replied_to_reaches_the_model(world: World) -> None:
    picture = await post(world, "", attachments=[("graph.png", PNG, "image/png")])
    world.llm.reply("a dot")
    question = await reply(world, picture, "what is this?")
    await world.discord.wait_for_messages(int(question["id"]), 1)
    [user] = [m for m in FakeLLM.messages(world.llm.requests[0]) if m["role"] == "user"]
    kinds = [part["type"] for part in user["content"]]
    assert kinds == ["text", "image_url"]

"""Drafts that read like answers: /math streamed in place, progress while tools run, alt text."""

from __future__ import annotations

import asyncio
import itertools

from bot.render.formula_png import render_latex_png
from tests.fakes.discord_server import FakeInteraction, RecordedRequest
from tests.harness import ALICE, ALICE_DM, CHANNEL, World

INTERVAL = 0.1
QUESTION = "derivative of x^3?"
HEADING = f"> {QUESTION}\n"
ANSWER = "The derivative of $x^3$ is $3x^2$, by the power rule.\n" * 4
SHOWN = "The derivative of x³ is 3x², by the power rule.\n" * 4  # what a reader sees
DISCORD_DESCRIPTION_LIMIT = 1024  # characters of an attachment's description (Discord's API)


def webhook_edits(world: World, interaction: FakeInteraction) -> list[RecordedRequest]:
    """The successful edits of the interaction's response, in order."""
    path = f"/webhooks/{world.discord.application_id}/{interaction.token}/messages/@original"
    return [
        r
        for r in world.discord.requests
        if r.method == "PATCH" and r.path == path and r.status == 200
    ]


async def ask(world: World, question: str = QUESTION) -> FakeInteraction:
    return await world.discord.slash_command(
        "math", user_id=ALICE, channel_id=CHANNEL, options={"question": question}
    )


async def shows(world: World, interaction: FakeInteraction, content: str) -> None:
    await world.discord.wait_until(
        lambda: (interaction.original() or {}).get("content") == content,
        timeout=15,
        what=f"the response to show {content[:40]!r}",
    )


async def test_math_streams_into_its_response_saying_what_runs_meanwhile(world: World) -> None:
    await world.restart_bot(streaming=True, stream_edit_interval=INTERVAL)
    world.llm.chunk_size, world.llm.chunk_delay = 6, 0.01
    world.llm.tool_call("calculate", {"expression": "diff(x**3, x)"}, call_id="c1")
    world.llm.delay(2, ANSWER)  # the model takes its time after the tool: the progress shows
    interaction = await ask(world)
    final = HEADING + SHOWN.strip()
    await shows(world, interaction, final)

    drafts = [r.json["content"] for r in webhook_edits(world, interaction)]
    assert drafts[0] == HEADING + "*calculating…*"  # while `calculate` runs
    assert drafts[-1] == final and "calculating" not in final
    assert all(d.startswith(HEADING) for d in drafts)  # the question stays on top
    assert any("3x²" in d for d in drafts[1:-1])  # Unicode while being written, not raw LaTeX
    assert not any("$3x^2$" in d for d in drafts)
    assert interaction.followup_message_ids == []  # no extra message left behind
    assert [m["id"] for m in world.discord.messages(CHANNEL)] == [
        str(interaction.original_message_id)
    ]
    times = [r.received_at for r in webhook_edits(world, interaction)][:-1]  # the final: at once
    assert min(later - earlier for earlier, later in itertools.pairwise(times)) >= INTERVAL * 0.9


async def test_a_long_math_answer_continues_in_a_followup(world: World) -> None:
    await world.restart_bot(streaming=True, stream_edit_interval=INTERVAL)
    long = "\n".join(f"line {i}: " + "y" * 50 for i in range(45))
    world.llm.chunk_size = 300
    world.llm.reply(long)
    interaction = await ask(world, "a long one")
    await world.discord.wait_until(
        lambda: (
            "\n".join(m["content"] for m in world.discord.messages(CHANNEL))
            == f"> a long one\n{long}"
        ),
        timeout=15,
        what="the whole long answer",
    )
    pieces = world.discord.messages(CHANNEL)
    assert len(pieces) == 2 and all(len(p["content"]) <= 2000 for p in pieces)
    assert pieces[0]["id"] == str(interaction.original_message_id)
    assert interaction.followup_message_ids == [int(pieces[1]["id"])]


async def test_near_the_end_of_the_token_the_answer_moves_to_the_channel(world: World) -> None:
    await world.restart_bot(streaming=True, stream_edit_interval=INTERVAL)
    world.discord.interaction_age = 15 * 60 - 30  # Discord lets the token work 30 s more
    world.llm.reply("4")
    interaction = await ask(world, "what is 2+2?")
    await world.discord.wait_until(
        lambda: any(m["content"] == "> what is 2+2?\n4" for m in world.discord.messages(CHANNEL)),
        timeout=15,
        what="the answer in the channel",
    )
    original = interaction.original()
    assert original is not None
    assert original["content"].startswith("> what is 2+2?\n*This answer is taking longer")
    assert interaction.followup_message_ids == []


async def test_past_the_token_the_answer_still_arrives(world: World) -> None:
    world.discord.interaction_age = 15 * 60 + 5  # the token has run out (a very slow answer)
    world.llm.reply("4")
    interaction = await ask(world, "what is 2+2?")
    await world.discord.wait_until(
        lambda: any(m["content"] == "> what is 2+2?\n4" for m in world.discord.messages(CHANNEL)),
        timeout=15,
        what="the answer in the channel",
    )
    refused = [r for r in world.discord.requests if r.path.startswith("/webhooks/")]
    assert refused and all(r.status == 401 and r.response["code"] == 50027 for r in refused)
    assert interaction.callback_type == 5


async def test_formula_images_and_graphs_carry_alt_text(world: World) -> None:
    await world.restart_bot(streaming=True, stream_edit_interval=INTERVAL)
    # load the fonts first: on a busy machine the first formula could overrun the answer's
    # image budget and be shown as code (no image, so nothing to describe)
    assert await asyncio.to_thread(render_latex_png, "x^2") is not None
    world.llm.tool_call(
        "plot", {"functions": ["sin(x)"], "x_min": "0", "x_max": "2*pi"}, call_id="p1"
    )
    world.llm.delay(2, "Here:\n$$x = \\frac{-b \\pm \\sqrt{b^2 - 4ac}}{2a}$$\nand the graph.")
    await world.discord.user_message(channel_id=ALICE_DM, author_id=ALICE, content="show me")
    await world.discord.wait_until(
        lambda: any(r.files for r in world.discord.requests),
        timeout=20,
        what="the upload of the answer's pictures",
    )
    in_dm = f"/channels/{ALICE_DM}/messages"
    drafts = [
        r.json.get("content")
        for r in world.discord.requests
        if r.path.startswith(in_dm) and r.method in ("POST", "PATCH") and not r.files
    ]
    assert "*drawing the graph…*" in drafts  # while `plot` runs
    [upload] = [r for r in world.discord.requests if r.files]
    described = {a["filename"]: a.get("description", "") for a in upload.json["attachments"]}
    assert set(described) == {"formula-1.png", "plot-1.png"}
    assert "√" in described["formula-1.png"] and "b²" in described["formula-1.png"]
    assert described["plot-1.png"].startswith("Graph: ") and "sin(x)" in described["plot-1.png"]
    assert all(0 < len(d) <= DISCORD_DESCRIPTION_LIMIT for d in described.values())
    [message] = world.discord.messages(ALICE_DM)
    assert {a["filename"]: a["description"] for a in message["attachments"]} == described
    assert "drawing" not in message["content"]

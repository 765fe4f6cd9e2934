"""Health and metrics end to end: the real bot serves `/healthz` and `/metrics` over HTTP."""

from __future__ import annotations

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from bot.config.controls import Controls
from bot.discord_app.client import MathBot
from bot.observe.server import ObservabilityServer
from tests.harness import ALICE, ALICE_DM, BOB, BOB_DM, CHANNEL, World


def server_of(bot: MathBot) -> ObservabilityServer:
    [server] = [s for s in bot.assistant.services if isinstance(s, ObservabilityServer)]
    assert server.host == "127.0.0.1" and server.port
    return server


async def get(bot: MathBot, path: str) -> tuple[int, str, str]:
    server = server_of(bot)
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://{server.host}:{server.port}{path}") as response,
    ):
        return response.status, response.headers["Content-Type"], await response.text()


async def samples(bot: MathBot) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    status, content_type, text = await get(bot, "/metrics")
    assert status == 200 and content_type.startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_healthz_and_metrics_count_a_real_conversation(world: World) -> None:
    bot = await world.restart_bot(metrics_port=0)
    await world.discord.wait_for_ready()
    assert await get(bot, "/healthz") == (200, "text/plain; charset=utf-8", "ok\n")

    world.llm.tool_call("calculate", {"expression": "2**10"}, call_id="c1")
    world.llm.tool_call("calculate", {"expression": "__import__('os')"}, call_id="c2")
    world.llm.reply("1024")
    await world.discord.user_message(channel_id=ALICE_DM, author_id=ALICE, content="2^10?")
    await world.discord.wait_for_messages(ALICE_DM, 1, timeout=15)
    world.llm.reply("4")
    question = await world.discord.user_message(
        channel_id=CHANNEL, author_id=ALICE, content="2+2?", mention_bot=True
    )
    thread_id = int(question["id"])  # a thread started on a message has the message's id
    await world.discord.wait_for_messages(thread_id, 1)
    world.llm.reply("5")
    await world.discord.user_message(channel_id=thread_id, author_id=ALICE, content="+1?")
    await world.discord.wait_for_messages(thread_id, 2)
    world.llm.reply("6")
    slash = await world.discord.slash_command(
        "math", user_id=BOB, channel_id=CHANNEL, options={"question": "2*3"}
    )
    await slash.wait_for_response()

    found = await samples(bot)
    for way in ("dm", "mention", "thread", "slash"):
        assert found[("mathbot_questions_total", (("way", way),))] == 1, way
    assert found[("mathbot_answers_total", (("outcome", "answered"),))] == 4
    assert found[("mathbot_answer_seconds_count", ())] == 4
    # The fake model charges 10 input and 5 output tokens per response: 3 + 1 + 1 + 1.
    assert found[("mathbot_model_tokens_total", (("kind", "input"),))] == 60
    assert found[("mathbot_model_tokens_total", (("kind", "output"),))] == 30
    ok = (("outcome", "ok"), ("tool", "calculate"))
    error = (("outcome", "error"), ("tool", "calculate"))
    assert found[("mathbot_tool_calls_total", ok)] == 1
    assert found[("mathbot_tool_calls_total", error)] == 1
    assert found[("mathbot_turns_in_flight", ())] == 0
    assert found[("mathbot_discord_connected", ())] == 1
    assert ("mathbot_event_loop_lag_seconds", ()) in found


async def test_busy_refusals_and_turns_in_flight(world: World) -> None:
    controls = Controls(max_concurrent_model_calls=1, max_queued_turns=0)
    bot = await world.restart_bot(metrics_port=0, controls=controls)
    world.llm.hang()
    await world.discord.user_message(channel_id=ALICE_DM, author_id=ALICE, content="slow")
    await world.llm.wait_for_requests(1)
    await world.discord.user_message(channel_id=BOB_DM, author_id=BOB, content="another")
    [busy] = await world.discord.wait_for_messages(BOB_DM, 1)
    assert "busy" in busy["content"]
    found = await samples(bot)
    assert found[("mathbot_busy_refusals_total", ())] == 1
    assert found[("mathbot_answers_total", (("outcome", "refused"),))] == 1
    assert found[("mathbot_turns_in_flight", ())] == 1


async def test_healthz_is_503_with_the_reason_when_discord_is_gone(world: World) -> None:
    bot = await world.restart_bot(metrics_port=0)
    await world.discord.wait_for_ready()
    assert (await get(bot, "/healthz"))[0] == 200
    await world.discord.close()  # the gateway goes away and does not come back
    await bot.wait_for("disconnect", timeout=10)
    status, _, text = await get(bot, "/healthz")
    assert (status, text) == (503, "not connected to Discord\n")
    assert (await samples(bot))[("mathbot_discord_connected", ())] == 0


async def test_no_server_without_metrics_port(world: World) -> None:
    assert world.settings.metrics_port is None
    assert world.bot is not None
    assert not [s for s in world.bot.assistant.services if isinstance(s, ObservabilityServer)]

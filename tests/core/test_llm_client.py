"""The bot's model client: what it sends is what the stock openai client sends, over aiohttp."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from agents import RunConfig, Runner
from openai import AsyncOpenAI
from openai._vendor.httpx_aiohttp import AiohttpTransport

from bot.config.settings import Settings, load_settings
from bot.core.agent import build_agent, build_model
from bot.core.llm_client import LeanCompletions, build_client
from bot.limits.stream_share import StreamPacer
from tests.fakes.llm_server import FakeLLM

MODEL = "gemini-2.5-flash"

# A conversation with every kind of message the bot sends: system, user text, a user image,
# an assistant tool call, its output, an assistant answer with content parts.
MESSAGES: list[dict[str, Any]] = [
    {"role": "system", "content": "You are mathbot."},
    {"role": "user", "content": "what is 2+2? ünïcødé ∫ x² dx"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "calculate", "arguments": '{"expression": "2+2"}'},
            }
        ],
    },
    {"role": "tool", "tool_call_id": "call_1", "content": "4"},
    {"role": "assistant", "content": [{"type": "text", "text": "4"}]},
    {
        "role": "user",
        "content": [
            {"type": "text", "text": "and this picture?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        ],
    },
]
TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "calculate",
            "description": "Evaluate an expression.",
            "parameters": {
                "type": "object",
                "properties": {"expression": {"type": "string"}},
                "required": ["expression"],
                "additionalProperties": False,
            },
            "strict": True,
        },
    }
]


@pytest.fixture
async def fake() -> AsyncIterator[FakeLLM]:
    async with FakeLLM() as server:
        yield server


def settings_for(fake: FakeLLM) -> Settings:
    env = {"DISCORD_TOKEN": "a.b.c", "LLM_API_KEY": "k", "LLM_BASE_URL": fake.base_url}
    return load_settings(env, dotenv_path=None)


@pytest.mark.parametrize("stream", [False, True])
async def test_requests_are_the_same_json_as_the_stock_clients(fake: FakeLLM, stream: bool) -> None:
    stock = AsyncOpenAI(base_url=fake.base_url, api_key="k", max_retries=0)
    lean = build_client(settings_for(fake))
    assert isinstance(lean.chat.completions, LeanCompletions)
    options: dict[str, Any] = {
        "model": MODEL,
        "messages": iter(MESSAGES),  # any iterable, as the SDK may pass
        "tools": TOOLS,
        "tool_choice": "auto",
        "temperature": 0.5,
        "extra_body": {"reasoning_effort": "low"},
        "extra_headers": {"X-Test": "1"},
    }
    if stream:
        options |= {"stream": True, "stream_options": {"include_usage": True}}
    try:
        for client in (stock, lean):
            fake.reply("4")
            options["messages"] = iter(MESSAGES)
            response = await client.chat.completions.create(**options)
            if stream:
                chunks = [chunk async for chunk in response]
                assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
            else:
                assert response.choices[0].message.content == "4"
    finally:
        await stock.close()
        await lean.close()
    sent_by_stock, sent_by_lean = await fake.wait_for_requests(2)
    assert sent_by_lean == sent_by_stock
    assert sent_by_lean["messages"] == MESSAGES and sent_by_lean["tools"] == TOOLS
    assert sent_by_lean["reasoning_effort"] == "low"
    assert fake.headers[1]["X-Test"] == "1"


async def test_without_tools_no_tools_key_is_sent(fake: FakeLLM) -> None:
    lean = build_client(settings_for(fake))
    fake.reply("hi")
    try:
        await lean.chat.completions.create(model=MODEL, messages=MESSAGES[:2])
    finally:
        await lean.close()
    [request] = await fake.wait_for_requests(1)
    assert "tools" not in request and request["messages"] == MESSAGES[:2]


async def test_the_agent_runs_over_aiohttp_and_the_client_closes(fake: FakeLLM) -> None:
    settings = settings_for(fake)
    client = build_client(settings)
    assert isinstance(client._client._transport, AiohttpTransport)
    agent = build_agent(build_model(settings, client, StreamPacer()))
    fake.reply("4")
    try:
        result = await Runner.run(agent, "2+2?", run_config=RunConfig(tracing_disabled=True))
    finally:
        await client.close()
    assert result.final_output == "4"
    [request] = await fake.wait_for_requests(1)
    assert FakeLLM.user_texts(request) == ["2+2?"] and request["messages"][0]["role"] == "system"
    assert client.is_closed()


async def _answers(client: AsyncOpenAI, stream: bool) -> list[dict[str, Any]]:
    """What the client parsed, as plain data (ids and timestamps differ between answers)."""
    options: dict[str, Any] = {"model": MODEL, "messages": MESSAGES[:2], "stream": stream}
    response = await client.chat.completions.create(**options)
    parsed = [chunk async for chunk in response] if stream else [response]
    return [p.model_dump(exclude={"id", "created"}) for p in parsed]


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
@pytest.mark.parametrize("gemini_style", [False, True], ids=["openai", "gemini"])
async def test_answers_parse_as_the_stock_client_parses_them_by_pydantic(
    fake: FakeLLM, monkeypatch: pytest.MonkeyPatch, stream: bool, gemini_style: bool
) -> None:
    import openai._base_client

    fake.gemini_style_stream_tool_calls = gemini_style  # tool calls without `index`
    constructed = 0
    construct_type = openai._base_client.construct_type

    def counting(**kwargs: Any) -> Any:
        nonlocal constructed
        constructed += 1
        return construct_type(**kwargs)

    monkeypatch.setattr(openai._base_client, "construct_type", counting)
    stock = AsyncOpenAI(base_url=fake.base_url, api_key="k", max_retries=0)
    lean = build_client(settings_for(fake))
    try:
        found = []
        for client in (stock, lean):
            fake.tool_call("calculate", {"expression": "2+2"}, text="Let me check. ")
            constructed = 0
            found.append(await _answers(client, stream))
            by_client = constructed
    finally:
        await stock.close()
        await lean.close()
    assert found[0] == found[1]
    assert any("calculate" in str(answer) for answer in found[1])
    if gemini_style and stream:
        assert by_client > 0  # the chunks validation refuses take the client's lenient path
    else:
        assert by_client == 0  # pydantic built every answer: the fast path

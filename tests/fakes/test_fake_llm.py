"""The fake Chat Completions server, driven through the real openai and openai-agents clients."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import jsonschema
import openai
import pytest
import referencing
from agents import (
    Agent,
    ModelBehaviorError,
    OpenAIChatCompletionsModel,
    RunConfig,
    Runner,
    function_tool,
)
from openai import AsyncOpenAI
from openai.types.responses import ResponseTextDeltaEvent
from referencing.jsonschema import DRAFT202012

from tests.fakes.llm_server import FakeLLM

MODEL = "gemini-2.5-flash"
RUN_CONFIG = RunConfig(tracing_disabled=True)
# A vendored subset of OpenAI's official OpenAPI document: see tests/specs/README.md.
SPEC_PATH = Path(__file__).resolve().parents[1] / "specs" / "openai-openapi.json"

added: list[tuple[int, int]] = []


@function_tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    added.append((a, b))
    return a + b


@pytest.fixture
async def fake() -> AsyncIterator[FakeLLM]:
    server = FakeLLM()
    await server.start()
    yield server
    async with asyncio.timeout(3):  # close() must never hang, even on hung requests
        await server.close()


@pytest.fixture
async def client(fake: FakeLLM) -> AsyncIterator[AsyncOpenAI]:
    api = AsyncOpenAI(base_url=fake.base_url, api_key="test-key", max_retries=0, timeout=5)
    yield api
    await api.close()


@pytest.fixture
def agent(client: AsyncOpenAI) -> Agent[Any]:
    added.clear()
    return Agent(
        name="mathbot",
        instructions="You are a math assistant.",
        model=OpenAIChatCompletionsModel(model=MODEL, openai_client=client),
        tools=[add],
    )


async def ask(client: AsyncOpenAI, text: str = "hi") -> Any:
    return await client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": text}]
    )


# ------------------------------------------------------------------------ plain replies


async def test_scripted_reply_is_returned_and_request_recorded(
    fake: FakeLLM, client: AsyncOpenAI
) -> None:
    fake.reply("The answer is 4.", usage=(12, 7))

    completion = await ask(client, "what is 2+2?")

    assert fake.base_url.startswith("http://127.0.0.1:") and fake.base_url.endswith("/v1/")
    assert completion.choices[0].message.content == "The answer is 4."
    assert completion.choices[0].finish_reason == "stop"
    assert completion.model == MODEL
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.total_tokens) == (12, 19)
    [request] = await fake.wait_for_requests(1)
    assert request["model"] == MODEL
    assert FakeLLM.user_texts(request) == ["what is 2+2?"]
    assert fake.headers[0]["Authorization"] == "Bearer test-key"
    assert fake.headers[0]["authorization"] == "Bearer test-key"


async def test_default_responder_echoes_last_user_text(fake: FakeLLM, client: AsyncOpenAI) -> None:
    completion = await client.chat.completions.create(
        model=MODEL,
        messages=[
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": [{"type": "text", "text": "second"}]},
        ],
    )
    assert completion.choices[0].message.content == "echo: second"
    assert FakeLLM.user_texts(fake.requests[0]) == ["first", "second"]
    assert [m["role"] for m in FakeLLM.messages(fake.requests[0])] == ["user", "assistant", "user"]

    fake.default = lambda body: f"{len(body['messages'])} messages"
    fake.reply("")  # an empty reply is allowed, and is consumed before the default
    assert (await ask(client)).choices[0].message.content == ""
    assert (await ask(client)).choices[0].message.content == "1 messages"


async def test_models_endpoint_lists_models(client: AsyncOpenAI) -> None:
    models = [model.id async for model in await client.models.list()]
    assert models == [MODEL]


async def test_delayed_answer_does_not_block_other_requests(
    fake: FakeLLM, client: AsyncOpenAI
) -> None:
    fake.delay(0.3, "slow")
    fake.reply("fast")
    slow = asyncio.create_task(ask(client, "one"))
    await fake.wait_for_requests(1)  # the slow step is consumed by the first request
    fast = asyncio.create_task(ask(client, "two"))

    done, _ = await asyncio.wait({slow, fast}, return_when=asyncio.FIRST_COMPLETED, timeout=3)

    assert done == {fast}
    assert fast.result().choices[0].message.content == "fast"
    assert (await slow).choices[0].message.content == "slow"


# ------------------------------------------------------------------------ agents SDK


async def test_agent_tool_call_round_trip(fake: FakeLLM, agent: Agent[Any]) -> None:
    fake.tool_call("add", {"a": 2, "b": 3}, call_id="call_add_1")
    fake.reply("2 + 3 = 5")

    result = await Runner.run(agent, "hi", run_config=RUN_CONFIG)

    assert result.final_output == "2 + 3 = 5"
    assert added == [(2, 3)]
    first, second = await fake.wait_for_requests(2)
    assert first["tools"][0]["function"]["name"] == "add"
    assistant, tool = FakeLLM.messages(second)[-2:]
    assert assistant["tool_calls"][0]["id"] == "call_add_1"
    assert tool == {"role": "tool", "tool_call_id": "call_add_1", "content": "5"}


async def test_several_tool_calls_in_one_message(fake: FakeLLM, agent: Agent[Any]) -> None:
    fake.tool_calls([("add", {"a": 1, "b": 1}, "c1"), ("add", '{"a": 2, "b": 2}', "c2")])
    fake.reply("2 and 4")

    result = await Runner.run(agent, "hi", run_config=RUN_CONFIG)

    assert result.final_output == "2 and 4"
    tool_messages = [m for m in FakeLLM.messages(fake.requests[1]) if m["role"] == "tool"]
    assert [(m["tool_call_id"], m["content"]) for m in tool_messages] == [("c1", "2"), ("c2", "4")]


async def test_empty_tool_call_id_is_rejected_by_the_sdk(fake: FakeLLM, agent: Agent[Any]) -> None:
    """Gemini's compat layer may send ``"id": ""``; openai-agents 0.24 refuses to run the tool.

    Raised from ``agents/run_internal/tool_planning.py`` (``should_keep`` inside
    ``_dedupe_processed_response_invocations``) before the tool executes.
    """
    fake.tool_call("add", {"a": 2, "b": 3}, call_id="")
    fake.reply("never requested")

    with pytest.raises(ModelBehaviorError, match="non-empty string call ID"):
        await Runner.run(agent, "hi", run_config=RUN_CONFIG)

    assert added == []
    assert len(fake.requests) == 1
    assert fake.pending_steps == 1


async def test_wrong_shape_body_surfaces_as_model_behavior_error(
    fake: FakeLLM, agent: Agent[Any]
) -> None:
    fake.garbage('{"candidates": []}')  # valid JSON, but not a chat completion
    with pytest.raises(ModelBehaviorError, match="no choices"):
        await Runner.run(agent, "hi", run_config=RUN_CONFIG)


# ------------------------------------------------------------------------ streaming


async def test_run_streamed_yields_text_deltas(fake: FakeLLM, agent: Agent[Any]) -> None:
    text = "The derivative of x^2 is 2x."
    fake.reply(text)

    result = Runner.run_streamed(agent, "hi", run_config=RUN_CONFIG)
    deltas = [
        event.data.delta
        async for event in result.stream_events()
        if event.type == "raw_response_event" and isinstance(event.data, ResponseTextDeltaEvent)
    ]

    assert len(deltas) == -(-len(text) // fake.chunk_size) > 1
    assert "".join(deltas) == text
    assert result.final_output == text
    assert fake.requests[0]["stream"] is True


@pytest.mark.parametrize("gemini_style", [False, True], ids=["openai", "gemini"])
async def test_run_streamed_tool_call_round_trip(
    fake: FakeLLM, agent: Agent[Any], gemini_style: bool
) -> None:
    fake.gemini_style_stream_tool_calls = gemini_style
    fake.tool_call("add", {"a": 20, "b": 22}, call_id="call_s")
    fake.reply("42")

    result = Runner.run_streamed(agent, "hi", run_config=RUN_CONFIG)
    async for _ in result.stream_events():
        pass

    assert result.final_output == "42"
    assert added == [(20, 22)]
    tool = FakeLLM.messages(fake.requests[1])[-1]
    assert tool == {"role": "tool", "tool_call_id": "call_s", "content": "42"}


async def test_raw_stream_chunks_and_usage(fake: FakeLLM, client: AsyncOpenAI) -> None:
    fake.gemini_style_stream_tool_calls = True
    fake.tool_call("add", {"a": 1, "b": 2}, call_id="g1", text="Let me add.")

    stream = await client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]

    assert {chunk.id for chunk in chunks} == {chunks[0].id}
    assert all(chunk.object == "chat.completion.chunk" for chunk in chunks)
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert content == "Let me add."
    [call] = [tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or []]
    assert call.index is None  # Gemini omits it
    assert call.id == "g1"
    assert call.function is not None
    assert (call.function.name, call.function.arguments) == ("add", '{"a": 1, "b": 2}')
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 15


async def test_stream_pause_exposes_partial_output(fake: FakeLLM, client: AsyncOpenAI) -> None:
    fake.reply("0123456789abcdef")
    release = fake.stream_pause(after_chunks=1)

    stream = await client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "hi"}], stream=True
    )
    received = ""
    async for chunk in stream:
        received += chunk.choices[0].delta.content or ""
        if received == "01234567":
            async with asyncio.timeout(2):
                await fake.stream_paused.wait()
            release.set()

    assert received == "0123456789abcdef"


# ------------------------------------------------------------------------ failures


@pytest.mark.parametrize(
    ("status", "exc_type"),
    [
        (429, openai.RateLimitError),
        (401, openai.AuthenticationError),
        (500, openai.InternalServerError),
        (503, openai.InternalServerError),
        (400, openai.BadRequestError),
    ],
)
async def test_errors_map_to_openai_exceptions(
    fake: FakeLLM, client: AsyncOpenAI, status: int, exc_type: type[openai.APIStatusError]
) -> None:
    fake.error(status, message="scripted failure", headers={"Retry-After": "7"})

    with pytest.raises(exc_type) as caught:
        await ask(client)

    assert caught.value.status_code == status
    assert caught.value.response.headers["retry-after"] == "7"
    assert caught.value.body == {
        "message": "scripted failure",
        "type": caught.value.body["type"],  # type: ignore[index]
        "param": None,
        "code": caught.value.code,
    }
    assert "scripted failure" in str(caught.value)


async def test_error_reaches_agent_runner(fake: FakeLLM, agent: Agent[Any]) -> None:
    fake.error(429, headers={"Retry-After": "1"})
    with pytest.raises(openai.RateLimitError):
        await Runner.run(agent, "hi", run_config=RUN_CONFIG)


async def test_hang_times_out_client_and_close_does_not_hang(
    fake: FakeLLM, client: AsyncOpenAI
) -> None:
    fake.hang()
    with pytest.raises(openai.APITimeoutError):
        await client.with_options(timeout=0.2).chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "hi"}]
        )
    fake.hang()  # a second one is still pending on the server when the fixture closes it
    pending = asyncio.create_task(ask(client))
    await fake.wait_for_requests(2)
    async with asyncio.timeout(2):
        await fake.close()
    with pytest.raises(openai.APIConnectionError):
        await pending


async def test_disconnect_is_a_connection_error(fake: FakeLLM, client: AsyncOpenAI) -> None:
    fake.disconnect()
    with pytest.raises(openai.APIConnectionError) as caught:
        await ask(client)
    assert not isinstance(caught.value, openai.APITimeoutError)
    assert (await ask(client, "again")).choices[0].message.content == "echo: again"


async def test_non_json_body_is_a_raw_json_decode_error(fake: FakeLLM, client: AsyncOpenAI) -> None:
    """openai 3.x does not wrap an unparsable 200 body: a bare ``json.JSONDecodeError`` escapes."""
    fake.garbage()
    with pytest.raises(json.JSONDecodeError):
        await ask(client)


# ------------------------------------------------------------------------ schema


@pytest.fixture(scope="module")
def schema_validator() -> Callable[[str, Any], None]:
    spec = json.loads(SPEC_PATH.read_text(encoding="utf-8"))
    resource = referencing.Resource.from_contents(spec, default_specification=DRAFT202012)
    registry = referencing.Registry().with_resource("urn:openai-openapi", resource)

    def validate(name: str, instance: Any) -> None:
        schema = {"$ref": f"urn:openai-openapi#/components/schemas/{name}"}
        jsonschema.Draft202012Validator(schema, registry=registry).validate(instance)

    return validate


async def test_wire_format_matches_openai_spec(
    fake: FakeLLM, agent: Agent[Any], schema_validator: Callable[[str, Any], None]
) -> None:
    fake.tool_call("add", {"a": 2, "b": 3}, call_id="call_add_1")
    fake.reply("5")
    await Runner.run(agent, "hi", run_config=RUN_CONFIG)
    for request in fake.requests:  # what the SDK sent, including the tool message
        schema_validator("CreateChatCompletionRequest", request)

    fake.reply("plain")
    fake.tool_calls([("add", {"a": 1, "b": 2}, "c1"), ("add", {"a": 3, "b": 4}, "c2")])
    fake.error(429)
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
    async with aiohttp.ClientSession() as session:
        for _ in range(2):
            async with session.post(f"{fake.base_url}chat/completions", json=body) as response:
                assert response.status == 200
                assert response.content_type == "application/json"
                schema_validator("CreateChatCompletionResponse", await response.json())
        async with session.post(f"{fake.base_url}chat/completions", json=body) as response:
            assert response.status == 429
            schema_validator("ErrorResponse", await response.json())
        async with session.get(f"{fake.base_url}models") as response:
            schema_validator("ListModelsResponse", await response.json())

"""The math agent: its instructions, its model client and how each run is configured."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

from agents import (
    Agent,
    ModelRetrySettings,
    ModelSettings,
    OpenAIChatCompletionsModel,
    RunConfig,
    Tool,
    retry_policies,
)
from agents.exceptions import ModelBehaviorError
from agents.models.interface import Model
from openai import AsyncOpenAI
from openai.types.chat import ChatCompletion

from ..config.settings import Settings
from ..limits.stream_share import StreamPacer
from .llm_client import build_client

INSTRUCTIONS = """\
You are mathbot, a concise math assistant in a Discord chat.
- Answer math questions in the answer style given after these rules. No preamble, no filler.
- Use the `calculate` tool for EVERY computation (arithmetic, algebra, calculus, solving,
  matrices, primes, decimals), never mental math, then report the tool's exact result, and its
  decimal value too when that helps. If the tool returns an error, fix the expression and retry.
  Read its "note": it says how the input was read (i as the imaginary unit, a sample or a
  population variance...); say so when it matters.
- When you show working and a `check` tool is available, check each step you show with it
  (e.g. "2x + 3 = 7 => x = 2", "d/dx x^3 = 3x^2") and end each checked line with ✓; fix any
  step it calls false before answering.
- When asked to plot, graph or sketch functions or data, call the `plot` tool (several functions
  can share one plot). The picture is attached to your reply automatically: never write image
  links or Markdown images; refer to "the graph" and use the numbers in the tool's summary. For
  roots, extrema or intersections, find exact values with `calculate` first and pass them in
  `mark_points`.
- Remember the conversation: "that", "it" and "the result" refer to earlier answers.
- Discord does not render LaTeX: write short math inline as $...$ (it is shown as Unicode, like
  x², √2, π) and put a big formula on its own line as $$...$$ (it is drawn as an image).
- If a question is not about math, say briefly that you only help with math.
- Never mention or ping anyone (@everyone, @here, roles or users).
"""

RETRY_STATUSES = (408, 409, 429, 500, 502, 503, 504)
# Appended to an answer the model stopped at `LLM_MAX_TOKENS` (finish_reason "length").
CUT_NOTE = "\n\n*(Answer cut here: it reached the length limit. Ask for the rest.)*"


class ChatCompletionsModel(OpenAIChatCompletionsModel):
    """The SDK's Chat Completions model, tolerant of tool calls that arrive without an id.

    Gemini's OpenAI-compatible endpoint has been seen to send `"id": ""` on tool calls, which
    the SDK refuses (`ModelBehaviorError`); such a call gets a fresh local id as it arrives,
    streamed or not. (This hooks the SDK's `_fetch_response`, the one place both paths share.)
    An answer cut by `max_tokens` ends with `CUT_NOTE`, and a stream is read at the pace
    `pacer` sets (it gives way to the other tasks; long answers share a part of the loop).
    """

    def __init__(self, *args: Any, pacer: StreamPacer, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pacer = pacer

    async def _fetch_response(self, *args: Any, **kwargs: Any) -> Any:
        result = await super()._fetch_response(*args, **kwargs)
        if kwargs.get("stream"):
            response, stream = result
            return response, _with_tool_call_ids(stream, self._pacer)
        if not isinstance(result, ChatCompletion):  # e.g. `null` or `[]` in the body
            raise ModelBehaviorError(
                "the model endpoint answered with something else than a chat completion"
            )
        for choice in result.choices or ():
            if choice.finish_reason == "length" and choice.message.content:
                choice.message.content += CUT_NOTE
            for call in choice.message.tool_calls or ():
                if call.id == "":
                    call.id = _new_call_id()
        return result


async def _with_tool_call_ids(stream: AsyncIterator[Any], pacer: StreamPacer) -> AsyncIterator[Any]:
    """The chunks of a stream, with an id for every tool call that starts with an empty one,
    and an index for every tool call that arrives whole without one (as Gemini sends them).

    Also: `CUT_NOTE` ends a text that the length cap stopped, and each chunk is read at the
    pace `pacer` sets, however fast the chunks come."""
    ids: dict[int, str] = {}
    next_index = 0
    wrote_text = False
    count = 0
    async for chunk in stream:
        for choice in chunk.choices or ():
            delta = choice.delta
            wrote_text = wrote_text or bool(delta.content)
            if choice.finish_reason == "length" and wrote_text:
                delta.content = (delta.content or "") + CUT_NOTE
            for call in delta.tool_calls or ():
                index = getattr(call, "index", None)
                if index is None:
                    call.index = index = next_index
                next_index = max(next_index, index + 1)
                if call.id == "":
                    call.id = ids.setdefault(index, _new_call_id())
        yield chunk
        count += 1
        await pacer.pace(count)


def _new_call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"


def build_model(settings: Settings, client: AsyncOpenAI, pacer: StreamPacer) -> Model:
    # Gemini streams tool-call chunks without an `index`: the SDK must buffer them.
    return ChatCompletionsModel(
        model=settings.llm_model,
        openai_client=client,
        buffer_streamed_tool_calls=True,
        pacer=pacer,
    )


def build_agent(model: Model, tools: Sequence[Tool] = ()) -> Agent:
    return Agent(name="mathbot", instructions=INSTRUCTIONS, model=model, tools=list(tools))


def run_config(settings: Settings) -> RunConfig:
    """Per-run settings: SDK-managed retries for 429/5xx/timeouts, the answer-length cap
    (`LLM_MAX_TOKENS`), and tracing off by default."""
    retry = ModelRetrySettings(
        max_retries=settings.llm_max_retries,
        backoff={"initial_delay": 1.0, "max_delay": 20.0, "multiplier": 2.0, "jitter": True},
        policy=retry_policies.any(
            retry_policies.provider_suggested(),
            retry_policies.retry_after(),
            retry_policies.network_error(),
            retry_policies.http_status(RETRY_STATUSES),
        ),
    )
    return RunConfig(
        model_settings=ModelSettings(retry=retry, max_tokens=settings.llm_max_tokens),
        tracing_disabled=not settings.tracing_enabled,
        workflow_name="mathbot",
    )


class ModelEndpoint:
    """The model behind `LLM_BASE_URL`: its client opens in `start()` (aiohttp needs a running
    event loop) and closes in `close()`; its streams are read at the pace `pacer` sets."""

    def __init__(self, settings: Settings, pacer: StreamPacer) -> None:
        self._settings = settings
        self._pacer = pacer
        self._client: AsyncOpenAI | None = None
        self._model: Model | None = None

    @property
    def model(self) -> Model:
        if self._model is None:
            raise RuntimeError("ModelEndpoint.start() was not called")
        return self._model

    async def start(self) -> None:
        self._client = build_client(self._settings)
        self._model = build_model(self._settings, self._client, self._pacer)

    async def close(self) -> None:
        client, self._client, self._model = self._client, None, None
        if client is not None:
            await client.close()

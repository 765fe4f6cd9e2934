"""The OpenAI-compatible client the agent talks through: aiohttp transport, lean request path."""

from __future__ import annotations

from collections.abc import Iterable
from functools import cached_property
from typing import Any

import pydantic
from openai import AsyncOpenAI, DefaultAioHttpClient
from openai._types import NotGiven, Omit
from openai.resources.chat import AsyncChat
from openai.resources.chat.completions import AsyncCompletions
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from ..config.settings import Settings


def build_client(settings: Settings) -> AsyncOpenAI:
    """An OpenAI-compatible client for `LLM_BASE_URL`.

    - Requests go over aiohttp (the `openai[aiohttp]` extra), which the openai library
      recommends for concurrency; the bot already runs aiohttp for discord.py.
    - Retries are left to the Agents SDK's runner (see `agent.run_config`): `max_retries=0`.
    - Chat Completions requests skip the client's per-request walk of the history
      (`LeanCompletions`), and their answers are parsed by pydantic (`LeanAsyncOpenAI`).
      Must be called with a running event loop (aiohttp).
    """
    return LeanAsyncOpenAI(
        api_key=settings.llm_api_key,
        base_url=settings.llm_base_url,
        timeout=settings.llm_timeout,
        max_retries=0,
        http_client=DefaultAioHttpClient(),
    )


class LeanCompletions(AsyncCompletions):
    """Chat Completions whose `messages` and `tools` reach the JSON body through `extra_body`.

    The openai client runs every request body through `async_maybe_transform`, a recursive
    walk of the TypedDict annotations that costs ~1,400 calls for a 20-turn history and was
    the largest single cost per question under load. For these two fields the walk changes
    nothing (the request types declare no aliases or formats; the Agents SDK already hands
    over plain JSON dicts), so the JSON sent is the same: `tests/test_llm_client.py` checks
    it against the stock client. `extra_body` is the client's documented way to add JSON
    properties; everything else (model, stream, options, headers) takes the normal path.
    """

    async def create(  # type: ignore[override]
        self,
        *,
        messages: Iterable[Any],
        tools: Iterable[Any] | Omit | NotGiven | None = None,
        extra_body: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        body = dict(extra_body or {})
        body["messages"] = list(messages)
        if tools is not None and not isinstance(tools, Omit | NotGiven):
            body["tools"] = list(tools)
        return await super().create(messages=[], extra_body=body, **kwargs)


class LeanChat(AsyncChat):
    @cached_property
    def completions(self) -> AsyncCompletions:
        return LeanCompletions(self._client)


# What `LeanAsyncOpenAI` parses with pydantic's validator.
_VALIDATED = (ChatCompletion, ChatCompletionChunk)


class LeanAsyncOpenAI(AsyncOpenAI):
    """`AsyncOpenAI` whose `chat.completions` is `LeanCompletions`, and whose chat answers
    (a completion, or each chunk of a streamed one) are built by pydantic's validator.

    The client builds them with `construct_type`, a lenient walk in Python that cost ~0.2 ms
    per chunk: a 45 KB answer streamed in 5,600 chunks held the event loop for over a
    second. `model_validate` (pydantic-core) builds the same object in ~0.01 ms; openai's
    models keep unknown fields either way (`extra="allow"`). Data that validation refuses (a
    provider's looser shape, e.g. a tool call without `index`) takes the client's own path.
    """

    @cached_property
    def chat(self) -> AsyncChat:
        return LeanChat(self)

    def _process_response_data(self, *, data: object, cast_to: Any, response: Any) -> Any:
        if cast_to in _VALIDATED and isinstance(data, dict):
            try:
                return cast_to.model_validate(data)
            except pydantic.ValidationError:
                pass
        return super()._process_response_data(data=data, cast_to=cast_to, response=response)

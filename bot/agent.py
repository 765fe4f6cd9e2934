"""The math agent: its instructions, its model client and how each run is configured."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
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
from agents.items import ModelResponse
from agents.models.interface import Model
from openai import AsyncOpenAI

from .config import Settings

INSTRUCTIONS = """\
You are mathbot, a concise math assistant in a Discord chat.
- Answer math questions directly and briefly: the result first, then at most a few short lines
  of working when they help. No preamble, no filler.
- Use the `calculate` tool for EVERY computation (arithmetic, algebra, calculus, solving,
  matrices, primes, decimals), never mental math, then report the tool's exact result, and its
  decimal value too when that helps. If the tool returns an error, fix the expression and retry.
- Remember the conversation: "that", "it" and "the result" refer to earlier answers.
- Discord does not render LaTeX: write short math inline as $...$ (it is shown as Unicode, like
  x², √2, π) and put a big formula on its own line as $$...$$ (it is drawn as an image).
- If a question is not about math, say briefly that you only help with math.
- Never mention or ping anyone (@everyone, @here, roles or users).
"""

RETRY_STATUSES = (408, 409, 429, 500, 502, 503, 504)


def build_client(settings: Settings) -> AsyncOpenAI:
    """An OpenAI-compatible client; retries are left to the SDK's runner (see `run_config`)."""
    return AsyncOpenAI(
        api_key=settings.llm_api_key,
        base_url=settings.llm_base_url,
        timeout=settings.llm_timeout,
        max_retries=0,
    )


class ChatCompletionsModel(OpenAIChatCompletionsModel):
    """The SDK's Chat Completions model, tolerant of tool calls that arrive without an id.

    Gemini's OpenAI-compatible endpoint has been seen to send `"id": ""` on tool calls, which
    the SDK refuses (`ModelBehaviorError`); such a call gets a fresh local id instead.
    """

    async def get_response(self, *args: Any, **kwargs: Any) -> ModelResponse:
        response = await super().get_response(*args, **kwargs)
        for item in response.output:
            if getattr(item, "type", None) == "function_call" and not getattr(item, "call_id", ""):
                item.call_id = f"call_{uuid.uuid4().hex[:24]}"  # type: ignore[union-attr]
        return response


def build_model(settings: Settings, client: AsyncOpenAI) -> Model:
    return ChatCompletionsModel(model=settings.llm_model, openai_client=client)


def build_agent(model: Model, tools: Sequence[Tool] = ()) -> Agent:
    return Agent(name="mathbot", instructions=INSTRUCTIONS, model=model, tools=list(tools))


def run_config(settings: Settings) -> RunConfig:
    """Per-run settings: SDK-managed retries for 429/5xx/timeouts, and tracing off by default."""
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
        model_settings=ModelSettings(retry=retry),
        tracing_disabled=not settings.tracing_enabled,
        workflow_name="mathbot",
    )

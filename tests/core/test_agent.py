"""The model wrapper's stream: other tasks run while a long, already buffered answer is read."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from openai.types.chat import ChatCompletionChunk

from bot.core.agent import _with_tool_call_ids


def _chunk(text: str) -> ChatCompletionChunk:
    return ChatCompletionChunk.model_validate(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": "m",
            "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}],
        }
    )


async def _buffered(chunks: list[ChatCompletionChunk]) -> AsyncIterator[ChatCompletionChunk]:
    """A stream whose chunks have all arrived: iterating it never suspends."""
    for chunk in chunks:
        yield chunk


async def test_a_buffered_stream_lets_the_event_loop_run_other_tasks() -> None:
    # 5,600 chunks of 8 characters: a 45 KB answer as the fake model streams it.
    chunks = [_chunk("\\[\n\\[\n\\") for _ in range(5_600)]
    ticks = 0

    async def other_user() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0)
            ticks += 1

    other = asyncio.create_task(other_user())
    await asyncio.sleep(0)  # let it start
    longest_run = run = 0  # chunks read in a row while the other task never ran
    seen = ticks
    async for _chunk_read in _with_tool_call_ids(_buffered(chunks)):
        run = 0 if ticks != seen else run + 1
        seen = ticks
        longest_run = max(longest_run, run)
    other.cancel()
    # The other task ran throughout: at most 16 chunks (~5 ms of parsing) without it.
    assert ticks >= len(chunks) // 16
    assert longest_run <= 16

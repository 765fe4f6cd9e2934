"""The model wrapper's stream: other tasks run while a long, already buffered answer is read,
and long answers share one pace while short ones are never held back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from openai.types.chat import ChatCompletionChunk

from bot.core.agent import _with_tool_call_ids
from bot.limits.stream_share import StreamPacer

# The pace in the tests that stop long answers: one chunk an hour, nothing leaks meanwhile.
STOPPED = 1 / 3600


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


async def _settle() -> None:
    """Let every task that can run, run (a thousand loop iterations, no time passes)."""
    for _ in range(1_000):
        await asyncio.sleep(0)


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
    pacer = StreamPacer(chunks_per_second=1e9)  # giving way only
    async for _chunk_read in _with_tool_call_ids(_buffered(chunks), pacer):
        run = 0 if ticks != seen else run + 1
        seen = ticks
        longest_run = max(longest_run, run)
    other.cancel()
    # The other task ran throughout: at most 16 chunks (~5 ms of parsing) without it.
    assert ticks >= len(chunks) // 16
    assert longest_run <= 16


async def _read(stream: AsyncIterator[ChatCompletionChunk], counts: list[int]) -> None:
    async for _chunk_read in stream:
        counts[0] += 1


async def test_long_answers_wait_for_a_pace_they_all_share() -> None:
    pacer = StreamPacer(free_chunks=20, chunks_per_second=STOPPED, slice_chunks=4, burst_chunks=8)
    long_chunks = [_chunk("x") for _ in range(1_000)]
    first, second = [0], [0]
    readers = [
        asyncio.create_task(_read(_with_tool_call_ids(_buffered(long_chunks), pacer), counts))
        for counts in (first, second)
    ]
    await _settle()
    # Each read its 20 free chunks; then both drew on one burst of 8 (one slice beyond it
    # is read before its reader asks for the next one), and both wait.
    assert first[0] >= 20 and second[0] >= 20
    assert first[0] + second[0] <= 2 * 20 + 8 + 2 * 4
    assert not any(reader.done() for reader in readers)
    # A short answer is read whole meanwhile: it never waits for the long ones' pace.
    short = [0]
    await _read(_with_tool_call_ids(_buffered([_chunk("4")] * 20), pacer), short)
    assert short[0] == 20
    for reader in readers:
        reader.cancel()


async def test_long_answers_read_whole_at_a_fast_enough_pace() -> None:
    pacer = StreamPacer(free_chunks=20, chunks_per_second=1e9)
    counts = [0]
    await _read(_with_tool_call_ids(_buffered([_chunk("x")] * 1_000), pacer), counts)
    assert counts[0] == 1_000

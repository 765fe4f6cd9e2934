"""`relay_text`: each piece of a streamed answer passed on once, and each tool call announced."""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any, cast

from agents import Agent, RunResultStreaming, ToolCallItem

from bot.core.assistant import relay_text


class Recorder:
    """A `TextListener` that writes down what it hears."""

    def __init__(self) -> None:
        self.heard: list[tuple[str, str | None]] = []

    def text(self, more: str) -> None:
        self.heard.append(("text", more))

    def progress(self, tool: str | None) -> None:
        self.heard.append(("progress", tool))


def raw(kind: str, delta: str = "") -> Any:
    return SimpleNamespace(type="raw_response_event", data=SimpleNamespace(type=kind, delta=delta))


def tool_called(name: str) -> Any:
    item = ToolCallItem(agent=Agent(name="a"), raw_item={"name": name, "call_id": "c1"})
    return SimpleNamespace(type="run_item_stream_event", name="tool_called", item=item)


class Stream:
    def __init__(self, events: list[Any]) -> None:
        self._events = events

    async def stream_events(self) -> AsyncIterator[Any]:
        for event in self._events:
            yield event


async def relayed(events: list[Any]) -> list[tuple[str, str | None]]:
    recorder = Recorder()
    await relay_text(cast(RunResultStreaming, Stream(events)), recorder)
    return recorder.heard


async def test_each_piece_is_passed_once_so_the_work_per_event_stays_small() -> None:
    pieces = [f"word{i} " for i in range(2000)]
    heard = await relayed(
        [raw("response.created"), *(raw("response.output_text.delta", p) for p in pieces)]
    )
    assert heard == [("text", p) for p in pieces]
    assert sum(len(str(what)) for _, what in heard) == len("".join(pieces))  # linear, not quadratic


async def test_a_tool_call_is_announced_and_a_new_response_starts_over() -> None:
    heard = await relayed(
        [
            raw("response.created"),
            raw("response.output_text.delta", "Let me compute."),
            tool_called("calculate"),
            raw("response.created"),
            raw("response.output_text.delta", "It is 4."),
            raw("response.created"),  # a response again without a tool call (e.g. a retry)
            raw("response.output_text.delta", "4"),
        ]
    )
    assert heard == [
        ("text", "Let me compute."),
        ("progress", "calculate"),
        ("text", "It is 4."),
        ("progress", None),
        ("text", "4"),
    ]

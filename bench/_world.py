"""The benchmark's world: loopback fakes in a child process, the real bot in this one.

The fake Discord and the fake model (tests/fakes) run in a separate Python process with its
own event loop, so their CPU time neither stalls the bot's event loop nor competes with it
for the GIL. The parent drives them over the child's stdin/stdout, one JSON line per call.
Timestamps are `time.perf_counter()` (CLOCK_MONOTONIC on Linux: one clock for every process
on the machine), so the child's "event sent" and "reply received" instants can be compared
with each other and with the parent's.

Run as a script, this module is the child: `python bench/_world.py --serve`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import discord

    from bot.config.settings import Settings
    from bot.core.assistant import Assistant

_THIS_FILE = Path(__file__).resolve()
REPO_ROOT = _THIS_FILE.parents[1]
GUILD = 900000000000000001
CHANNEL = 900000000000000011
_MESSAGE_PATH = re.compile(r"/channels/(\d+)/messages(?:/\d+)?")


# --------------------------------------------------------------------------- child process


def _child_classes() -> tuple[type, type]:
    """FakeDiscord and FakeLLM with the few hooks the benchmark needs (imported lazily)."""
    from aiohttp import web

    from tests.fakes.discord_server import FakeDiscord
    from tests.fakes.llm_server import FakeLLM

    class BenchDiscord(FakeDiscord):
        """Logs every bot message created or edited in a channel: (channel, instant the
        request arrived, content after it). A streamed answer is posted as drafts and edited;
        the log shows each step."""

        def __init__(self) -> None:
            super().__init__()
            # (channel, message id, instant the request arrived, content, was it a POST)
            self.bench_shown: list[tuple[int, int, float, str, bool]] = []
            self.bench_changed = asyncio.Event()

        async def _rest_handler(self, request: web.Request) -> web.Response:
            arrived = time.perf_counter()
            response = await super()._rest_handler(request)
            if request.method in ("POST", "PATCH") and response.status == 200:
                match = _MESSAGE_PATH.fullmatch("/" + request.match_info["tail"])
                if match is not None and isinstance(response.body, bytes):
                    body = json.loads(response.body)
                    self.bench_shown.append(
                        (
                            int(match.group(1)),
                            int(body["id"]),
                            arrived,
                            str(body.get("content") or ""),
                            request.method == "POST",
                        )
                    )
                    self.bench_changed.set()
            # The fake keeps every request; the benchmark never reads them back.
            self.requests.clear()
            self.sent_events.clear()
            self.gateway_received.clear()
            return response

    class BenchLLM(FakeLLM):
        """Records each chat request's body size; answers after `latency` seconds if set."""

        def __init__(self) -> None:
            super().__init__()
            self.bench_latency = 0.0
            self.bench_log: list[tuple[int, int]] = []  # (body bytes, number of messages)
            self.bench_in_flight = 0
            self.bench_peak = 0  # most requests in flight at once

        async def _chat_completions(self, request: web.Request) -> web.StreamResponse:
            raw = await request.read()  # aiohttp caches it for the parent's read
            try:
                messages = len(json.loads(raw).get("messages") or [])
            except (ValueError, AttributeError):
                messages = -1
            self.bench_log.append((len(raw), messages))
            if self.bench_latency and not self._steps:
                self.delay(self.bench_latency, "4")
            self.bench_in_flight += 1
            self.bench_peak = max(self.bench_peak, self.bench_in_flight)
            try:
                response = await super()._chat_completions(request)
            finally:
                self.bench_in_flight -= 1
            self.requests.clear()
            self.headers.clear()
            return response

    return BenchDiscord, BenchLLM


async def _serve() -> None:
    bench_discord, bench_llm = _child_classes()
    fake = bench_discord()
    fake.add_guild(GUILD, name="Bench club")
    fake.add_text_channel(GUILD, CHANNEL, name="general")
    await fake.start()
    llm = bench_llm()
    await llm.start()

    async def dm(messages: list[list[Any]]) -> list[float]:
        """Each [user id, DM channel id, text] posted back to back; when each was sent."""
        sent = []
        for user_id, channel_id, text in messages:
            await fake.user_message(channel_id=channel_id, author_id=user_id, content=text)
            sent.append(time.perf_counter())
        return sent

    async def mention(messages: list[list[Any]]) -> list[list[Any]]:
        """Each [user id, text] mentions the bot in the guild channel: [message id, sent]."""
        out = []
        for user_id, text in messages:
            msg = await fake.user_message(
                channel_id=CHANNEL, author_id=user_id, content=text, mention_bot=True
            )
            out.append([int(msg["id"]), time.perf_counter()])
        return out

    async def wait_answers(expect: list[list[Any]], since: int, seconds: float) -> list[Any]:
        """For each [channel id, answer], the first bot message posted from log position
        `since` on (or a later edit of it) that shows either that answer or something that
        is not a draft of it (a refusal, an error): [channel id, instant, content], in
        `expect`'s order. Edits of messages posted earlier (a previous turn's final, paced
        edit) are ignored."""
        pending: dict[int, str] = {int(c): str(text) for c, text in expect}
        posted: set[int] = set()
        found: dict[int, list[Any]] = {}
        position = since
        async with asyncio.timeout(seconds):
            while pending:
                while position < len(fake.bench_shown):
                    channel, message_id, arrived, content, is_post = fake.bench_shown[position]
                    position += 1
                    answer = pending.get(channel)
                    if answer is None:
                        continue
                    if is_post:
                        posted.add(message_id)
                    elif message_id not in posted:
                        continue
                    if content == answer or not answer.startswith(content):
                        found[channel] = [channel, arrived, content]
                        del pending[channel]
                if pending:
                    fake.bench_changed.clear()
                    await fake.bench_changed.wait()
        return [found[int(c)] for c, _text in expect]

    async def mark() -> int:
        """The current end of the log of shown bot messages."""
        return len(fake.bench_shown)

    async def cpu() -> float:
        return time.process_time()

    lag = [0.0]  # the fakes' own event loop: worst lateness of a 5 ms sleep since last asked

    async def watch_lag() -> None:
        while True:
            started = time.perf_counter()
            await asyncio.sleep(0.005)
            lag[0] = max(lag[0], time.perf_counter() - started - 0.005)

    async def loop_lag() -> float:
        worst, lag[0] = lag[0], 0.0
        return worst

    async def llm_latency(seconds: float) -> None:
        llm.bench_latency = seconds

    async def llm_peak() -> int:
        """The most model requests in flight at once since the last call."""
        peak, llm.bench_peak = llm.bench_peak, llm.bench_in_flight
        return peak

    async def llm_log(since: int = 0) -> list[Any]:
        return [list(entry) for entry in llm.bench_log[since:]]

    handlers = {
        "dm": dm,
        "mention": mention,
        "wait_answers": wait_answers,
        "mark": mark,
        "cpu": cpu,
        "loop_lag": loop_lag,
        "llm_latency": llm_latency,
        "llm_peak": llm_peak,
        "llm_log": llm_log,
    }
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=256 * 1024 * 1024)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    def write(payload: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(payload) + "\n")
        sys.stdout.flush()

    write(
        {
            "api_base": fake.api_base,
            "gateway_url": fake.gateway_url,
            "llm_base_url": llm.base_url,
        }
    )

    async def answer(call_id: int, op: str, args: dict[str, Any]) -> None:
        try:
            write({"id": call_id, "ok": await handlers[op](**args)})
        except Exception as exc:  # noqa: BLE001 - reported to the parent, which raises it
            write({"id": call_id, "error": f"{op}: {exc!r}"})

    watcher = asyncio.create_task(watch_lag())
    calls: set[asyncio.Task[None]] = set()  # each call runs as it arrives, side by side
    try:
        while line := await reader.readline():
            request = json.loads(line)
            call = asyncio.create_task(answer(request.pop("id"), request.pop("op"), request))
            calls.add(call)
            call.add_done_callback(calls.discard)
    finally:
        for call in calls:
            call.cancel()
        watcher.cancel()
        await llm.close()
        await fake.close()


# --------------------------------------------------------------------------- parent side


class FakesError(RuntimeError):
    """The fakes' process failed a call or went away."""


class Fakes:
    """The child process running the fakes, and the calls the benchmark makes to it.
    `script` is the file run with `--serve` (a benchmark may serve fakes of its own).

    Calls from several tasks run side by side in the child, each answer matched to its call
    by an id: one user waiting for an answer does not hold back another user's message."""

    script: Path = _THIS_FILE

    def __init__(self) -> None:
        self.api_base = ""
        self.gateway_url = ""
        self.llm_base_url = ""
        self._process: asyncio.subprocess.Process | None = None
        self._calls: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._next_id = 0
        self._answers: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Fakes:
        self._process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(self.script),
            "--serve",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            cwd=str(REPO_ROOT),
            limit=256 * 1024 * 1024,
        )
        hello = await self._read(timeout=30.0)
        self.api_base = hello["api_base"]
        self.gateway_url = hello["gateway_url"]
        self.llm_base_url = hello["llm_base_url"]
        self._answers = asyncio.create_task(self._dispatch_answers())
        return self

    async def __aexit__(self, *exc: object) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.stdin is not None:
            process.stdin.close()
        try:
            await asyncio.wait_for(process.wait(), timeout=10)
        except TimeoutError:
            process.kill()
            await process.wait()
        if self._answers is not None:
            self._answers.cancel()

    async def call(self, op: str, args: dict[str, Any], *, read_timeout: float = 120.0) -> Any:
        """Run `op(**args)` in the child and return its result."""
        process = self._process
        if process is None or process.stdin is None:
            raise FakesError("the fakes are not running")
        call_id, self._next_id = self._next_id, self._next_id + 1
        answered = self._calls[call_id] = asyncio.get_running_loop().create_future()
        try:
            process.stdin.write((json.dumps({"id": call_id, "op": op, **args}) + "\n").encode())
            await process.stdin.drain()
            answer = await asyncio.wait_for(answered, timeout=read_timeout)
        finally:
            self._calls.pop(call_id, None)
        if "error" in answer:
            raise FakesError(answer["error"])
        return answer["ok"]

    async def _dispatch_answers(self) -> None:
        """Hands each answer from the child to the call waiting for it."""
        try:
            while True:
                answer = await self._read(timeout=None)
                waiting = self._calls.get(answer["id"])
                if waiting is not None and not waiting.done():
                    waiting.set_result(answer)
        except FakesError as exc:
            for waiting in self._calls.values():
                if not waiting.done():
                    waiting.set_exception(exc)

    async def _read(self, *, timeout: float | None) -> dict[str, Any]:  # noqa: ASYNC109
        process = self._process
        assert process is not None and process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), timeout=timeout)
        if not line:
            raise FakesError(f"the fakes' process exited (code {await process.wait()})")
        return json.loads(line)

    # The calls, typed.

    async def dm(self, messages: list[tuple[int, int, str]]) -> list[float]:
        return await self.call("dm", {"messages": [list(m) for m in messages]})

    async def mention(self, messages: list[tuple[int, str]]) -> list[tuple[int, float]]:
        found = await self.call("mention", {"messages": [list(m) for m in messages]})
        return [(int(i), float(t)) for i, t in found]

    async def wait_answers(
        self,
        expect: list[tuple[int, str]],
        since: int,
        timeout: float = 60.0,  # noqa: ASYNC109
    ) -> list[tuple[int, float, str]]:
        """For each (channel, answer): (channel, instant it reached the fake, content) of
        the first bot message showing the answer, or anything that is not a draft of it."""
        found = await self.call(
            "wait_answers",
            {"expect": [list(e) for e in expect], "since": since, "seconds": timeout},
            read_timeout=timeout + 10.0,
        )
        return [(int(c), float(t), str(text)) for c, t, text in found]

    async def mark(self) -> int:
        """The position from which `wait_answers` should look."""
        return int(await self.call("mark", {}))

    async def cpu(self) -> float:
        """CPU seconds the fakes' process has used so far."""
        return float(await self.call("cpu", {}))

    async def loop_lag(self) -> float:
        """The fakes' own worst event-loop stall since the last call: when it is large, the
        fakes, not the bot, may be what slows the answers."""
        return float(await self.call("loop_lag", {}))

    async def llm_latency(self, seconds: float) -> None:
        await self.call("llm_latency", {"seconds": seconds})

    async def llm_peak(self) -> int:
        """The most model requests in flight at once since the last call."""
        return int(await self.call("llm_peak", {}))

    async def llm_log(self, since: int = 0) -> list[tuple[int, int]]:
        return [(int(b), int(n)) for b, n in await self.call("llm_log", {"since": since})]


@contextlib.asynccontextmanager
async def running_bot(
    fakes: Fakes, settings: Settings
) -> AsyncIterator[tuple[discord.Client, Assistant]]:
    """The real bot (build_bot + Assistant with its default SQLite store), connected."""
    from bot.app import build
    from bot.discord_app.build import build_bot
    from bot.discord_app.client import point_discord_at
    from bot.process import tune_garbage_collector
    from tests.fakes.discord_server import running_client

    point_discord_at(fakes.api_base, fakes.gateway_url)
    async with contextlib.AsyncExitStack() as stack:
        assistant = build(settings, **await shared_parts(stack))
        bot = build_bot(settings, assistant, guild_ready_timeout=0.01)
        tune_garbage_collector()  # as `python -m bot` does before it serves
        await stack.enter_async_context(
            running_client(bot, token=settings.discord_token, timeout=30.0)
        )
        stack.push_async_callback(handlers_done, 15.0)
        yield bot, assistant


async def handlers_done(timeout: float) -> None:  # noqa: ASYNC109
    """Wait (at most `timeout`) for the bot's event handlers still running, e.g. a streamed
    answer's last paced edit, so the bot is not closed under them."""
    current = asyncio.current_task()
    running = [
        task
        for task in asyncio.all_tasks()
        if task is not current and task.get_name().startswith("discord.py: ")
    ]
    if running:
        await asyncio.wait(running, timeout=timeout)


async def shared_parts(stack: contextlib.AsyncExitStack) -> dict[str, Any]:
    """Keyword arguments for `bot.app.build` beyond the settings, as the tests' harness passes
    them: a calculator owned by the caller, whose worker pool starts only if the model ever
    calls the tool (the fake model never does), so no worker processes are started per bot."""
    from bot.tools.calculator.calculator import Calculator

    calculator = Calculator()
    stack.push_async_callback(calculator.close)
    return {"calculator": calculator}


def _main() -> None:
    sys.path.insert(0, str(REPO_ROOT))
    logging.basicConfig(level=logging.ERROR)
    if sys.argv[1:] != ["--serve"]:
        raise SystemExit("usage: _world.py --serve  (started by bench/bench_bot.py)")
    asyncio.run(_serve())


if __name__ == "__main__":
    _main()

"""Benchmarks of the whole bot: overhead, concurrency, bounded cost, stores and memory.

The real bot (discord.py client + Assistant + Agents SDK + openai client, configured through
`load_settings` as in production) runs in this process's event loop; the loopback fakes of
Discord and of the model (tests/fakes) run in a child process (bench/_world.py) so that
their CPU time is not charged to the bot, nor their work to its event-loop stalls. The model
answers at once unless a section says otherwise.

Latency is measured by the fake Discord: from the instant it has sent the gateway event to
the instant the request that puts the whole answer on Discord arrives (with STREAMING on, a
draft may be posted first; the answer counts once a post or edit shows all of it).

    .venv/bin/python bench/bench_bot.py            # everything (~9 min on 2 cores)
    .venv/bin/python bench/bench_bot.py --quick    # smaller and faster (~40 s)
    .venv/bin/python bench/bench_bot.py --only concurrency
    .venv/bin/python bench/bench_bot.py --only concurrency --experiment first-draft-delay

Sections: overhead, concurrency, bounded, stores, memory (core) and memory-discord; the two
memory sections run in fresh processes. Each prints its figures and a ✓ or ✗ per goal.
`--experiment` monkeypatches a candidate change to bot/ for that run only (see EXPERIMENTS);
`--profile FILE` writes a cProfile of one concurrency burst (`--profile-burst`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import logging
import os
import random
import resource
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bench._world import Fakes
    from bot.config.settings import Settings
    from bot.memory.store import SessionStore

THIS_FILE = Path(__file__).resolve()
REPO_ROOT = THIS_FILE.parents[1]

USER_BASE = 800_000_000_001_000_000  # prefilled users are USER_BASE + i
DM_BASE = 700_000_000_001_000_000  # and their DM channels DM_BASE + i
FRESH_USER_BASE = 800_000_000_002_000_000  # users with no history (bounded, memory)
FRESH_DM_BASE = 700_000_000_002_000_000
HISTORY_TURNS = 20
POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
REDIS_URL = "redis://127.0.0.1:6379/0"
MS = 1000.0
SLOW_ANSWER = "4"  # what the fake model answers when it is told to take its time


@dataclass(frozen=True)
class Sizes:
    prefill_users: int = 10_000
    prefill_turns: int = 40
    overhead_rounds: int = 150
    overhead_warmup: int = 15
    side_every: int = 3  # the side paths (mention, core only) run one round in this many
    concurrent_users: int = 500
    model_latency: float = 1.0
    default_controls_burst: bool = True
    bounded_turns: int = 200
    store_turns_serial: int = 150
    store_concurrency: int = 50
    store_turns_each: int = 5
    memory_points: tuple[int, ...] = (100, 4_000, 10_000)
    memory_discord_points: tuple[int, ...] = (100, 3_000, 7_000)
    memory_batch: int = 50
    memory_verdict: bool = True  # False: too few users for the caches to settle


QUICK = Sizes(
    prefill_users=2_000,
    overhead_rounds=24,
    overhead_warmup=6,
    concurrent_users=100,
    default_controls_burst=False,
    bounded_turns=60,
    store_turns_serial=40,
    store_turns_each=2,
    memory_points=(100, 400, 800),
    memory_discord_points=(100, 500, 700),
    memory_verdict=False,
)


@dataclass
class Context:
    sizes: Sizes
    workdir: Path
    env: dict[str, str] = field(default_factory=lambda: dict(OPEN_CONTROLS))
    profile: Path | None = None  # --profile: cProfile one burst into this file
    profile_burst: str = "discord"  # which: discord, core or baseline
    _prefilled: Path | None = None
    _prefill_seconds: float = 0.0

    async def prefilled(self) -> Path:
        """The SQLite file with `prefill_users` x `prefill_turns` turns (made once per run)."""
        if self._prefilled is None:
            path = self.workdir / "prefilled.db"
            started = time.perf_counter()
            await asyncio.to_thread(
                prefill_sqlite, path, self.sizes.prefill_users, self.sizes.prefill_turns
            )
            self._prefill_seconds = time.perf_counter() - started
            self._prefilled = path
            size = path.stat().st_size / 1e6
            print(
                f"  (pre-filled {self.sizes.prefill_users:,} users x {self.sizes.prefill_turns} "
                f"turns = {2 * self.sizes.prefill_users * self.sizes.prefill_turns:,} items, "
                f"{size:.0f} MB, in {self._prefill_seconds:.1f} s)"
            )
        return self._prefilled

    def fresh_db(self, name: str) -> Path:
        return self.workdir / f"{name}-{uuid.uuid4().hex[:8]}.db"


@dataclass
class Goal:
    text: str
    met: bool


@dataclass
class Report:
    title: str
    lines: list[str] = field(default_factory=list)
    goals: list[Goal] = field(default_factory=list)

    def table(self, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        cells = [[str(c) for c in header], *[[str(c) for c in row] for row in rows]]
        widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
        for n, row in enumerate(cells):
            first = row[0].ljust(widths[0])
            rest = "  ".join(c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True))
            self.lines.append(f"  {first}  {rest}".rstrip())
            if n == 0:
                self.lines.append("  " + "-" * (sum(widths) + 2 * (len(widths) - 1)))

    def note(self, text: str) -> None:
        self.lines.append(f"  {text}")

    def goal(self, text: str, met: bool) -> None:
        self.goals.append(Goal(text, met))

    def print(self) -> None:
        for line in self.lines:
            print(line)
        for goal in self.goals:
            print(f"  {'✓' if goal.met else '✗'} {goal.text}")


# --------------------------------------------------------------------------- helpers


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (p50 of [1, 2, 3, 4] is 2)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, min(len(ordered), int(-(-fraction * len(ordered) // 1))))
    return ordered[rank - 1]


def ms(seconds: float) -> str:
    return f"{seconds * MS:.1f}"


def rss_bytes() -> int:
    """VmRSS of this process, from /proc/self/status."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def cpu_seconds() -> float:
    """CPU time of this process, all threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def loop_thread_cpu() -> float:
    """CPU time of the calling thread (the event loop's, when called from it)."""
    return time.thread_time()


# The bot sends the last HISTORY_TURNS user turns; in these benchmarks a turn is two items
# (question, answer: the fake model calls no tool), so the SDK's item window of twice that
# many gives the bare baseline the same history. `SessionSettings(limit=...)` counts items.
WINDOW_ITEMS = 2 * HISTORY_TURNS


def sdk_session(session_id: str, path: Path, windowed: bool) -> Any:
    """The bare SDK's SQLite session: the whole stored conversation, or the bot's window."""
    from agents import SessionSettings, SQLiteSession

    settings = SessionSettings(limit=WINDOW_ITEMS) if windowed else None
    return SQLiteSession(session_id, str(path), session_settings=settings)


def user_item(text: str) -> dict[str, Any]:
    """A user message as the SDK stores it."""
    return {"content": text, "role": "user"}


def assistant_item(text: str, response_id: str) -> dict[str, Any]:
    """An assistant output message as the SDK stores it after a Chat Completions call."""
    return {
        "id": "__fake_id__",
        "content": [{"annotations": [], "text": text, "type": "output_text", "logprobs": []}],
        "role": "assistant",
        "status": "completed",
        "type": "message",
        "provider_data": {"model": "gemini-2.5-flash", "response_id": response_id},
    }


def turn_texts(user: int, turn: int) -> tuple[str, str]:
    a, b = user % 97 + turn, turn + 3
    question = f"what is {a} times {b}? show the steps please"
    answer = f"{a} × {b} = {a * b}\n{a} × {b - 1} = {a * (b - 1)}, plus {a} gives {a * b}."
    return question, answer


def prefill_sqlite(path: Path, users: int, turns: int) -> None:
    """`users` x `turns` turns in the SDK's SQLite tables, in the rows `SQLiteSession.add_items`
    writes (json.dumps of each item), interleaved across users as real traffic would be."""
    from agents import SQLiteSession

    from bot.memory.keys import user_session_id

    SQLiteSession("mathbot:startup", str(path)).close()  # the SDK's own schema
    session_ids = [user_session_id(USER_BASE + u) for u in range(users)]

    def rows() -> Any:
        for turn in range(turns):
            for u, session_id in enumerate(session_ids):
                question, answer = turn_texts(u, turn)
                yield session_id, json.dumps(user_item(question))
                yield session_id, json.dumps(assistant_item(answer, f"chatcmpl-{u}-{turn}"))

    conn = sqlite3.connect(str(path))
    try:
        conn.execute("PRAGMA journal_mode=DELETE")
        conn.execute("PRAGMA synchronous=OFF")
        with conn:
            conn.executemany(
                "INSERT INTO agent_sessions (session_id) VALUES (?)", ((s,) for s in session_ids)
            )
            conn.executemany(
                "INSERT INTO agent_messages (session_id, message_data) VALUES (?, ?)", rows()
            )
        conn.execute("PRAGMA journal_mode=WAL")  # what the SDK runs it in
    finally:
        conn.close()


# Controls for the benchmark's synthetic traffic: no per-user rate limit (one user sends 200
# questions in a row) and room for every concurrent turn. The concurrency section also runs
# once with the default controls, to show what they do to the same burst.
OPEN_CONTROLS = {
    "USER_RATE_LIMIT": "off",
    "MAX_CONCURRENT_MODEL_CALLS": "1000",
    "MAX_QUEUED_TURNS": "100000",
}


def bench_settings(fakes: Fakes, session_db: Path | str, env: dict[str, str]) -> Settings:
    """Settings as the bot reads them (`load_settings` over an environment, no .env file)."""
    from bot.config.settings import load_settings

    environ = {
        "DISCORD_TOKEN": "bench.discord.token",
        "LLM_API_KEY": "bench-llm-key",
        "LLM_BASE_URL": fakes.llm_base_url,
        "SESSION_DB": str(session_db),
        "HISTORY_TURNS": str(HISTORY_TURNS),
        "LLM_MAX_RETRIES": "0",
        "LLM_TIMEOUT": "60",
        "DISCORD_API_URL": fakes.api_base,
        "DISCORD_GATEWAY_URL": fakes.gateway_url,
        "LOG_LEVEL": "WARNING",
        **env,
    }
    return load_settings(environ, dotenv_path=None)


@dataclass
class World:
    fakes: Fakes
    bot: Any  # discord.Client
    assistant: Any  # bot.core.assistant.Assistant
    settings: Settings


@contextlib.asynccontextmanager
async def bot_world(
    ctx: Context, session_db: Path | str, env: dict[str, str] | None = None
) -> AsyncIterator[World]:
    """Fresh fakes (child process) and the real bot connected to them."""
    from bench._world import Fakes, running_bot

    async with Fakes() as fakes:
        settings = bench_settings(fakes, session_db, ctx.env if env is None else env)
        async with running_bot(fakes, settings) as (bot, assistant):
            yield World(fakes, bot, assistant, settings)


class StallMonitor:
    """Sleeps `interval` again and again in the bot's loop; records the worst lateness, and
    how much CPU the loop's thread used meanwhile (`worst_cpu`): a stall with little CPU was
    the operating system giving the CPU to other processes, not the loop busy with work."""

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.worst = 0.0
        self.worst_cpu = 0.0  # the loop thread's CPU during the worst stall
        self.worst_process_cpu = 0.0  # all threads': more than the loop's is the GIL elsewhere
        self.samples = 0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started, cpu, process_cpu = loop.time(), time.thread_time(), time.process_time()
            await asyncio.sleep(self.interval)
            late = loop.time() - started - self.interval
            if late > self.worst:
                self.worst, self.worst_cpu = late, time.thread_time() - cpu
                self.worst_process_cpu = time.process_time() - process_cpu
            self.samples += 1

    def __enter__(self) -> StallMonitor:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()


class GcMonitor:
    """Times the garbage collector's pauses (`gc.callbacks`) while the block runs."""

    def __init__(self) -> None:
        self.count = 0
        self.total = 0.0
        self.worst = 0.0
        self._started = 0.0

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        pause = time.perf_counter() - self._started
        self.count += 1
        self.total += pause
        self.worst = max(self.worst, pause)

    def __enter__(self) -> GcMonitor:
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self._callback)


def echo(text: str) -> str:
    """What the fake model answers by default, as the bot shows it."""
    return f"echo: {text.strip()}"


@dataclass
class Timed:
    seconds: float
    ok: bool  # the model's answer arrived (not a refusal or an error)
    shown: str = ""


async def dm_round(
    fakes: Fakes, user: int, channel: int, text: str, shows: str | None = None
) -> Timed:
    """One DM to the bot: seconds from the event leaving the fake to the whole answer
    reaching it (streamed answers: the post or edit that completes it). `shows`: the answer
    as Discord should show it, if not the model's echo as it is."""
    expected = echo(text) if shows is None else shows
    since = await fakes.mark()
    [sent] = await fakes.dm([(user, channel, text)])
    [(_c, arrived, shown)] = await fakes.wait_answers([(channel, expected)], since, 30.0)
    return Timed(arrived - sent, shown == expected, shown)


async def mention_round(fakes: Fakes, user: int, text: str) -> Timed:
    """A mention in a server channel: the bot opens a thread and answers in it."""
    since = await fakes.mark()
    [(thread, sent)] = await fakes.mention([(user, text)])
    [(_c, arrived, shown)] = await fakes.wait_answers([(thread, echo(text))], since, 30.0)
    return Timed(arrived - sent, shown == echo(text), shown)


# --------------------------------------------------------------------------- 1. overhead


@dataclass
class Route:
    """One way of answering a question, timed round after round."""

    name: str
    run: Callable[[int, str], Awaitable[Timed]]
    every: int = 1  # runs in one round out of `every`
    times: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    failed: dict[str, int] = field(default_factory=dict)


async def bench_overhead(ctx: Context) -> Report:
    from agents import RunConfig, Runner

    from bot.memory.keys import user_session_id

    sizes = ctx.sizes
    report = Report("1. Overhead: Discord event -> reply at the fake, vs bare Runner.run")
    path = await ctx.prefilled()
    rounds, warmup = sizes.overhead_rounds, sizes.overhead_warmup
    total = rounds + warmup
    users = iter(random.Random(1).sample(range(sizes.prefill_users), 4 * total))
    bare = RunConfig(tracing_disabled=True)  # the bot runs untraced too (no tracing key)

    async with bot_world(ctx, path) as world:
        fakes, assistant = world.fakes, world.assistant
        agent = assistant._agent  # the bot's own Agent: same model client, tools, instructions

        async def bare_sdk(u: int, text: str, windowed: bool) -> Timed:
            started = time.perf_counter()
            session = sdk_session(user_session_id(USER_BASE + u), path, windowed)
            try:
                result = await Runner.run(agent, text, session=session, run_config=bare)
            finally:
                session.close()
            shown = str(result.final_output)
            return Timed(time.perf_counter() - started, shown == echo(text), shown)

        async def baseline(u: int, text: str) -> Timed:
            return await bare_sdk(u, text, windowed=False)

        async def windowed(u: int, text: str) -> Timed:
            return await bare_sdk(u, text, windowed=True)

        async def core(u: int, text: str) -> Timed:
            from bot.errors import UserFacingError

            started = time.perf_counter()
            try:
                shown = (await assistant.ask(user_session_id(USER_BASE + u), text)).text
            except UserFacingError as exc:
                shown = str(exc)
            return Timed(time.perf_counter() - started, shown == echo(text), shown)

        async def dm(u: int, text: str) -> Timed:
            return await dm_round(fakes, USER_BASE + u, DM_BASE + u, text)

        async def mention(u: int, text: str) -> Timed:
            return await mention_round(fakes, USER_BASE + u, text)

        base = Route("baseline: Runner.run(agent, text, session=SQLiteSession)", baseline)
        peer = Route(f"windowed baseline: same, SessionSettings(limit={WINDOW_ITEMS})", windowed)
        bot = Route("bot: DM -> reply", dm)
        paths = [
            base,
            peer,
            bot,
            Route("bot: mention -> new thread -> reply", mention, sizes.side_every),
            Route("core only: Assistant.ask (no Discord)", core, sizes.side_every),
        ]
        for i in range(total):
            text = f"what is {i} + {i}?"
            due = [p for p in paths if i % p.every == 0]
            shift = i % len(due)
            for p in due[shift:] + due[:shift]:  # rotate who goes first
                cpu_before = cpu_seconds()
                timed = await p.run(next(users), text)
                cpu = cpu_seconds() - cpu_before
                if i < warmup:
                    continue
                if timed.ok:
                    p.times.append(timed.seconds)
                    p.cpu.append(cpu)
                else:
                    p.failed[timed.shown[:70]] = p.failed.get(timed.shown[:70], 0) + 1

    def row(p: Route) -> list[str]:
        p50, p99 = percentile(p.times, 0.5), percentile(p.times, 0.99)
        cpu = sum(p.cpu) / len(p.cpu) if p.cpu else 0.0
        return [
            p.name,
            str(len(p.times)),
            str(sum(p.failed.values())),
            ms(p50),
            ms(p99),
            ms(p50 - percentile(base.times, 0.5)),
            ms(p50 - percentile(peer.times, 0.5)),
            ms(p99 - percentile(peer.times, 0.99)),
            ms(cpu) if p.cpu else "-",
            ms(cpu - sum(peer.cpu) / len(peer.cpu)) if p.cpu and peer.cpu else "-",
        ]

    report.note(
        f"store: SQLite pre-filled with {sizes.prefill_users:,} users x "
        f"{sizes.prefill_turns} turns (each question from a different user); model answers at "
        f"once; rounds interleaved after {warmup} warm-up rounds"
    )
    report.table(
        [
            "path",
            "n",
            "failed",
            "p50 ms",
            "p99 ms",
            "+p50 unbounded",
            "+p50 windowed",
            "+p99 windowed",
            "CPU ms",
            "+CPU windowed",
        ],
        [row(p) for p in paths],
    )
    for p in paths:
        for shown, count in p.failed.items():
            report.note(f"failed: {p.name.split(':')[0]}: {count} x {shown!r}")
    slow = sum(t > 0.5 for t in bot.times)
    if slow:
        report.note(
            f"{slow} of {len(bot.times)} DM answers took over 0.5 s: STREAMING is on, and a "
            "draft went out first (after half of STREAM_EDIT_INTERVAL), then the final text"
        )
    report.note(
        "+p50/+p99 unbounded/windowed: minus that baseline's p50/p99, i.e. what the bot adds"
    )
    report.note("CPU ms: this process's CPU per question (event loop + worker threads)")
    report.note(
        "the unbounded baseline reads the whole stored conversation; the windowed one the "
        f"last {WINDOW_ITEMS} items ({HISTORY_TURNS} turns), as the bot does: the fair peer. "
        "Both write twice per turn; the bot writes once"
    )
    if not bot.times or not peer.times:
        report.goal("bot adds under 10 ms at p50: no successful rounds to compare", False)
        return report
    added = percentile(bot.times, 0.5) - percentile(peer.times, 0.5)
    report.goal(
        f"bot adds under 10 ms at p50 over the windowed baseline (DMs): {ms(added)} ms",
        added < 0.010,
    )
    return report


# --------------------------------------------------------------------------- 2. concurrency


@dataclass
class Burst:
    answered: int
    other: dict[str, int]
    dispatch: float
    wall: float
    p50: float
    p99: float
    stall: float
    stall_samples: int
    gc_total: float
    gc_worst: float
    gc_count: int
    cpu: float
    loop_cpu: float
    fakes_cpu: float
    peak: int


@contextlib.contextmanager
def profiled(ctx: Context, burst: str) -> Iterator[None]:
    """cProfile of the event-loop thread while the block runs, if `burst` is the one asked
    for with `--profile` (the first of its kind only)."""
    if ctx.profile is None or burst != ctx.profile_burst:
        yield
        return
    import cProfile

    profiler = cProfile.Profile()
    profiler.enable()
    try:
        yield
    finally:
        profiler.disable()
        profiler.dump_stats(ctx.profile)
        print(f"  (profile of the {burst} burst written to {ctx.profile})")
        ctx.profile = None


async def burst(
    ctx: Context, n: int, env: dict[str, str], first: int, *, history: bool = True
) -> Burst:
    """`n` DMs from `n` users dispatched back to back at a bot whose model takes
    `model_latency` seconds; the bot's loop is watched by a `StallMonitor` throughout.
    `history`: the users have 40 stored turns (pre-filled), else they are new."""
    sizes = ctx.sizes
    path = await ctx.prefilled()
    async with bot_world(ctx, path, env) as world:
        fakes = world.fakes
        for u in range(3):  # warm-up: lazy imports, first connections
            await dm_round(fakes, USER_BASE + u, DM_BASE + u, "warm up")
        await fakes.llm_latency(sizes.model_latency)
        since = await fakes.mark()
        users, channels = (USER_BASE, DM_BASE) if history else (FRESH_USER_BASE, FRESH_DM_BASE)
        messages = [
            (users + u, channels + u, f"what is {u} squared?") for u in range(first, first + n)
        ]
        expect = [(channel, SLOW_ANSWER) for _u, channel, _text in messages]
        await fakes.llm_peak()
        cpu_before, loop_before, fakes_before = cpu_seconds(), loop_thread_cpu(), await fakes.cpu()
        with StallMonitor() as monitor, GcMonitor() as collector, profiled(ctx, "discord"):
            sent = await fakes.dm(messages)
            replies = await fakes.wait_answers(expect, since, timeout=180.0)
        cpu, loop_cpu = cpu_seconds() - cpu_before, loop_thread_cpu() - loop_before
        fakes_cpu = await fakes.cpu() - fakes_before
        peak = await fakes.llm_peak()
    sent_at = {channel: t for (_u, channel, _text), t in zip(messages, sent, strict=True)}
    return tally(
        [text for _c, _t, text in replies],
        [arrived - sent_at[channel] for channel, arrived, _text in replies],
        dispatch=max(sent) - min(sent),
        wall=max(arrived for _c, arrived, _t in replies) - min(sent),
        monitors=(monitor, collector),
        cpu=(cpu, loop_cpu, fakes_cpu),
        peak=peak,
    )


def tally(
    texts: Sequence[str],
    latencies: Sequence[float],
    *,
    dispatch: float,
    wall: float,
    monitors: tuple[StallMonitor, GcMonitor],
    cpu: tuple[float, float, float],
    peak: int,
) -> Burst:
    """A burst's figures from what each user was shown and how long it took."""
    monitor, collector = monitors
    other: dict[str, int] = {}
    for text in texts:
        if text != SLOW_ANSWER:
            other[text] = other.get(text, 0) + 1
    return Burst(
        answered=sum(text == SLOW_ANSWER for text in texts),
        other=other,
        dispatch=dispatch,
        wall=wall,
        p50=percentile(latencies, 0.5),
        p99=percentile(latencies, 0.99),
        stall=monitor.worst,
        stall_samples=monitor.samples,
        gc_total=collector.total,
        gc_worst=collector.worst,
        gc_count=collector.count,
        cpu=cpu[0],
        loop_cpu=cpu[1],
        fakes_cpu=cpu[2],
        peak=peak,
    )


async def direct_burst(ctx: Context, n: int, first: int, how: str) -> Burst:
    """The same burst without Discord: `n` questions at once straight into the core
    (`Assistant.ask`) or into the bare baseline (`Runner.run` with an `SQLiteSession`, the
    whole conversation or, `how="windowed"`, the bot's window), through the same model
    client and agent as the bot's."""
    from agents import RunConfig, Runner

    from bot.errors import UserFacingError
    from bot.memory.keys import user_session_id

    sizes = ctx.sizes
    path = await ctx.prefilled()
    bare = RunConfig(tracing_disabled=True)
    async with bot_world(ctx, path) as world:
        fakes, assistant = world.fakes, world.assistant
        agent = assistant._agent

        async def baseline(user: int, text: str) -> tuple[float, str]:
            session = sdk_session(user_session_id(user), path, how == "windowed")
            try:
                result = await Runner.run(agent, text, session=session, run_config=bare)
            finally:
                session.close()
            return time.perf_counter(), str(result.final_output)

        async def core(user: int, text: str) -> tuple[float, str]:
            try:
                shown = (await assistant.ask(user_session_id(user), text)).text
            except UserFacingError as exc:
                shown = str(exc)
            return time.perf_counter(), shown

        call = core if how == "core" else baseline
        for u in range(3):
            await call(USER_BASE + u, "warm up")
        await fakes.llm_latency(sizes.model_latency)
        await fakes.llm_peak()
        questions = [(USER_BASE + u, f"what is {u} squared?") for u in range(first, first + n)]
        cpu_before, loop_before, fakes_before = cpu_seconds(), loop_thread_cpu(), await fakes.cpu()
        with StallMonitor() as monitor, GcMonitor() as collector, profiled(ctx, how):
            started = time.perf_counter()
            done = await asyncio.gather(*(call(u, text) for u, text in questions))
        cpu, loop_cpu = cpu_seconds() - cpu_before, loop_thread_cpu() - loop_before
        fakes_cpu = await fakes.cpu() - fakes_before
        peak = await fakes.llm_peak()
    latencies = [t - started for t, _text in done]
    return tally(
        [text for _t, text in done],
        latencies,
        dispatch=0.0,
        wall=max(latencies),
        monitors=(monitor, collector),
        cpu=(cpu, loop_cpu, fakes_cpu),
        peak=peak,
    )


async def bench_concurrency(ctx: Context) -> Report:
    sizes = ctx.sizes
    n = sizes.concurrent_users
    report = Report(f"2. Concurrency: {n} users ask at once, model takes {sizes.model_latency:g} s")
    top = sizes.prefill_users - n  # each burst has its own users, all with a stored history
    runs = [("controls opened up", await burst(ctx, n, ctx.env, top))]
    runs.append(("same, new users", await burst(ctx, n, ctx.env, 0, history=False)))
    runs.append(("core only", await direct_burst(ctx, n, max(0, top - n), "core")))
    runs.append(("bare Runner.run", await direct_burst(ctx, n, max(0, top - 2 * n), "baseline")))
    runs.append(("bare, windowed", await direct_burst(ctx, n, max(0, top - 3 * n), "windowed")))
    if sizes.default_controls_burst:
        runs.append(("default controls", await burst(ctx, n, {}, max(0, top - 4 * n))))
    rows = [
        ["answered by the model", *(f"{b.answered} / {n}" for _, b in runs)],
        ["other replies", *(str(sum(b.other.values())) for _, b in runs)],
        ["dispatch of all events (fake side)", *(f"{ms(b.dispatch)} ms" for _, b in runs)],
        ["model requests in flight at once, max", *(str(b.peak) for _, b in runs)],
        ["wall: first event -> last reply", *(f"{b.wall:.2f} s" for _, b in runs)],
        ["per-user latency p50", *(f"{b.p50:.2f} s" for _, b in runs)],
        ["per-user latency p99", *(f"{b.p99:.2f} s" for _, b in runs)],
        ["bot event-loop worst stall", *(f"{ms(b.stall)} ms" for _, b in runs)],
        [
            "garbage collector: pauses, total (worst)",
            *(f"{b.gc_count}, {b.gc_total:.2f} s ({ms(b.gc_worst)} ms)" for _, b in runs),
        ],
        ["bot CPU during the burst", *(f"{b.cpu:.2f} s" for _, b in runs)],
        ["  per question", *(f"{b.cpu / n * MS:.1f} ms" for _, b in runs)],
        ["  of it on the event-loop thread", *(f"{b.loop_cpu / n * MS:.1f} ms" for _, b in runs)],
        ["fakes' CPU (other process)", *(f"{b.fakes_cpu:.2f} s" for _, b in runs)],
    ]
    report.table(["figure", *(name for name, _ in runs)], rows)
    opened = ", ".join(f"{k}={v}" for k, v in ctx.env.items())
    report.note(f"controls opened up: {opened}")
    report.note(
        f"users have {sizes.prefill_turns} stored turns ({HISTORY_TURNS} read per question), "
        "except in 'same, new users'"
    )
    for name, b in runs:
        for text, count in sorted(b.other.items(), key=lambda kv: -kv[1])[:2]:
            report.note(f"{name}: {count} x {text!r}")
    main = runs[0][1]
    walls = dict(runs)
    report.note(
        "bare SDK's wall time / the bot's (controls opened up), above 1: the bot is faster: "
        f"{walls['bare Runner.run'].wall / main.wall:.2f} against the unbounded baseline, "
        f"{walls['bare, windowed'].wall / main.wall:.2f} against the windowed one "
        f"(SessionSettings(limit={WINDOW_ITEMS}), the bot's {HISTORY_TURNS} turns)"
    )
    report.goal(
        f"all {n} answered, wall under 2 s: {main.answered}/{n} in {main.wall:.2f} s",
        main.answered == n and main.wall < 2.0,
    )
    report.goal(f"worst stall under 100 ms: {ms(main.stall)} ms", main.stall < 0.100)
    return report


# --------------------------------------------------------------------------- 3. bounded cost


async def bench_bounded(ctx: Context) -> Report:
    turns = ctx.sizes.bounded_turns
    report = Report(f"3. Bounded cost: request size along one {turns}-turn conversation")
    async with bot_world(ctx, ctx.fresh_db("bounded")) as world:
        fakes = world.fakes
        failed = 0
        for i in range(turns):
            timed = await dm_round(
                fakes, FRESH_USER_BASE, FRESH_DM_BASE, f"question {i:04d}: what is {i:04d} + 1?"
            )
            failed += not timed.ok
        log = await fakes.llm_log()
    if failed or len(log) < turns:
        report.note(f"{failed} turns failed; {len(log)} model requests for {turns} turns")
    marks = [t for t in (1, 10, 20, 21, 50, 100, 150, turns) if t <= len(log)]
    rows = [[f"turn {t}", f"{log[t - 1][0]:,}", str(log[t - 1][1])] for t in sorted(set(marks))]
    report.note(f"HISTORY_TURNS={HISTORY_TURNS}; messages include the system prompt")
    report.table(["turn", "body bytes", "messages"], rows)
    if len(log) < max(turns, 20):
        report.goal(f"turn {turns} within 10% of turn 20: not enough model requests", False)
        return report
    small, large = log[19], log[turns - 1]
    growth_bytes = large[0] / small[0] - 1
    growth_msgs = large[1] / small[1] - 1
    report.goal(
        f"turn {turns} within 10% of turn 20: bytes {growth_bytes:+.1%}, "
        f"messages {growth_msgs:+.1%}",
        abs(growth_bytes) <= 0.10 and abs(growth_msgs) <= 0.10,
    )
    return report


# --------------------------------------------------------------------------- 4. stores


async def store_turn(store: SessionStore, session_id: str, n: int) -> float:
    """The bot's store operations for one turn, timed: the turn lock, opening the session,
    reading the bounded history, committing the turn's two items in one write, closing."""
    from bot.memory.turn_session import TurnSession

    question, answer = turn_texts(n, n)
    started = time.perf_counter()
    async with store.turn_lock(session_id) as lease, store.session(session_id) as stored:
        turn = TurnSession(stored, HISTORY_TURNS, store=store, lease=lease)
        await turn.get_items()
        await turn.add_items([user_item(question)])  # what the SDK hands the session
        await turn.add_items([assistant_item(answer, f"chatcmpl-bench-{n}")])
        await turn.commit()
    return time.perf_counter() - started


async def prefill_store(store: SessionStore, session_ids: Sequence[str], turns: int) -> None:
    async def one(index: int, session_id: str) -> None:
        items: list[Any] = []
        for t in range(turns):
            question, answer = turn_texts(index, t)
            items += [user_item(question), assistant_item(answer, f"chatcmpl-{index}-{t}")]
        async with store.session(session_id) as stored:
            await stored.add_items(items)

    for start in range(0, len(session_ids), 10):
        await asyncio.gather(
            *(one(start + i, s) for i, s in enumerate(session_ids[start : start + 10]))
        )


async def measure_store(store: SessionStore, sizes: Sizes, tag: str) -> list[str]:
    serial_ids = [f"bench:{tag}:serial:{i}" for i in range(10)]
    parallel_ids = [f"bench:{tag}:par:{i}" for i in range(sizes.store_concurrency)]
    await prefill_store(store, serial_ids + parallel_ids, sizes.prefill_turns)
    for i in range(5):  # warm-up
        await store_turn(store, serial_ids[i % len(serial_ids)], i)
    serial = [
        await store_turn(store, serial_ids[i % len(serial_ids)], i)
        for i in range(sizes.store_turns_serial)
    ]

    async def worker(session_id: str) -> list[float]:
        return [await store_turn(store, session_id, i) for i in range(sizes.store_turns_each)]

    started = time.perf_counter()
    per_worker = await asyncio.gather(*(worker(s) for s in parallel_ids))
    wall = time.perf_counter() - started
    parallel = [t for times in per_worker for t in times]
    return [
        ms(percentile(serial, 0.5)),
        ms(percentile(serial, 0.99)),
        ms(percentile(parallel, 0.5)),
        ms(percentile(parallel, 0.99)),
        f"{len(parallel) / wall:.0f}",
    ]


@contextlib.asynccontextmanager
async def sqlite_store(ctx: Context) -> AsyncIterator[SessionStore]:
    from bot.memory.sqlite import SQLiteStore

    store = SQLiteStore(str(ctx.fresh_db("store")))
    await store.start()
    try:
        yield store
    finally:
        await store.close()


@contextlib.asynccontextmanager
async def postgres_store(ctx: Context) -> AsyncIterator[SessionStore]:
    from bot.memory import postgres, stores

    tag = uuid.uuid4().hex[:10]
    sessions, messages = f"bench_{tag}_sessions", f"bench_{tag}_messages"
    if not isinstance(stores.open_store(POSTGRES_URL), postgres.PostgresStore):
        raise RuntimeError("open_store() did not give a PostgresStore")
    store = postgres.PostgresStore(POSTGRES_URL, sessions_table=sessions, messages_table=messages)
    async with asyncio.timeout(15):
        await store.start()
    try:
        yield store
    finally:
        from sqlalchemy import text

        try:
            async with store.engine.begin() as conn:
                await conn.execute(text(f"DROP TABLE IF EXISTS {messages}, {sessions} CASCADE"))
        finally:
            await store.close()


@contextlib.asynccontextmanager
async def redis_store(ctx: Context) -> AsyncIterator[SessionStore]:
    from bot.memory import redis, stores

    tag = uuid.uuid4().hex[:10]
    prefix = f"mathbot-bench-{tag}"
    if not isinstance(stores.open_store(REDIS_URL), redis.RedisStore):
        raise RuntimeError("open_store() did not give a RedisStore")
    store = redis.RedisStore(
        REDIS_URL, key_prefix=f"{prefix}:session", lock_prefix=f"{prefix}:lock"
    )
    async with asyncio.timeout(15):
        await store.start()
    try:
        yield store
    finally:
        try:
            keys = [key async for key in store.client.scan_iter(match=f"{prefix}:*", count=1000)]
            if keys:
                await store.client.delete(*keys)
        finally:
            await store.close()


async def bench_stores(ctx: Context) -> Report:
    sizes = ctx.sizes
    c = sizes.store_concurrency
    report = Report("4. Stores: the bot's store operations for one turn")
    report.note(
        f"a turn = turn lock + open session + read last {HISTORY_TURNS} turns + commit 2 items "
        f"+ close; sessions hold {sizes.prefill_turns} turns"
    )
    rows = []
    for name, opener in (
        ("SQLite (file)", sqlite_store),
        ("PostgreSQL", postgres_store),
        ("Redis", redis_store),
    ):
        try:
            async with opener(ctx) as store:
                rows.append([name, *await measure_store(store, sizes, uuid.uuid4().hex[:6])])
                slots = getattr(store, "_max_turns", None)
                if isinstance(slots, int) and slots < c:
                    report.note(
                        f"{name}: the store lets {slots} turns hold their lock at once "
                        f"(max_concurrent_turns); at {c} the rest wait for a slot"
                    )
        except Exception as exc:  # noqa: BLE001 - a store not ready yet is a row, not a crash
            reason = f"{type(exc).__name__}: {exc}".splitlines()[0][:90]
            rows.append([name, f"n/a ({reason})", "", "", "", ""])
    report.table(
        ["store", "1: p50 ms", "1: p99 ms", f"{c}: p50 ms", f"{c}: p99 ms", f"{c}: turns/s"],
        rows,
    )
    report.note(f"1 = one session at a time; {c} = {c} sessions turning concurrently")
    return report


# --------------------------------------------------------------------------- 5. memory


@dataclass(frozen=True)
class Reading:
    rss: int  # VmRSS, bytes
    blocks: int  # live Python objects (pymalloc blocks), after gc.collect()


async def serve_users(
    ask: Callable[[list[int]], Awaitable[int]],
    points: Sequence[int],
    batch: int,
    settle: Callable[[], Awaitable[None]],
) -> tuple[dict[int, Reading], int]:
    """Serve new users `batch` at a time (`ask` returns how many got no model answer); at
    each point, `settle()`, gc.collect(), then read VmRSS and the live Python objects."""
    readings: dict[int, Reading] = {}
    served = failed = 0
    for point in points:
        while served < point:
            users = list(range(served, min(served + batch, point)))
            failed += await ask(users)
            served += len(users)
        await settle()
        gc.collect()
        readings[point] = Reading(rss_bytes(), sys.getallocatedblocks())
    return readings, failed


@dataclass(frozen=True)
class Growth:
    rss_all: float  # B/user, first -> last point
    rss_tail: float  # B/user, second-to-last -> last point
    blocks_tail: float  # live objects/user, second-to-last -> last point


def memory_table(report: Report, readings: dict[int, Reading], extra: dict[int, str]) -> Growth:
    points = sorted(readings)
    header = ["point", "VmRSS MiB", "live Python objects"]
    header += ["rate-limit buckets held, most"] if extra else []
    report.table(
        header,
        [
            [
                f"after {p:,} users",
                f"{readings[p].rss / 2**20:.1f}",
                f"{readings[p].blocks:,}",
                *([extra[p]] if extra else []),
            ]
            for p in points
        ],
    )
    first, mid, last = points[0], points[-2], points[-1]
    growth = Growth(
        rss_all=(readings[last].rss - readings[first].rss) / (last - first),
        rss_tail=(readings[last].rss - readings[mid].rss) / (last - mid),
        blocks_tail=(readings[last].blocks - readings[mid].blocks) / (last - mid),
    )
    report.note(f"RSS per user, {first:,} -> {last:,}: {growth.rss_all:,.0f} B")
    report.note(
        f"RSS per user, {mid:,} -> {last:,}: {growth.rss_tail:,.0f} B; live Python objects "
        f"per user: {growth.blocks_tail:+.3f}"
    )
    return growth


# Per-user growth below these is noise (allocator, connections and timers in flight, caches
# still warming: about +-800 objects between two readings), not state kept per user; keeping
# even one object per user would show as +1 object/user or more.
RSS_LIMIT = 512  # B/user
BLOCKS_LIMIT = 0.5  # live objects/user


def memory_notes(
    report: Report, sizes: Sizes, busy: int, failed: int, served: int, elapsed: float
) -> bool:
    """The notes both memory sections end with; False on a quick run (no verdict then)."""
    report.note(f"sessions still tracked by the turn queue afterwards: {busy}")
    if failed:
        report.note(f"{failed} of {served:,} questions got no answer from the model")
    report.note(f"({served:,} turns served in {elapsed:.0f} s)")
    if not sizes.memory_verdict:
        report.note("quick run: too few users for a verdict on memory (run without --quick)")
    return sizes.memory_verdict


async def bench_memory(ctx: Context) -> Report:
    """Users served through the core (`Assistant.ask`) against the fake model."""
    from bench._world import Fakes, shared_parts
    from bot.app import build
    from bot.errors import UserFacingError
    from bot.memory.keys import user_session_id

    sizes = ctx.sizes
    points = sizes.memory_points
    report = Report(
        f"5. Memory: serving {points[0]:,} ... {points[-1]:,} distinct users (core: Assistant.ask)"
    )
    started = time.perf_counter()
    async with Fakes() as fakes, contextlib.AsyncExitStack() as stack:
        settings = bench_settings(fakes, ctx.fresh_db("memory"), ctx.env)
        assistant = build(settings, **await shared_parts(stack))
        await assistant.start()
        stack.push_async_callback(assistant.close)

        async def one(u: int) -> bool:
            text = f"what is {u} + 1?"
            try:
                answer = await assistant.ask(user_session_id(FRESH_USER_BASE + u), text)
            except UserFacingError:
                return False
            return answer.text == echo(text)

        async def ask(users: list[int]) -> int:
            return sum(not ok for ok in await asyncio.gather(*(one(u) for u in users)))

        async def settle() -> None:
            pass

        readings, failed = await serve_users(ask, points, sizes.memory_batch, settle)
        busy = assistant.busy_sessions
    elapsed = time.perf_counter() - started
    report.note(
        f"{sizes.memory_batch} new users at a time, one question each, the fake model over "
        "loopback HTTP; gc.collect() before each reading"
    )
    growth = memory_table(report, readings, {})
    if not memory_notes(report, sizes, busy, failed, points[-1], elapsed):
        return report
    report.goal(
        f"no per-user growth over {points[-2]:,} -> {points[-1]:,} users (RSS < {RSS_LIMIT} "
        f"B/user: {growth.rss_tail:,.0f}; objects < {BLOCKS_LIMIT}/user: "
        f"{growth.blocks_tail:+.3f})",
        growth.rss_tail < RSS_LIMIT and growth.blocks_tail < BLOCKS_LIMIT,
    )
    return report


def ratelimit_bucket_cost() -> tuple[float, float]:
    """Heap bytes and live objects of one discord.py rate-limit bucket with its key (the
    bucket needs a running loop)."""
    import tracemalloc

    from discord.http import Ratelimit

    gc.collect()
    blocks = sys.getallocatedblocks()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        held = {
            f"POST /channels/{{channel_id}}/messages:{DM_BASE + i}": Ratelimit(None)
            for i in range(1000)
        }
        size = (tracemalloc.get_traced_memory()[0] - before) / len(held)
    finally:
        tracemalloc.stop()
    gc.collect()
    return size, (sys.getallocatedblocks() - blocks) / len(held)


def expire_ratelimits(http: Any) -> int:
    """Do what discord.py does once its rate-limit buckets have been idle 5 minutes (drop
    them), without waiting 5 minutes; returns how many there were. Bench-only: reaches into
    discord.py's HTTPClient internals."""
    held = len(http._buckets)
    long_ago = asyncio.get_running_loop().time() - 301.0
    for bucket in http._buckets.values():
        bucket._last_request = min(bucket._last_request, long_ago)
    http._try_clear_expired_ratelimits()  # acts once 256 or more are held
    return held


async def bench_memory_discord(ctx: Context) -> Report:
    """Users served through Discord DMs: the adapter and discord.py's caches included."""
    from bench._world import handlers_done

    sizes = ctx.sizes
    points = sizes.memory_discord_points
    report = Report(
        f"5b. Memory: serving {points[0]:,} ... {points[-1]:,} distinct users (through Discord DMs)"
    )
    buckets: list[int] = []  # at each reading: the most held at once since the previous one
    peak = [0]
    per_batch: list[int] = []  # held after each batch, before idle ones are dropped
    started = time.perf_counter()
    async with bot_world(ctx, ctx.fresh_db("memory")) as world:
        fakes = world.fakes

        async def ask(users: list[int]) -> int:
            since = await fakes.mark()
            messages = [
                (FRESH_USER_BASE + u, FRESH_DM_BASE + u, f"what is {u} + 1?") for u in users
            ]
            await fakes.dm(messages)
            expect = [(channel, echo(text)) for _u, channel, text in messages]
            shown = await fakes.wait_answers(expect, since, timeout=60.0)
            await handlers_done(30.0)  # streamed answers' last edits, turns finishing
            held = expire_ratelimits(world.bot.http)  # as if each batch came 5 minutes apart
            peak[0] = max(peak[0], held)
            per_batch.append(held)
            return sum(got != want for (_c, _t, got), (_c, want) in zip(shown, expect, strict=True))

        async def settle() -> None:
            await handlers_done(30.0)
            buckets.append(peak[0])
            peak[0] = 0

        readings, failed = await serve_users(ask, points, sizes.memory_batch, settle)
        busy = world.assistant.busy_sessions
        bucket_bytes, bucket_blocks = ratelimit_bucket_cost()
    elapsed = time.perf_counter() - started
    held = dict(zip(points, buckets, strict=True))
    report.note(
        f"{sizes.memory_batch} new users at a time, one DM each; after each batch, discord.py "
        "drops its idle rate-limit buckets as it does after 5 idle minutes (it starts once it "
        "holds 256); gc.collect() before each reading"
    )
    growth = memory_table(report, readings, {p: f"{held[p]:,}" for p in points})
    mid, last = points[-2], points[-1]
    per_user = per_batch[0] / sizes.memory_batch  # the first batch: none dropped yet
    report.note(
        f"rate-limit buckets: discord.py keeps one per route and channel ({per_user:.1f} per "
        f"DM user: typing, send, edit), {bucket_bytes:,.0f} B / {bucket_blocks:.1f} objects "
        f"each, i.e. {per_user * bucket_bytes:,.0f} B per user active in the last 5 minutes"
    )
    if not memory_notes(report, sizes, busy, failed, last, elapsed):
        return report
    report.goal(
        f"nothing kept per user beyond bounded caches (live objects < {BLOCKS_LIMIT}/user: "
        f"{growth.blocks_tail:+.3f})",
        growth.blocks_tail < BLOCKS_LIMIT,
    )
    why = "" if growth.rss_tail < RSS_LIMIT else " (the heap keeps its high-water mark)"
    report.goal(
        f"RSS per user under {RSS_LIMIT} B over {mid:,} -> {last:,} users: "
        f"{growth.rss_tail:,.0f} B{why}",
        growth.rss_tail < RSS_LIMIT,
    )
    return report


# --------------------------------------------------------------------------- experiments
# Monkeypatches that try a change to bot/ (or to how it calls its libraries) without editing
# it. Only applied with --experiment; never part of the default run.


def experiment_first_draft_delay() -> str:
    """A streamed reply posts its first draft only if the answer is not finished within half
    STREAM_EDIT_INTERVAL. Today a draft can go out at once, and the final text then waits
    for the edit pace (up to the interval) even when the model answered in milliseconds."""
    from bot.discord_app.live import LiveReply

    original = LiveReply._publish

    async def publish(self: Any) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._interval / 2):
                await self._stop.wait()
                return  # finished before any draft: the answer is posted once, whole
        await original(self)

    LiveReply._publish = publish  # type: ignore[method-assign]
    return "bot.discord_app.live.LiveReply: first draft only after STREAM_EDIT_INTERVAL / 2"


def experiment_default_gc() -> str:
    """CPython's own collector settings: no `bot.process.tune_garbage_collector`."""
    import bot.process

    bot.process.tune_garbage_collector = lambda: 0  # type: ignore[assignment]
    return "bot.process.tune_garbage_collector: not called"


def experiment_gc_young_50k() -> str:
    """Young collections every 50,000 net allocations instead of CPython's 700, so that the
    objects of a turn in flight mostly die before they are examined. Measured: collector time
    in a 500-question burst 2.6-4.4 s -> ~0.6 s, CPU per question 27 -> 19 ms, but RSS through
    Discord +1.5 KB per user served (3,000 -> 7,000 users) against ~0.3 without."""
    import bot.process

    original = bot.process.tune_garbage_collector

    def tune() -> int:
        gc.set_threshold(50_000, 20, 10)
        return original()

    bot.process.tune_garbage_collector = tune  # type: ignore[assignment]
    return "gc.set_threshold(50_000, 20, 10) at start-up"


EXPERIMENTS: dict[str, Callable[[], str]] = {
    "gc-young-50k": experiment_gc_young_50k,
    "default-gc": experiment_default_gc,
    "first-draft-delay": experiment_first_draft_delay,
}


class LogTally(logging.Handler):
    """Counts the log records of level WARNING and up instead of printing each one."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.counts: dict[str, int] = {}

    def emit(self, record: logging.LogRecord) -> None:
        key = f"{record.levelname} {record.name}: {record.getMessage()}"
        if record.exc_info and record.exc_info[1] is not None:
            key += f" ({type(record.exc_info[1]).__name__}: {record.exc_info[1]})"
        key = key[:160]
        self.counts[key] = self.counts.get(key, 0) + 1

    def flush_summary(self) -> None:
        for key, count in sorted(self.counts.items(), key=lambda kv: -kv[1])[:3]:
            print(f"  log: {count} x {key}")
        self.counts.clear()


# --------------------------------------------------------------------------- main

ISOLATED = {"memory", "memory-discord"}  # sections that run in a process of their own in a full run
SECTIONS: dict[str, Callable[[Context], Awaitable[Report]]] = {
    "overhead": bench_overhead,
    "concurrency": bench_concurrency,
    "bounded": bench_bounded,
    "stores": bench_stores,
    "memory": bench_memory,
    "memory-discord": bench_memory_discord,
}


async def run_isolated(name: str, quick: bool, experiments: Sequence[str]) -> int:
    """Run one section in a fresh interpreter (its output goes straight to ours); returns the
    number of goals it missed."""
    args = [sys.executable, str(THIS_FILE), "--only", name, "--as-child"]
    args += ["--quick"] if quick else []
    for experiment in experiments:
        args += ["--experiment", experiment]
    sys.stdout.flush()
    process = await asyncio.create_subprocess_exec(*args, cwd=str(REPO_ROOT))
    code = await process.wait()
    if not 0 <= code < 100:
        print(f"  ✗ {name} failed in its own process (exit code {code})")
        return 1
    return code


async def run(
    sizes: Sizes,
    only: str | None,
    experiments: Sequence[str],
    *,
    quick: bool = False,
    as_child: bool = False,
    profile: Path | None = None,
    profile_burst: str = "discord",
) -> int:
    names = [only] if only else list(SECTIONS)
    failed = 0
    started = time.perf_counter()
    tally = LogTally()
    logging.getLogger().addHandler(tally)
    logging.getLogger().setLevel(logging.WARNING)
    for name in experiments:
        if not as_child:
            print(f"EXPERIMENT (not the bot as it is): {EXPERIMENTS[name]()}")
        else:
            EXPERIMENTS[name]()
    with tempfile.TemporaryDirectory(prefix="mathbot-bench-") as tmp:
        ctx = Context(sizes, Path(tmp), profile=profile, profile_burst=profile_burst)
        for name in names:
            section_started = time.perf_counter()
            if not as_child:
                print(f"\n== {name} ==", flush=True)
            if name in ISOLATED and len(names) > 1:
                print("  (in a fresh process, so that the other sections' heap does not blur RSS)")
                failed += await run_isolated(name, quick, experiments)
                continue
            try:
                report = await SECTIONS[name](ctx)
            except Exception as exc:  # noqa: BLE001 - one broken section must not hide the rest
                print(f"  ✗ {name} failed: {type(exc).__name__}: {exc}")
                failed += 1
                continue
            print(report.title)
            report.print()
            tally.flush_summary()
            failed += sum(not g.met for g in report.goals)
            print(f"  ({time.perf_counter() - section_started:.1f} s)", flush=True)
    if not as_child:
        print(f"\ntotal {time.perf_counter() - started:.0f} s; goals missed: {failed}")
    return failed


def add_experiment_option(parser: argparse.ArgumentParser, experiments: dict[str, Any]) -> None:
    """`--experiment NAME`, repeatable: one of `experiments`, patched in for the run."""
    parser.add_argument(
        "--experiment",
        action="append",
        default=[],
        choices=sorted(experiments),
        help="monkeypatch a candidate change to bot/ for this run (may be repeated)",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smaller, faster run")
    parser.add_argument("--only", choices=sorted(SECTIONS), help="run one section")
    add_experiment_option(parser, EXPERIMENTS)
    parser.add_argument(
        "--profile", type=Path, help="cProfile one concurrency burst into this file"
    )
    parser.add_argument(
        "--profile-burst",
        choices=("discord", "core", "baseline", "windowed"),
        default="discord",
        help="which burst --profile records (default: the one through Discord)",
    )
    parser.add_argument("--as-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    os.chdir(REPO_ROOT)
    sizes = QUICK if args.quick else Sizes()
    failed = asyncio.run(
        run(
            sizes,
            args.only,
            args.experiment,
            quick=args.quick,
            as_child=args.as_child,
            profile=args.profile,
            profile_burst=args.profile_burst,
        )
    )
    if args.as_child:
        sys.exit(min(failed, 99))


if __name__ == "__main__":
    main()

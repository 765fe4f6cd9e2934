"""Honest users' latency and the event loop's worst stall, without and with hostile users.

The real bot runs in this process; the loopback fakes of Discord and of the model run in a
child process (this script with `--serve`: bench/_world.py's fakes, plus two hostile hooks).
Honest users DM short questions one after another; hostile users, at the same time, steer
the model into answer-text bombs (45 KB of unclosed `\\[` lines, 7,500 inline formulas),
vetting bombs (a 481-character factorial chain for `calculate`), plot bombs (that chain in
every field of `plot`: 6 functions, 4 range ends, 20 marked points) and tool-call floods (20
calculations that run into the time limit in one model response), and attach 10 x 8 MB
images to their messages. Both phases run in one process, side by side:

    .venv/bin/python bench/bench_hostile.py            # ~80 s on 2 cores
    .venv/bin/python bench/bench_hostile.py --rounds 25  # quicker, a noisier p99

Each phase has 4 x 100 honest answers by default: the p99 of 100 answers is their
second-worst, which moved by half from one run to the next; of 400, the fifth-worst.

By default the rate limit is off (`USER_RATE_LIMIT=off`): the worst case, every hostile
message is processed, and hostile users also compete with honest ones for the bot's CPU by
sheer number of turns. `--rate-limit 5/60` (the bot's default) limits hostile users as a
deployment does; honest users are then admins (exempt), so that they can ask many questions.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import contextvars
import json
import logging
import re
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, ClassVar

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from bench import _world  # noqa: E402
from bench._world import FakesError  # noqa: E402
from bench.bench_bot import (  # noqa: E402
    OPEN_CONTROLS,
    StallMonitor,
    add_experiment_option,
    bench_settings,
    dm_round,
    percentile,
)

HONEST = [(800000000000001000 + i, 700000000000001000 + i) for i in range(4)]
HOSTILE = [(800000000000002000 + i, 700000000000002000 + i) for i in range(3)]
BOMBS = {
    "BOMB brackets": "\\[\n" * 15_000,  # 45 KB: quadratic splitting took 3 s of loop time
    "BOMB inline": "$x^2$ " * 7_500,  # 45 KB of formulas: 0.7 s to convert each time
}
UPLOAD = "UPLOAD 10 images of 8 MB"
CHAIN = ("x" + "!" * 12) * 37  # 481 characters: the factorial rewrite cost 140-250 ms
TOOL_BOMBS: dict[str, list[tuple[str, dict[str, Any], str]]] = {
    "VET calculate": [("calculate", {"expression": CHAIN}, "call_vet")],
    "PLOT everything": [
        (
            "plot",
            {
                "functions": [CHAIN] * 6,
                **dict.fromkeys(("x_min", "x_max", "y_min", "y_max"), CHAIN),
                "mark_points": [CHAIN] * 20,
            },
            "call_plot",
        )
    ],
    "FLOOD 20 calculations": [
        ("calculate", {"expression": f"integrate(exp(sin(x**{n}))*log(x**{n + 2}+1), x)"}, f"c{n}")
        for n in range(3, 23)
    ],
}
# What a hostile user can send, by the name `--kinds` takes.
KINDS = dict(
    zip(
        ("brackets", "inline", "upload", "vet", "plot", "flood"),
        [*BOMBS, UPLOAD, *TOOL_BOMBS],
        strict=True,
    )
)
EXTRA_ENV: dict[str, str] = {}  # `--max-tokens`: LLM_MAX_TOKENS for the run
HONEST_TIMEOUT = 30.0  # an honest answer later than this counts as this late, and as lost
IMAGE_BYTES = 8_000_000
_THIS_FILE = Path(__file__).resolve()


# --------------------------------------------------------------------------- child process


def _hostile_classes() -> tuple[type, type]:
    """bench/_world.py's fakes, with the model writing bombs on request and the Discord
    fake attaching ten 8 MB images to a message that asks for them."""
    bench_discord, bench_llm = _original_classes()
    image = b"\x89PNG\r\n\x1a\n" + b"\0" * (IMAGE_BYTES - 8)

    class HostileDiscord(bench_discord):  # type: ignore[misc, valid-type]
        async def user_message(self, **kwargs: Any) -> dict[str, Any]:
            if kwargs.get("content") == UPLOAD:
                kwargs["attachments"] = [(f"p{i}.png", image, "image/png") for i in range(10)]
            return await super().user_message(**kwargs)  # type: ignore[no-any-return]

    class HostileLLM(bench_llm):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            super().__init__()
            echo = self.default

            def answer(request: dict[str, Any]) -> str:
                texts = self.user_texts(request)
                return BOMBS.get(texts[-1] if texts else "", "") or echo(request)

            self.default = answer

        async def _answer(self, request: Any) -> Any:
            """A question naming a tool bomb is answered with its tool calls; the model's
            next request (after the tool results) gets the default echo."""
            try:
                body = json.loads(await request.read())  # cached: the parent reads it again
            except ValueError:
                body = None
            messages = self.messages(body) if isinstance(body, dict) else []
            if messages and messages[-1].get("role") == "user":
                calls = TOOL_BOMBS.get(self.user_texts(body)[-1])
                if calls:
                    self.tool_calls(calls)  # no await until the parent takes this step
            return await super()._answer(request)

    return HostileDiscord, HostileLLM


_original_classes = _world._child_classes


class HostileFakes(_world.Fakes):
    """The fakes' child process, started as this script with `--serve`."""

    script = _THIS_FILE


# --------------------------------------------------------------------------- parent


@contextlib.asynccontextmanager
async def world(workdir: Path, streaming: bool, rate_limit: str) -> AsyncIterator[HostileFakes]:
    async with HostileFakes() as fakes:
        env = {**OPEN_CONTROLS, "STREAMING": "on" if streaming else "off"}
        env.update(EXTRA_ENV)
        if rate_limit != "off":
            env["USER_RATE_LIMIT"] = rate_limit
            env["ADMIN_USER_IDS"] = ",".join(str(user) for user, _channel in HONEST)
        settings = bench_settings(fakes, workdir / f"hostile-{streaming}.db", env)
        async with _world.running_bot(fakes, settings):
            yield fakes


class Honest:
    """What honest users ask: `--honest-math` puts the sum in `$...$`, so that each answer
    goes through the renderer's workers (where hostile answers' formulas are drawn too)."""

    math = False

    @classmethod
    def question(cls, turn: int, user: int) -> tuple[str, str | None]:
        """The question, and its answer as Discord shows it (None: the echo as it is)."""
        if cls.math:  # `$3^{2}$` is shown as 3²
            return f"what is ${turn}^{{2}}+{user % 100}$?", f"echo: what is {turn}²+{user % 100}?"
        return f"what is {turn}+{user % 100}?", None


async def honest_user(
    fakes: HostileFakes, user: int, channel: int, rounds: int
) -> list[float | None]:
    """Seconds per answer; None for an answer that was wrong or came after HONEST_TIMEOUT."""
    times: list[float | None] = []
    for turn in range(rounds):
        try:
            timed = await dm_round(fakes, user, channel, *Honest.question(turn, user))
        except FakesError:  # wait_answers timed out
            times.append(None)
            continue
        times.append(timed.seconds if timed.ok else None)
    return times


async def hostile_user(
    fakes: HostileFakes, user: int, channel: int, kinds: list[str], stop: asyncio.Event
) -> int:
    """Sends bombs and uploads until told to stop, one message every 50 ms."""
    sent = 0
    while not stop.is_set():
        await fakes.dm([(user, channel, kinds[sent % len(kinds)])])
        sent += 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.05)
    return sent


async def phase(fakes: HostileFakes, rounds: int, kinds: list[str]) -> dict[str, float]:
    """Honest users' answers while hostile users send `kinds` (none: a calm phase)."""
    stop = asyncio.Event()
    attacking = HOSTILE if kinds else []
    attackers = [asyncio.create_task(hostile_user(fakes, u, c, kinds, stop)) for u, c in attacking]
    await fakes.loop_lag()
    with StallMonitor() as monitor:
        results = await asyncio.gather(*(honest_user(fakes, u, c, rounds) for u, c in HONEST))
        stop.set()
        sent = sum(await asyncio.gather(*attackers))
    fakes_stall = await fakes.loop_lag()
    answered = [t for user in results for t in user]
    times = [HONEST_TIMEOUT if t is None else t for t in answered]
    return {
        "answers": sum(t is not None for t in answered),
        "lost (late or wrong)": sum(t is None for t in answered),
        "p50": percentile(times, 0.5),
        "p99": percentile(times, 0.99),
        "stall": monitor.worst,
        "  loop CPU in it": monitor.worst_cpu,
        "  process CPU in it": monitor.worst_process_cpu,
        "hostile messages": sent,
        "fakes' stall": fakes_stall,
    }


ROWS = (
    "answers",
    "lost (late or wrong)",
    "p50",
    "p99",
    "stall",
    "  loop CPU in it",
    "  process CPU in it",
    "hostile messages",
    "fakes' stall",
)
TIMES = ("p50", "p99", "stall", "  loop CPU in it", "  process CPU in it", "fakes' stall")
STALL_GOAL = 0.100  # seconds
P99_GOAL_RATIO, P99_GOAL_EXTRA = 1.5, 0.100  # the larger of the two


async def main(rounds: int, kinds: list[str], modes: list[bool], rate_limit: str) -> None:
    print(f"honest users {len(HONEST)} x {rounds} questions; hostile users {len(HOSTILE)}")
    print(f"honest questions like {Honest.question(3, 17)[0]!r}")
    print(f"hostile kinds: {', '.join(k for k, m in KINDS.items() if m in kinds)}")
    print(
        f"USER_RATE_LIMIT={rate_limit}" + (" (honest users exempt)" if rate_limit != "off" else "")
    )
    with tempfile.TemporaryDirectory() as tmp:
        for streaming in modes:
            async with world(Path(tmp), streaming, rate_limit) as fakes:
                await phase(fakes, 2, [])  # warm-up: imports, first renders
                calm = await phase(fakes, rounds, [])
                Timeline.spans = {}
                with SlowCallbacks() as slow:
                    attacked = await phase(fakes, rounds, kinds)
            report(streaming, calm, attacked)
            slow.report()
            Timeline.report()


def report(streaming: bool, calm: dict[str, float], attacked: dict[str, float]) -> None:
    print(f"\nSTREAMING={'on' if streaming else 'off'}")
    print(f"  {'measure':<24}{'honest only':>14}{'with hostile':>14}")
    for key in ROWS:
        unit = 1000.0 if key in TIMES else 1.0
        suffix = " ms" if unit > 1 else ""
        print(
            f"  {key:<24}{calm[key] * unit:>11.1f}{suffix:3}{attacked[key] * unit:>11.1f}{suffix:3}"
        )
    allowed = max(calm["p99"] * P99_GOAL_RATIO, calm["p99"] + P99_GOAL_EXTRA)
    ratio = attacked["p99"] / calm["p99"]
    verdict = "met" if attacked["p99"] <= allowed else "MISSED"
    print(
        f"  honest p99 with hostile load: {ratio:.2f}x without "
        f"(goal: at most {allowed * 1000:.0f} ms: {verdict})"
    )
    stall_met = max(calm["stall"], attacked["stall"]) < STALL_GOAL
    print(f"  worst stall under {STALL_GOAL * 1000:.0f} ms: {'met' if stall_met else 'MISSED'}")


class SlowCallbacks:
    """With `--slow-callbacks MS`: asyncio's debug mode names every callback or task step
    that held the loop longer than MS; the block prints the slowest, grouped."""

    threshold: float | None = None  # seconds; None: off

    def __init__(self) -> None:
        self.seen: list[tuple[float, str]] = []

    def __enter__(self) -> SlowCallbacks:
        if self.threshold is not None:
            loop = asyncio.get_running_loop()
            loop.set_debug(True)
            loop.slow_callback_duration = self.threshold
            logging.getLogger("asyncio").setLevel(logging.WARNING)
            logging.getLogger("asyncio").addFilter(self._record)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.threshold is not None:
            asyncio.get_running_loop().set_debug(False)
            logging.getLogger("asyncio").removeFilter(self._record)

    def _record(self, record: logging.LogRecord) -> bool:
        match = re.match(r"Executing (.*) took (\d+\.\d+) seconds", record.getMessage())
        if match:
            what = re.sub(r"0x[0-9a-f]+|\d{4,}", "…", match.group(1))[:200]
            self.seen.append((float(match.group(2)), what))
        return False

    def report(self) -> None:
        if self.threshold is None:
            return
        groups: dict[str, list[float]] = {}
        for seconds, what in self.seen:
            groups.setdefault(what, []).append(seconds)
        limit = self.threshold * 1000
        print(f"  loop held over {limit:.0f} ms (asyncio debug): {len(self.seen)} times")
        for what, times in sorted(groups.items(), key=lambda g: -max(g[1]))[:8]:
            print(f"    {len(times):>4} x, worst {max(times) * 1000:6.0f} ms: {what}")


def experiment_render_pool() -> str:
    """Rendering on a thread pool of its own, not asyncio's default one that the SQLite
    store and the usage ledger also use."""
    import types
    from concurrent.futures import ThreadPoolExecutor

    from bot.discord_app import live, replies

    pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="render")

    class Proxy(types.ModuleType):
        def __getattr__(self, name: str) -> Any:
            return getattr(asyncio, name)

        @staticmethod
        async def to_thread(function: Any, /, *args: Any) -> Any:
            return await asyncio.get_running_loop().run_in_executor(pool, function, *args)

    for module in (live, replies):
        module.asyncio = Proxy("asyncio")  # type: ignore[attr-defined]
    return "rendering (replies.render, live drafts) runs on its own pool of 2 threads"


def experiment_switch_interval() -> str:
    """A thread holding the GIL (rendering) gives it back to the event loop sooner."""
    sys.setswitchinterval(0.0005)
    return "sys.setswitchinterval(0.0005) (default 0.005)"


class Timeline:
    """`--timeline`: how long each stage of an honest answer took (MessageFlow.handle and
    the awaits inside it), under hostile load. Honest = the message's author is honest."""

    honest: ClassVar[contextvars.ContextVar[bool]] = contextvars.ContextVar("honest", default=False)
    spans: ClassVar[dict[str, list[float]]] = {}
    on = False

    @classmethod
    def install(cls) -> None:
        from bot.core.assistant import Assistant
        from bot.discord_app import messages
        from bot.discord_app.live import LiveReply
        from bot.discord_app.messages import MessageFlow
        from bot.render.renderer import Renderer

        cls.on = True
        honest_ids = {user for user, _channel in HONEST}
        handle = MessageFlow.handle

        async def timed_handle(self: Any, message: Any) -> None:
            if message.author.id not in honest_ids:
                return await handle(self, message)
            cls.honest.set(True)
            return await cls.timed("1 handle (all)", handle(self, message))

        MessageFlow.handle = timed_handle  # type: ignore[method-assign]
        for owner, name, label in (
            (MessageFlow, "_admit", "2 admit"),
            (MessageFlow, "_destination", "3 destination"),
            (Assistant, "_run_turn", "4 turn (store + model)"),
            (Assistant, "_run_agent", "5   model run"),
            (messages, "show", "6 show (render + REST)"),
            (LiveReply, "finish", "7   streamed: finish"),
            (LiveReply, "_show", "8   streamed: a draft"),
            (Renderer, "prepare", "9   render"),
        ):
            cls.wrap(owner, name, label)

    @classmethod
    def wrap(cls, owner: Any, name: str, label: str) -> None:
        original = getattr(owner, name)

        async def timed(*args: Any, **kwargs: Any) -> Any:
            if not cls.honest.get():
                return await original(*args, **kwargs)
            return await cls.timed(label, original(*args, **kwargs))

        setattr(owner, name, timed)

    @classmethod
    async def timed(cls, label: str, work: Any) -> Any:
        started = time.perf_counter()
        try:
            return await work
        finally:
            cls.spans.setdefault(label, []).append(time.perf_counter() - started)

    @classmethod
    def report(cls) -> None:
        if not cls.on:
            return
        print("  honest answers' stages (--timeline), under hostile load:")
        for label, spans in sorted(cls.spans.items()):
            p50, worst = percentile(spans, 0.5) * 1000, max(spans) * 1000
            print(f"    {label:<26} n {len(spans):>4}  p50 {p50:7.1f} ms  max {worst:7.1f} ms")
        cls.spans = {}


def experiment_stock_parse() -> str:
    """Undo one change to measure it: chunks built by the openai client's `construct_type`."""
    from openai import AsyncOpenAI

    from bot.core.llm_client import LeanAsyncOpenAI

    stock = AsyncOpenAI._process_response_data
    LeanAsyncOpenAI._process_response_data = stock  # type: ignore[method-assign]
    return "answers parsed by the openai client's construct_type, as before"


EXPERIMENTS = {
    "render-pool": experiment_render_pool,
    "switch-interval": experiment_switch_interval,
    "stock-parse": experiment_stock_parse,
}


def _cli() -> None:
    if sys.argv[1:] == ["--serve"]:
        logging.basicConfig(level=logging.ERROR)
        _world._child_classes = _hostile_classes
        asyncio.run(_world._serve())
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--rounds", type=int, default=100, help="questions per honest user (default: 100)"
    )
    parser.add_argument(
        "--kinds",
        default=",".join(KINDS),
        help=f"what hostile users send, comma-separated (default: all): {', '.join(KINDS)}",
    )
    parser.add_argument("--streaming", choices=("off", "on", "both"), default="both")
    parser.add_argument(
        "--rate-limit",
        default="off",
        help="USER_RATE_LIMIT for hostile users, e.g. 5/60 (default: off, the worst case)",
    )
    parser.add_argument(
        "--slow-callbacks",
        type=float,
        metavar="MS",
        help="name the loop's steps slower than MS under hostile load (asyncio debug mode)",
    )
    add_experiment_option(parser, EXPERIMENTS)
    parser.add_argument("--timeline", action="store_true", help="time the stages of honest answers")
    parser.add_argument(
        "--honest-math",
        action="store_true",
        help="honest questions hold inline math: their answers go through the render workers",
    )
    parser.add_argument("--max-tokens", help="LLM_MAX_TOKENS for the run (e.g. off)")
    args = parser.parse_args()
    if args.max_tokens:
        EXTRA_ENV["LLM_MAX_TOKENS"] = args.max_tokens
    if args.timeline:
        Timeline.install()
    Honest.math = args.honest_math
    for name in args.experiment:
        print(f"EXPERIMENT (not the bot as it is): {EXPERIMENTS[name]()}")
    kinds = [KINDS[k.strip()] for k in args.kinds.split(",") if k.strip()]
    modes = {"off": [False], "on": [True], "both": [False, True]}[args.streaming]
    if args.slow_callbacks is not None:
        SlowCallbacks.threshold = args.slow_callbacks / 1000
    # The bot's own log lines (a calculator busy, turns unfinished at shutdown) are noise here.
    logging.basicConfig(level=logging.CRITICAL)
    asyncio.run(main(args.rounds, kinds, modes, args.rate_limit))


if __name__ == "__main__":
    started = time.perf_counter()
    _cli()
    print(f"\n({time.perf_counter() - started:.0f} s)")

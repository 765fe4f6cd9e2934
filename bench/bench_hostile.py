"""Honest users' latency and the event loop's worst stall, without and with hostile users.

The real bot runs in this process; the loopback fakes of Discord and of the model run in a
child process (this script with `--serve`: bench/_world.py's fakes, plus two hostile hooks).
Honest users DM short questions one after another; hostile users, at the same time, steer
the model into answer-text bombs (45 KB of unclosed `\\[` lines, 7,500 inline formulas) and
attach 10 x 8 MB images to their messages. Both phases run in one process, side by side:

    .venv/bin/python bench/bench_hostile.py            # ~1 min on 2 cores
    .venv/bin/python bench/bench_hostile.py --rounds 10

The rate limit is off (`USER_RATE_LIMIT=off`): the worst case, every hostile message is
processed. With the default limit a hostile user gets 5 messages a minute.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from bench import _world  # noqa: E402
from bench.bench_bot import (  # noqa: E402
    OPEN_CONTROLS,
    StallMonitor,
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

    return HostileDiscord, HostileLLM


_original_classes = _world._child_classes


class HostileFakes(_world.Fakes):
    """The fakes' child process, started as this script with `--serve`."""

    script = _THIS_FILE


# --------------------------------------------------------------------------- parent


@contextlib.asynccontextmanager
async def world(workdir: Path, streaming: bool) -> AsyncIterator[HostileFakes]:
    async with HostileFakes() as fakes:
        env = {**OPEN_CONTROLS, "STREAMING": "on" if streaming else "off"}
        settings = bench_settings(fakes, workdir / f"hostile-{streaming}.db", env)
        async with _world.running_bot(fakes, settings):
            yield fakes


async def honest_user(fakes: HostileFakes, user: int, channel: int, rounds: int) -> list[float]:
    times = []
    for turn in range(rounds):
        timed = await dm_round(fakes, user, channel, f"what is {turn}+{user % 100}?")
        if timed.ok:
            times.append(timed.seconds)
    return times


async def hostile_user(fakes: HostileFakes, user: int, channel: int, stop: asyncio.Event) -> int:
    """Sends bombs and uploads until told to stop, one message every 50 ms."""
    sent = 0
    kinds = [*BOMBS, UPLOAD]
    while not stop.is_set():
        await fakes.dm([(user, channel, kinds[sent % len(kinds)])])
        sent += 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.05)
    return sent


async def phase(fakes: HostileFakes, rounds: int, hostile: bool) -> dict[str, float]:
    stop = asyncio.Event()
    attacking = HOSTILE if hostile else []
    attackers = [asyncio.create_task(hostile_user(fakes, u, c, stop)) for u, c in attacking]
    with StallMonitor() as monitor:
        results = await asyncio.gather(*(honest_user(fakes, u, c, rounds) for u, c in HONEST))
        stop.set()
        sent = sum(await asyncio.gather(*attackers))
    times = [t for user in results for t in user]
    return {
        "answers": len(times),
        "p50": percentile(times, 0.5),
        "p99": percentile(times, 0.99),
        "stall": monitor.worst,
        "hostile messages": sent,
    }


async def main(rounds: int) -> None:
    print(f"honest users {len(HONEST)} x {rounds} questions; hostile users {len(HOSTILE)}")
    with tempfile.TemporaryDirectory() as tmp:
        for streaming in (False, True):
            async with world(Path(tmp), streaming) as fakes:
                await phase(fakes, 2, hostile=False)  # warm-up: imports, first renders
                calm = await phase(fakes, rounds, hostile=False)
                attacked = await phase(fakes, rounds, hostile=True)
            print(f"\nSTREAMING={'on' if streaming else 'off'}")
            print(f"  {'measure':<24}{'honest only':>14}{'with hostile':>14}")
            for key in ("answers", "p50", "p99", "stall", "hostile messages"):
                unit = 1000.0 if key in ("p50", "p99", "stall") else 1.0
                suffix = " ms" if unit > 1 else ""
                print(
                    f"  {key:<24}{calm[key] * unit:>11.1f}{suffix:3}"
                    f"{attacked[key] * unit:>11.1f}{suffix:3}"
                )
            ratio = attacked["p99"] / calm["p99"]
            print(f"  honest p99 with hostile load: {ratio:.2f}x without")


def _cli() -> None:
    if sys.argv[1:] == ["--serve"]:
        import logging

        logging.basicConfig(level=logging.ERROR)
        _world._child_classes = _hostile_classes
        asyncio.run(_world._serve())
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=25, help="questions per honest user")
    asyncio.run(main(parser.parse_args().rounds))


if __name__ == "__main__":
    started = time.perf_counter()
    _cli()
    print(f"\n({time.perf_counter() - started:.0f} s)")

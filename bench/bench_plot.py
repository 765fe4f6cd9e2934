"""Benchmark of the plot tool: latency of ordinary plots and the worst case of hostile requests."""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.tools.plotting.plotter import PlotResult, Plotter
    from bot.tools.plotting.request import PlotRequest


def _ordinary(i: int) -> list[tuple[str, dict[str, Any]]]:
    """The mixed set, varied by ``i``: (kind, PlotRequest fields)."""
    rng = random.Random(i)
    k = i % 5 + 1
    return [
        ("single function", {"functions": (f"x^3 - {k}x",), "x_min": "-3", "x_max": "3"}),
        (
            "3 functions",
            {
                "functions": (f"sin({k}x)", f"cos(x)/{k}", f"exp(-x^2/{k})"),
                "x_min": "0",
                "x_max": "2*pi",
                "mark_points": ("pi/2",),
            },
        ),
        ("tan with poles", {"functions": (f"tan(x) + {k}",), "x_min": "-2pi", "x_max": "2pi"}),
        (
            "histogram of 500",
            {
                "data": tuple(rng.gauss(10.0, 2.0) for _ in range(500)),
                "data_kind": "histogram",
                "title": f"sample {i}",
            },
        ),
    ]


HOSTILE: list[tuple[str, dict[str, Any]]] = [
    ("sandbox: __import__", {"functions": ("__import__('os').system('id')",)}),
    ("sandbox: ().__class__", {"functions": ("().__class__",)}),
    ("10^7 samples", {"functions": ("x",), "samples": 10**7}),
    ("7 functions", {"functions": ("x",) * 7}),
    ("1001 data points", {"data": (1.0,) * 1001}),
    ("empty range", {"functions": ("x",), "x_min": "1", "x_max": "1"}),
    ("x_min > x_max (pi > 3)", {"functions": ("x",), "x_min": "pi", "x_max": "3"}),
    ("NaN everywhere", {"functions": ("sqrt(-1 - x^2)",)}),
    ("9**9**9**9", {"functions": ("9**9**9**9",)}),
    (
        "slow integral (timeout)",
        {"functions": ("integrate(exp(sin(x**3))*log(x)**7/(1+x**17), x)",)},
    ),
    ("slow expansion (timeout)", {"functions": ("expand((x + 1)**30000)",)}),
]


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


async def _timed(plotter: Plotter, request: PlotRequest) -> tuple[float, PlotResult]:
    started = time.perf_counter()
    result = await plotter.render(request)
    return time.perf_counter() - started, result


async def run(rounds: int, limit_s: float, workers: int) -> None:
    """Run the benchmark and print its table."""
    from bot.tools.plotting.plotter import Plotter
    from bot.tools.plotting.request import PlotRequest

    started = time.perf_counter()
    async with Plotter(timeout=limit_s, max_workers=workers) as plotter:
        startup = time.perf_counter() - started
        by_kind: dict[str, list[float]] = {}
        errors = 0
        for i in range(rounds):
            for kind, fields in _ordinary(i):
                elapsed, result = await _timed(plotter, PlotRequest(**fields))
                by_kind.setdefault(kind, []).append(elapsed)
                errors += result.error is not None

        hostile_rows: list[tuple[str, float, float, str]] = []
        ordinary = PlotRequest(functions=("sin(x)",))
        for name, fields in HOSTILE:
            elapsed, result = await _timed(plotter, PlotRequest(**fields))
            recovery, after = await _timed(plotter, ordinary)
            assert after.error is None, after.error
            hostile_rows.append((name, elapsed, recovery, result.error or "NO ERROR"))

    ms = 1000.0
    every = [t for times in by_kind.values() for t in times]
    print(f"plot benchmark: timeout {limit_s:g} s, {workers} worker(s), {rounds} rounds")
    print(f"pool start (fork server + matplotlib warm-up): {startup * ms:.0f} ms")
    print()
    print(f"{'ordinary plot':<24}{'n':>6}{'p50 ms':>10}{'p99 ms':>10}{'max ms':>10}")
    for kind, times in [*by_kind.items(), ("all", every)]:
        print(
            f"{kind:<24}{len(times):>6}{statistics.median(times) * ms:>10.1f}"
            f"{_percentile(times, 0.99) * ms:>10.1f}{max(times) * ms:>10.1f}"
        )
    print(f"  errors: {errors}")
    print()
    print(f"{'hostile request':<28}{'error ms':>10}{'next ms':>10}  error")
    for name, elapsed, recovery, error in hostile_rows:
        print(f"{name:<28}{elapsed * ms:>10.1f}{recovery * ms:>10.1f}  {error[:58]}")
    worst = max(row[1] for row in hostile_rows)
    worst_recovery = max(row[2] for row in hostile_rows)
    print()
    print(f"worst hostile case: {worst * ms:.0f} ms (hard limit {limit_s * ms:.0f} ms)")
    print(f"worst ordinary plot right after a hostile case: {worst_recovery * ms:.0f} ms")


def main() -> None:
    """Parse the command line and run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", "--rounds", type=int, default=25, help="plots of each kind")
    parser.add_argument("--timeout", type=float, default=5.0)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    root = str(Path(__file__).resolve().parent.parent)
    if root not in sys.path:
        sys.path.insert(0, root)
    asyncio.run(run(args.rounds, args.timeout, args.workers))


if __name__ == "__main__":
    main()

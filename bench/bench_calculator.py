"""Benchmark of the calculator: latency of ordinary expressions and worst case of hostile ones."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.tools.calculator.calculator import Calculator

# Templates of everyday questions; {i} varies so that SymPy's cache does not flatter us.
ORDINARY = [
    "2**{i}00 + 1",
    "{i}/7 + 1/{i}",
    "factorial({i}0)",
    "sqrt({i}8)",
    "N(pi, {i}0)",
    "sin(pi/{i}) + cos(pi/{i})",
    "expand((x + {i})^5)",
    "factor(x^2 - {i}^2)",
    "simplify((x^2 - {i}^2)/(x - {i}))",
    "solve(x^2 - {i}x - 6 = 0, x)",
    "solve([x + y = {i}, x - y = 1], [x, y])",
    "diff(x^{i} * sin(x), x)",
    "integrate(x^{i} * exp(x), x)",
    "integrate(sin(x)^2, (x, 0, {i}*pi))",
    "limit(sin({i}x)/x, x, 0)",
    "summation(k^{i}, (k, 1, n))",
    "det(Matrix([[{i}, 2, 3], [4, 5, 6], [7, 8, {i}0]]))",
    "isprime(2^{i}1 - 1)",
    "factorint({i}234567890)",
    "gcd({i}2345678, 87654321)",
]

#: Calls written the way a model writes them for homework, with the right answer (see the file).
HOMEWORK = Path(__file__).resolve().parent / "homework_calls.tsv"

HOSTILE = [
    "__import__('os').system('id')",
    "().__class__.__bases__",
    "9**9**9**9",
    "factorial(10**8)",
    "'a'*10**9",
    "(" * 10_000 + "1" + ")" * 10_000,
    "integrate(exp(sin(x**3))*log(x)**7/(1+x**17), x)",
    "expand((x + y + z)**300)",
    "nextprime(10**5000)",
    "pow(2, 10**9)",
    "(10000!)!",
    "|" * 400,
    "1e99999999",
    "sin " * 120 + "x",
    "Matrix([[1]])" + ".T" * 150,
    "binomial_cdf(5000, 10000, 1/3)",
    "dsolve(diff(y(x), x, 9) + exp(y(x))*sin(x*y(x)) = 0, y(x))",
    "gamma(2*10**6+1/2)",
    "binomial(10**6+1/2, 10**5)",
    "product(k, (k, 1, 10**6))",
    "summation(1/k, (k, 1, 10**6))",
    ("x!!!!!!!!!!!!" * 40)[:483],
]

#: Text that is checked on the event loop before any worker: the time it holds the loop.
VETTING_BOMBS = [
    ("x!!!!!!!!!!!!" * 40)[:483],
    "1" + "!" * 499,
    "(" + "x+" * 150 + "x)" + "!" * 80,
    "+".join(["(x)!"] * 80)[:499],
    "αβ" * 250,
    "gamma(2*10**6+1/2)",
    "summation(1/k, (k, 1, 10**6))",
    # the hostile sizes of tests/tools/test_families.py
    "pow(2, 10**9)",
    "factorial(20!!!)",
    "(10000!)!",
    "5!!" + "!" * 200,
    "|" * 400,
    "1e99999999",
    "1.5e-99999999",
    "nPr(10**9, 10**8)",
    "sin " * 120 + "x",
    "Matrix([[1]])" + ".T" * 150,
    "2²²²²²²²²²²²²²²²",
    "+".join(["x!"] * 160),
    "(" * 10_000 + "1" + ")" * 10_000,  # checked with no length cap: see `vetting`
]


def load_homework(path: Path = HOMEWORK) -> list[tuple[str, str, str]]:
    """(family, expression, expected) rows of the homework set."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            family, expression, expected = line.split("\t")
            rows.append((family, expression, expected))
    return rows


def is_right(payload: dict[str, str], expected: str) -> bool:
    """Whether an answer is the expected one: exact text, a decimal prefix (~) or an error (!)."""
    if expected.startswith("!"):
        return expected[1:] in payload.get("error", "")
    if expected.startswith("~"):
        decimal = payload.get("decimal", "") or payload.get("note", "").removeprefix("= ")
        return decimal.startswith(expected[1:]) or payload.get("result", "").startswith(
            expected[1:]
        )
    return payload.get("result") == expected


async def homework(calc: Calculator, verbose: bool) -> None:
    """Coverage and p99 latency of the homework set, per family."""
    by_family: dict[str, list[tuple[bool, float]]] = {}
    for family, expression, expected in load_homework():
        elapsed, payload = await _timed(calc, expression)
        right = is_right(payload, expected)
        by_family.setdefault(family, []).append((right, elapsed))
        if verbose and not right:
            print(f"  MISS [{family}] {expression!r}: {payload}  (expected {expected!r})")
    ms = 1000.0
    print(f"{'homework family':<26}{'right':>10}{'%':>7}{'p50 ms':>10}{'p99 ms':>10}")
    total = right_total = 0
    for family, results in by_family.items():
        right = sum(r for r, _ in results)
        times = [t for _, t in results]
        total += len(results)
        right_total += right
        print(
            f"{family:<26}{f'{right}/{len(results)}':>10}{100 * right / len(results):>7.0f}"
            f"{statistics.median(times) * ms:>10.1f}{_percentile(times, 0.99) * ms:>10.1f}"
        )
    print(f"{'all':<26}{f'{right_total}/{total}':>10}{100 * right_total / total:>7.0f}")
    print()


def vetting(repeats: int = 20) -> list[tuple[str, float, float]]:
    """The event-loop time of checking each vetting bomb (in process, no worker): median
    and worst of `repeats` runs."""
    from bot.tools.calculator.language import CalculatorError, Limits, vet_with_notes

    limits = Limits(max_length=100_000)  # the nesting check must hold without the length cap
    rows: list[tuple[str, float, float]] = []
    for text in VETTING_BOMBS:
        times: list[float] = []
        for _ in range(repeats):
            started = time.perf_counter()
            with contextlib.suppress(CalculatorError):
                vet_with_notes(text, limits)
            times.append(time.perf_counter() - started)
        rows.append((text, statistics.median(times), max(times)))
    return rows


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


async def _timed(calc: Calculator, expression: str) -> tuple[float, dict[str, str]]:
    started = time.perf_counter()
    payload = json.loads(await calc.evaluate(expression))
    return time.perf_counter() - started, payload


async def run(evaluations: int, limit_s: float, workers: int, verbose: bool = False) -> None:
    """Run the benchmark and print its table."""
    from bot.tools.calculator.calculator import Calculator

    started = time.perf_counter()
    async with Calculator(timeout=limit_s, max_workers=workers) as calc:
        startup = time.perf_counter() - started
        await homework(calc, verbose)
        expressions = [
            ORDINARY[n % len(ORDINARY)].format(i=n // len(ORDINARY) + 2) for n in range(evaluations)
        ]
        latencies: list[float] = []
        errors = 0
        for expression in expressions:
            elapsed, payload = await _timed(calc, expression)
            latencies.append(elapsed)
            errors += "error" in payload

        started = time.perf_counter()
        concurrent = await asyncio.gather(*(calc.evaluate(e) for e in expressions))
        wall = time.perf_counter() - started
        concurrent_errors = sum("error" in json.loads(text) for text in concurrent)

        hostile_rows: list[tuple[str, float, float, str]] = []
        for expression in HOSTILE:
            elapsed, payload = await _timed(calc, expression)
            recovery, after = await _timed(calc, "2**100 + 1/3")
            assert "result" in after, after
            hostile_rows.append((expression, elapsed, recovery, payload.get("error", "NO ERROR")))

    ms = 1000.0
    print(f"calculator benchmark: timeout {limit_s:g} s, {workers} workers")
    print(f"pool start (forkserver + SymPy warm-up): {startup * ms:.0f} ms")
    print()
    print(f"{'ordinary expressions':<34}{'n':>6}{'p50 ms':>10}{'p99 ms':>10}{'max ms':>10}")
    print(
        f"{'  one at a time':<34}{len(latencies):>6}"
        f"{statistics.median(latencies) * ms:>10.1f}"
        f"{_percentile(latencies, 0.99) * ms:>10.1f}{max(latencies) * ms:>10.1f}"
    )
    print(
        f"{'  all at once (gather)':<34}{len(concurrent):>6}"
        f"{'':>10}{'':>10}{wall * ms:>10.1f}   (wall time, {len(concurrent) / wall:.0f}/s)"
    )
    print(f"  errors: {errors} sequential, {concurrent_errors} concurrent")
    print()
    print(f"{'hostile expression':<44}{'error ms':>10}{'next ms':>10}  error")
    for expression, elapsed, recovery, error in hostile_rows:
        shown = expression if len(expression) <= 40 else expression[:37] + "..."
        print(f"{shown:<44}{elapsed * ms:>10.1f}{recovery * ms:>10.1f}  {error[:60]}")
    worst = max(row[1] for row in hostile_rows)
    worst_recovery = max(row[2] for row in hostile_rows)
    print()
    print(f"worst hostile case: {worst * ms:.0f} ms (hard limit {limit_s * ms:.0f} ms)")
    print(f"worst answer right after a hostile case: {worst_recovery * ms:.1f} ms")
    print()
    print(f"{'checked on the event loop':<44}{'p50 ms':>10}{'max ms':>10}")
    for text, median, most in vetting():
        shown = text if len(text) <= 40 else text[:37] + "..."
        print(f"{shown:<44}{median * ms:>10.2f}{most * ms:>10.2f}")


def main() -> None:
    """Parse the command line and run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", "--evaluations", type=int, default=200)
    parser.add_argument("--timeout", type=float, default=2.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("-v", "--verbose", action="store_true", help="show homework misses")
    args = parser.parse_args()
    root = str(Path(__file__).resolve().parent.parent)
    if root not in sys.path:
        sys.path.insert(0, root)
    asyncio.run(run(args.evaluations, args.timeout, args.workers, args.verbose))


if __name__ == "__main__":
    main()

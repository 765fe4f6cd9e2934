"""Latency of bot.render's math: formula rendering, inline conversion and a whole answer."""

# Run from the repository root: .venv/bin/python -m bench.bench_mathtext

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from bot.render.answer import prepare_answer
from bot.render.formula_png import render_latex_png
from bot.render.unicode import to_discord_text

FORMULAS = {
    "quadratic": r"x = \frac{-b \pm \sqrt{b^2 - 4ac}}{2a}",
    "integral": r"\int_0^1 x^2\,dx = \left[\frac{x^3}{3}\right]_0^1 = \frac{1}{3}",
    "series": r"\sum_{n=1}^{\infty} \frac{1}{n^2} = \frac{\pi^2}{6}",
    "aligned": r"\begin{aligned} f(x) &= (x+1)^2 \\ &= x^2 + 2x + 1 \end{aligned}",
}
# Hostile input: each must fail (LaTeX) or finish (answers) well under a second.
HOSTILE_LATEX = {
    "deep braces": "{" * 5000 + "x" + "}" * 5000,
    "open fractions": "\\frac{" * 900,
    "nested left": "\\left(" * 160,
    "backslashes": "\\" * 999,
}
HOSTILE_ANSWERS = {
    "50k dollars": "$" * 50_000,
    "50k inline": "$a$ " * 12_500,
    "50k unclosed": "\\[" * 25_000,
    "50k backticks": "`a " * 17_000,
    "50k mixed": ("Let $x^2$ be `c` and $$y$$ \\(z\\) for $5 and $10. " * 1000)[:50_000],
}
ANSWER = (
    "Let $f(x) = x^2 + 2x + 1$ for $x \\in \\mathbb{R}$. Completing the square,\n"
    "$$f(x) = (x+1)^2 \\ge 0,$$\n"
    "so the minimum is $f(-1) = 0$. The roots of $ax^2 + bx + c$ are\n"
    "\\[x = \\frac{-b \\pm \\sqrt{b^2 - 4ac}}{2a}\\]\n"
    "and $\\int_0^1 f(x)\\,dx = \\frac{7}{3}$, since\n"
    "$$\\int_0^1 (x+1)^2\\,dx = \\left[\\frac{(x+1)^3}{3}\\right]_0^1 = \\frac{8-1}{3}.$$\n"
) * 2


def timed(fn: Callable[[int], object], runs: int) -> tuple[float, float]:
    """(median, max) wall time in milliseconds over `runs` calls `fn(0)`, `fn(1)`, …"""
    times = []
    for i in range(runs):
        start = time.perf_counter()
        fn(i)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), max(times)


def main() -> None:
    start = time.perf_counter()
    render_latex_png("x^2")
    print(
        f"first render (imports matplotlib, builds the parser): {time.perf_counter() - start:.2f} s"
    )
    for name, latex in FORMULAS.items():
        # A new formula each time: mathtext caches the layouts of formulas it has seen.
        median, worst = timed(lambda i, latex=latex: render_latex_png(rf"{latex} \quad ({i})"), 20)
        print(f"render {name:10} median {median:6.1f} ms   max {worst:6.1f} ms")
    median, worst = timed(lambda i: to_discord_text(ANSWER), 50)
    print(f"to_discord_text ({len(ANSWER)} chars)  median {median:6.1f} ms   max {worst:6.1f} ms")
    median, worst = timed(lambda i: prepare_answer(ANSWER.replace("c}", f"c + {i}}}")), 10)
    images = len(prepare_answer(ANSWER).images)
    print(f"prepare_answer ({images} images)     median {median:6.1f} ms   max {worst:6.1f} ms")
    for name, latex in HOSTILE_LATEX.items():
        median, worst = timed(lambda i, latex=latex: render_latex_png(latex), 3)
        print(f"hostile LaTeX {name:16} max {worst:7.1f} ms (target < 2000 ms)")
    for name, text in HOSTILE_ANSWERS.items():
        median, worst = timed(lambda i, text=text: prepare_answer(text), 3)
        print(f"hostile answer {name:15} max {worst:7.1f} ms (target < 5000 ms)")


if __name__ == "__main__":
    main()

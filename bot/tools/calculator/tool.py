"""The agent's `calculate` tool, built around a `Calculator`."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ..base import to_json
from .calculator import Calculator

if TYPE_CHECKING:
    from agents import FunctionTool

log = logging.getLogger(__name__)

__all__ = ["calculate_tool"]


def calculate_tool(calculator: Calculator) -> FunctionTool:
    """Build the `calculate` function tool around a calculator (nothing is built at import)."""
    from agents import function_tool

    async def calculate(expression: str) -> str:
        """Do exact math with SymPy and return a JSON string.

        Use it for any arithmetic, algebra or calculus instead of computing in your head.
        Write one expression in Python/SymPy syntax: + - * / and ** or ^ for powers, % for
        mod, 2x for 2*x, n! for factorial, and a single = for an equation (x^2 = 4).
        Numbers are exact: 1/3 stays 1/3 and big integers are exact; N(expr, digits) gives a
        decimal to the precision asked (up to 1000 digits).
        Variables: single letters (x, y, z, t, n, k), x1 or x_1, and Greek names (theta,
        alpha, phi). Constants: pi, E (or e), I, oo (infinity).
        Functions: sqrt, cbrt, root(x, n), exp, log(x) (natural), log(x, b), ln, log10,
        log2, sin cos tan cot sec csc, asin acos atan atan2, sinh cosh tanh, asinh acosh
        atanh, abs, sign, re, im, conjugate, arg, floor, ceiling, round(x, n), factorial,
        binomial, gamma, fibonacci, gcd, lcm, mod, isprime, factorint, primefactors, divisors,
        prime(n), nextprime, prevprime, primepi, totient, Max, Min, Rational(p, q), numer,
        denom, simplify, expand, factor, cancel, apart, together, collect(f, x), trigsimp,
        expand_trig, solve(f, x), solve([eq1, eq2], [x, y]), roots, diff(f, x) or
        diff(f, x, n), integrate(f, x) or integrate(f, (x, a, b)), limit(f, x, a) or
        limit(f, x, a, dir='-'), series(f, x, a, n), summation(f, (k, a, b)) (also sum),
        product(f, (k, a, b)), Matrix([[1, 2], [3, 4]]), det, inverse, transpose, rank,
        trace, eigenvals, rref, eye(n), zeros(n), ones(n), Eq(a, b), N(expr, digits).
        No strings, attributes, indexing or Python code.
        The answer is {"result": plain text, "latex": LaTeX, "decimal": approximation (only
        for exact non-integer numbers), "note": remark (only sometimes, e.g. on truncation)}
        or {"error": message}: after an error, fix the expression and call again. Each
        call has a time limit of a few seconds, an expression may have a few hundred
        characters, and results over about 39,000 digits are refused.

        Args:
            expression: One math expression, e.g. "integrate(x^2*sin(x), x)",
                "solve(x^2 - 5x + 6 = 0, x)" or "N(pi, 50)".
        """
        try:
            return await calculator.evaluate(expression)
        except Exception:
            log.exception("calculate tool failed")
            return to_json({"error": "the calculator failed unexpectedly"})

    return function_tool(
        calculate,
        name_override="calculate",
        timeout=calculator.tool_timeout,
    )

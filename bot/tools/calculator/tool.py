"""The agent's `calculate` tool, built around a `Calculator`."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ..base import to_json
from ..budget import ToolGate
from ..turn_context import TurnContext
from .calculator import Calculator

if TYPE_CHECKING:
    from agents import FunctionTool

log = logging.getLogger(__name__)

__all__ = ["calculate_tool", "check_tool"]


def calculate_tool(calculator: Calculator, gate: ToolGate) -> FunctionTool:
    """Build the `calculate` function tool around a calculator, its calls within `gate`'s
    limits (nothing is built at import)."""
    from agents import RunContextWrapper, function_tool

    async def calculate(ctx: RunContextWrapper[TurnContext], expression: str) -> str:
        """Do exact math with SymPy and return a JSON string.

        Use it for any arithmetic, algebra or calculus instead of computing in your head.
        One expression, Python/SymPy syntax: ** or ^, 2x, n!, |x|, 30°, 15% of 80, sin x,
        a single = for an equation (x^2 = 4), inequalities (-3 <= 2x+1 < 7), y' and dy/dx.
        Numbers are exact (0.1 is 1/10); N(expr, digits) for decimals (up to 1000).
        i and j are the imaginary unit unless used as a variable. Variables: x, x1, x_1, Greek
        names. Constants: pi, E (or e), I, oo.
        Functions: sqrt cbrt root(x, n) exp log(x) log(x, b) ln log10 log2 sin cos tan cot
        sec csc asin acos atan atan2 sinh cosh tanh sech csch asinh acosh atanh abs sign re im
        conjugate arg polar(z) rect(r, t) floor ceiling round(x, n) factorial binomial (nCr)
        perm (nPr) gamma fibonacci gcd lcm mod pow(a, b, m) modinv crt(moduli, residues)
        base(n, b) isprime factorint primefactors divisors prime nextprime prevprime primepi
        totient Max Min Rational numer denom simplify expand factor cancel apart together
        collect trigsimp expand_trig solve(f, x) (also inequalities) solve([eqs], [x, y])
        solveset(f, x, Reals|Integers) roots subs(f, x, 2) diff(f, x, n) integrate(f, x)
        integrate(f, (x, a, b)) limit(f, x, a, dir='-') series(f, x, a, n) summation(f, (k, 1,
        n)) product dsolve(eq, y(x), ics=[y(0) = 1]) Matrix([[1, 2], [3, 4]]) det inverse
        transpose rank trace eigenvals eigenvects nullspace columnspace rref linsolve eye zeros
        ones dot cross Eq N; statistics of lists: mean median mode variance stdev (sample)
        pvariance pstdev (population) quantile(data, q) percentile correlation covariance
        linregress(xs, ys); normal_pdf/normal_cdf/normal_inv(x, mu, sigma), binomial_pmf/cdf(k,
        n, p), poisson_pmf/cdf(k, lam), uniform_pdf/cdf(x, a, b); units: convert_to(5*mile,
        km), 60 mph in m/s. Methods such as M.inv() or f.subs(x, 2) also work.
        Answer: {"result", "latex", "decimal" (approximation), "note" (how the input was read,
        which variance...)} or {"error"}: then fix the expression and call again. Time limit
        a few seconds; results over about 39,000 digits are refused.

        Args:
            expression: One math expression, e.g. "integrate(x^2*sin(x), x)",
                "solve(x^2 - 5x + 6 = 0, x)" or "N(pi, 50)".
        """
        return await gate.run(ctx.context, lambda: _calculate(calculator, expression))

    # get_type_hints() resolves annotations in this module's namespace, where the SDK's
    # types are not imported (importing the SDK is left to the process that builds tools).
    calculate.__annotations__["ctx"] = RunContextWrapper[TurnContext]
    return function_tool(
        calculate,
        name_override="calculate",
        timeout=gate.backstop(calculator.tool_timeout),
    )


async def _calculate(calculator: Calculator, expression: str) -> str:
    try:
        return await calculator.evaluate(expression)
    except Exception:
        log.exception("calculate tool failed")
        return to_json({"error": "the calculator failed unexpectedly"})


def check_tool(calculator: Calculator, gate: ToolGate) -> FunctionTool:
    """Build the `check` function tool: verifies one line of working exactly, within
    `gate`'s limits."""
    from agents import RunContextWrapper, function_tool

    async def check(ctx: RunContextWrapper[TurnContext], claim: str) -> str:
        """Verify one step of working exactly; returns {"verdict": "verified" | "false" |
        "unknown", "detail"} (a counterexample when false) or {"error"}.

        Args:
            claim: One step in the calculator's syntax: an identity or equation
                "(x+1)^2 = x^2+2x+1", "d/dx x^3 = 3x^2", or "premise => conclusion",
                e.g. "2x + 3 = 7 => x = 2".
        """
        return await gate.run(ctx.context, lambda: _check(calculator, claim))

    check.__annotations__["ctx"] = RunContextWrapper[TurnContext]
    return function_tool(
        check, name_override="check", timeout=gate.backstop(calculator.tool_timeout)
    )


async def _check(calculator: Calculator, claim: str) -> str:
    try:
        return await calculator.check(claim)
    except Exception:
        log.exception("check tool failed")
        return to_json({"error": "the checker failed unexpectedly"})

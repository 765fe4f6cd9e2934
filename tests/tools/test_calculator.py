"""Tests of the `Calculator`: exact answers, errors, and hostile input in its worker pool."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from bot.tools.calculator.calculator import EVALUATE, Calculator
from bot.tools.calculator.language import CalculatorError, vet_with_notes

# One calculator (and one worker pool) for the whole module, on the module's event loop.
pytestmark = pytest.mark.asyncio(loop_scope="module")

HARD_INTEGRAL = "integrate(exp(sin(x**3))*log(x)**7/(1+x**17), x)"
# Tests whose point is not the deadline get one no loaded machine reaches; those whose point
# it is use work that never ends (how fast the calculator is: bench/bench_calculator.py).
GENEROUS_TIMEOUT = 120.0
QUICK_TIMEOUT = 1.0


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def calc() -> AsyncIterator[Calculator]:
    calculator = Calculator(timeout=GENEROUS_TIMEOUT, max_workers=2, memory_mb=512)
    await calculator.start()
    yield calculator
    await calculator.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def quick() -> AsyncIterator[Calculator]:
    calculator = Calculator(timeout=QUICK_TIMEOUT, max_workers=1, memory_mb=512)
    await calculator.start()
    yield calculator
    await calculator.close()


async def served_after_a_kill(calculator: Calculator, expression: str) -> dict[str, str]:
    """`expression` evaluated by `calculator`'s worker pool with a generous deadline: proves a
    killed worker was replaced, however long the replacement takes on a loaded machine."""
    loop = asyncio.get_running_loop()
    source, _ = vet_with_notes(expression, calculator.limits)
    workers = calculator._workers
    return await workers.run(
        EVALUATE, source, calculator.limits, deadline=loop.time() + GENEROUS_TIMEOUT
    )


async def answer(calc: Calculator, expression: str) -> dict[str, str]:
    text = await calc.evaluate(expression)
    assert isinstance(text, str)
    payload = json.loads(text)
    assert isinstance(payload, dict)
    return payload


# Exact results: (expression, result, decimal or None)

EXACT: list[tuple[str, str, str | None]] = [
    # arithmetic, big integers, fractions
    ("2**100", "1267650600228229401496703205376", None),
    ("2^100", "1267650600228229401496703205376", None),
    ("-7 + 3*4", "5", None),
    ("10**30 + 1", "1000000000000000000000000000001", None),
    ("2**64 * 3**40", "224269343257001716702690972139746492416", None),
    ("1/3 + 1/6", "1/2", "0.5"),
    ("(3/4)**3", "27/64", "0.421875"),
    ("-(1/2)^-3", "-8", None),
    ("7 // 2", "3", None),
    ("-7 % 3", "2", None),
    ("5! / 3!", "20", None),
    (
        "100!",
        "9332621544394415268169923885626670049071596826438162146859296389521759999322991"
        "5608941463976156518286253697920827223758251185210916864000000000000000000000000",
        None,
    ),
    ("binomial(50, 25)", "126410606437752", None),
    ("fibonacci(100)", "354224848179261915075", None),
    # roots, trig, logs, constants, complex numbers
    ("sqrt(8)", "2*sqrt(2)", "2.82842712474619"),
    ("sqrt(-4)", "2*I", "2.0*I"),
    ("cbrt(27)", "3", None),
    ("root(16, 4)", "2", None),
    ("sqrt(2)*sqrt(8)", "4", None),
    ("sin(pi/6)", "1/2", "0.5"),
    ("cos(pi/4)", "sqrt(2)/2", "0.707106781186548"),
    ("tan(pi/3)", "sqrt(3)", "1.73205080756888"),
    ("atan(1)", "pi/4", "0.785398163397448"),
    ("exp(log(5))", "5", None),
    ("log(8, 2)", "3", None),
    ("ln(E^3)", "3", None),
    ("log10(1000)", "3", None),
    ("exp(I*pi) + 1", "0", None),
    ("conjugate(3 + 4I)", "3 - 4*I", "3.0 - 4.0*I"),
    ("abs(3 + 4I)", "5", None),
    ("ceiling(-7/2)", "-3", None),
    # algebra
    ("simplify(sin(x)^2 + cos(x)^2)", "1", None),
    ("expand((x + 1)^3)", "x**3 + 3*x**2 + 3*x + 1", None),
    ("factor(x^2 - 5x + 6)", "(x - 3)*(x - 2)", None),
    ("factor(x^4 - 1)", "(x - 1)*(x + 1)*(x**2 + 1)", None),
    ("cancel((x^2 - 1)/(x - 1))", "x + 1", None),
    ("apart(1/(x^2 - 1), x)", "-1/(2*(x + 1)) + 1/(2*(x - 1))", None),
    ("together(1/x + 1/y)", "(x + y)/(x*y)", None),
    ("trigsimp(2*sin(x)*cos(x))", "sin(2*x)", None),
    ("2x * 3x", "6*x**2", None),
    # equations and systems
    ("solve(x^2 - 5x + 6 = 0, x)", "[2, 3]", None),
    ("solve(x^2 + 1, x)", "[-I, I]", "[-1.0*I, 1.0*I]"),
    ("solve(2x + 3 = 11)", "[4]", None),
    ("x^2 = 2", "[-sqrt(2), sqrt(2)]", "[-1.4142135623731, 1.4142135623731]"),
    ("solve([x + y = 10, x - y = 2], [x, y])", "{x: 6, y: 4}", None),
    ("solve(x^3 - 6x^2 + 11x - 6, x)", "[1, 2, 3]", None),
    ("roots(x^2 - 4x + 4, x)", "{2: 2}", None),
    # calculus
    ("diff(x^3 + 2x, x)", "3*x**2 + 2", None),
    ("diff(sin(x)*exp(x), x)", "exp(x)*sin(x) + exp(x)*cos(x)", None),
    ("diff(x^5, x, 3)", "60*x**2", None),
    ("diff(x^2*y^3, x, y)", "6*x*y**2", None),
    ("integrate(x^2, x)", "x**3/3", None),
    ("integrate(x^2, (x, 0, 3))", "9", None),
    ("integrate(1/x, (x, 1, E))", "1", None),
    ("integrate(exp(-x^2), (x, -oo, oo))", "sqrt(pi)", "1.77245385090552"),
    ("integrate(sin(x)^2, (x, 0, pi))", "pi/2", "1.5707963267949"),
    ("limit(sin(x)/x, x, 0)", "1", None),
    ("limit((1 + 1/n)^n, n, oo)", "E", "2.71828182845905"),
    ("limit(1/x, x, 0, dir='-')", "-oo", None),
    ("summation(k, (k, 1, 100))", "5050", None),
    ("summation(1/k^2, (k, 1, oo))", "pi**2/6", "1.64493406684823"),
    ("sum(k^2, (k, 1, n))", "n**3/3 + n**2/2 + n/6", None),
    ("product(k, (k, 1, 10))", "3628800", None),
    ("series(exp(x), x, 0, 4)", "1 + x + x**2/2 + x**3/6 + O(x**4)", None),
    # matrices
    ("det(Matrix([[1, 2], [3, 4]]))", "-2", None),
    ("inverse(Matrix([[2, 1], [1, 1]]))", "Matrix([[1, -1], [-1, 2]])", None),
    ("Matrix([[1, 2], [3, 4]]) * Matrix([[5], [6]])", "Matrix([[17], [39]])", None),
    ("transpose(Matrix([[1, 2, 3], [4, 5, 6]]))", "Matrix([[1, 4], [2, 5], [3, 6]])", None),
    ("Matrix([[1, 1], [1, 0]])^10", "Matrix([[89, 55], [55, 34]])", None),
    ("eigenvals(Matrix([[2, 1], [1, 2]]))", "{1: 1, 3: 1}", None),
    ("rank(Matrix([[1, 2], [2, 4]]))", "1", None),
    ("eye(3)", "Matrix([[1, 0, 0], [0, 1, 0], [0, 0, 1]])", None),
    # number theory
    ("gcd(462, 1071)", "21", None),
    ("lcm(4, 6, 10)", "60", None),
    ("isprime(2^61 - 1)", "True", None),
    ("isprime(2^67 - 1)", "False", None),
    ("factorint(2^67 - 1)", "{193707721: 1, 761838257287: 1}", None),
    ("prime(1000)", "7919", None),
    ("nextprime(100)", "101", None),
    ("primepi(1000)", "168", None),
    ("totient(36)", "12", None),
    ("divisors(28)", "[1, 2, 4, 7, 14, 28]", None),
    ("mod(2^100, 7)", "2", None),
    # numeric evaluation to a requested precision
    ("N(pi, 50)", "3.1415926535897932384626433832795028841971693993751", None),
    ("N(E, 30)", "2.71828182845904523536028747135", None),
    ("N(pi, n=20)", "3.1415926535897932385", None),
    ("N(sqrt(2))", "1.41421356237310", None),
    ("N(1/7, 20)", "0.14285714285714285714", None),
    ("evalf(GoldenRatio, 25)", "1.618033988749894848204587", None),
    ("round(pi, 4)", "3.1416", None),
    ("Rational(3, 12)", "1/4", "0.25"),
    ("Max(3, 7, 2)", "7", None),
]


@pytest.mark.parametrize(("expression", "result", "decimal"), EXACT, ids=[e[0] for e in EXACT])
async def test_exact_results(
    calc: Calculator, expression: str, result: str, decimal: str | None
) -> None:
    payload = await answer(calc, expression)
    assert "error" not in payload, payload
    assert payload["result"] == result
    assert payload["latex"]
    assert payload.get("decimal") == decimal


async def test_table_is_large_enough() -> None:
    assert len(EXACT) >= 60


async def test_latex_and_compact_json(calc: Calculator) -> None:
    text = await calc.evaluate("sqrt(8)/3")
    assert text == json.dumps(
        {
            "result": "2*sqrt(2)/3",
            "latex": "\\frac{2 \\sqrt{2}}{3}",
            "decimal": "0.942809041582063",
        },
        separators=(",", ":"),
    )


async def test_bare_equation_is_solved_with_a_note(calc: Calculator) -> None:
    payload = await answer(calc, "x + y = 3, x - y = 1")
    assert payload["result"] == "{x: 2, y: 1}"
    assert payload["note"] == "solved for x, y"


async def test_huge_integer_is_truncated_with_its_digit_count(calc: Calculator) -> None:
    payload = await answer(calc, "factorial(5000)")
    assert payload["result"].startswith("4228577926605543522201064200233584405390…")
    assert payload["note"] == "result truncated: the integer has 16,326 digits"
    assert payload["decimal"] == "4.22857792660554e+16325"


# Errors the model can act on

ERRORS: list[tuple[str, str]] = [
    ("1/0", "division by zero"),
    ("x/(x - x)", "division by zero"),
    ("5 % 0", "division by zero"),
    ("tan(pi/2)", "division by zero"),
    ("foo(x)", "unknown function: foo"),
    ("bar", "unknown name: bar"),
    ("sin", "sin is a function"),
    ("sin(1, 2)", "sin takes 1 argument(s), not 2"),
    ("2 +* 3", "could not parse"),
    ("(1 + 2", "could not parse"),
    ("", "could not parse: empty expression"),
    ("x = ", "could not parse"),
    ("a = b = c", "more than one '='"),
    ("x[0]", "not allowed: subscripts"),
    ("x.real", "not allowed: attribute access"),
    ("[x for x in y]", "not allowed: comprehensions"),
    ("x if y else z", "not allowed: conditional expressions"),
    ("x and y", "not allowed: and/or"),
    ("lambda: 1", "not allowed: lambda"),
    ("True", "not allowed"),
    ("{1: 2}", "not allowed: braces"),
    ("2**200000", "expression too large"),
    ("sqrt(8)**1000000", "expression too large"),
    ("(2*x)**1000000", "expression too large"),
    ("binomial(10**6, 5*10**5)", "expression too large"),
    ("N(pi, 100000)", "precision must be between 1 and 1000 digits"),
    ("eye(1000)", "matrix too large"),
    ("prime(10**12)", "expression too large"),
    ("limit(1/x, x, 0, dir='up')", "the limit direction must be"),
    ("det(5)", "det needs a matrix"),
    ("oo - oo", "undefined"),
    ("x" * 501, "expression too large: 501 characters"),
    # sizes known only once evaluated (sqrt(10**12) = 10**6): refused in the worker, not timed out
    ("gamma(2*sqrt(10**12)+1/2)", "gamma(2,000,000.5) of a non-integer"),
    ("factorial(sqrt(10**12)+1/2)", "factorial(1,000,000.5) of a non-integer"),
    ("binomial(sqrt(10**12)+1/2, 3)", "binomial(1,000,000.5) of a non-integer"),
    ("binomial(1/2, sqrt(10**10))", "binomial of a non-integer with an argument of 100,000"),
    ("product(k, (k, 1, sqrt(10**12)))", "this product would be worked out term by term"),
    ("summation(1/k, (k, 1, sqrt(10**12)))", "this sum would be worked out term by term"),
]


@pytest.mark.parametrize(("expression", "message"), ERRORS, ids=[e[0][:40] for e in ERRORS])
async def test_errors(calc: Calculator, expression: str, message: str) -> None:
    payload = await answer(calc, expression)
    assert set(payload) == {"error"}
    assert message in payload["error"]


async def test_symbolic_power_is_not_refused(calc: Calculator) -> None:
    assert (await answer(calc, "(x + 1)**1000000"))["result"] == "(x + 1)**1000000"
    assert (await answer(calc, "diff(x**1000000, x)"))["result"] == "1000000*x**999999"


# The sandbox: hostile input gets a quick, clear error and the calculator keeps answering

HOSTILE: list[tuple[str, str]] = [
    ("__import__('os').system('id')", "not allowed"),
    ("().__class__.__bases__", "not allowed"),
    ("9**9**9**9", "expression too large"),
    ("factorial(10**8)", "expression too large"),
    ("'a'*10**9", "not allowed: strings"),
    ("(" * 10_000 + "1" + ")" * 10_000, "expression too large"),
    ("exec('import os')", "unknown function: exec"),
    ("open('/etc/passwd')", "unknown function: open"),
    ("getattr(x, '__class__')", "unknown function: getattr"),
    ("x.__class__.__subclasses__()", "not allowed: attribute access"),
    ("Symbol('x')", "unknown function: Symbol"),
    ("2**2**2**2**2**2", "expression too large"),
    ("10**10**10", "expression too large"),
    ("factorial(factorial(100))", "expression too large"),
]
# Work no machine finishes: the deadline, not the work, ends it.
NEVER_ENDING = [HARD_INTEGRAL, "expand((x + y + z)**300)"]


@pytest.mark.parametrize(("expression", "message"), HOSTILE, ids=[h[0][:40] for h in HOSTILE])
async def test_hostile_input_is_refused_and_calculator_recovers(
    calc: Calculator, expression: str, message: str
) -> None:
    payload = await answer(calc, expression)
    assert set(payload) == {"error"}
    assert message in payload["error"]
    assert (await answer(calc, "2**10 + 1/2"))["result"] == "2049/2"


@pytest.mark.parametrize("expression", NEVER_ENDING)
async def test_never_ending_work_is_killed_at_the_deadline_and_calculator_recovers(
    quick: Calculator, expression: str
) -> None:
    assert json.loads(await quick.evaluate(expression)) == {"error": "timed out after 1 s"}
    assert (await served_after_a_kill(quick, "2**10 + 1/2"))["result"] == "2049/2"


async def test_cheap_refusals_never_reach_a_worker(calc: Calculator) -> None:
    """Refused by the checks in this process (they raise before a worker is asked)."""
    for expression in ("9**9**9**9", "factorial(10**8)", "'a'*10**9", "(" * 10_000):
        with pytest.raises(CalculatorError):
            vet_with_notes(expression, calc.limits)
        assert "error" in await answer(calc, expression)


async def test_hostile_work_runs_concurrently_with_ordinary_work(calc: Calculator) -> None:
    hostile = asyncio.create_task(calc.evaluate(HARD_INTEGRAL))
    await asyncio.sleep(0.1)
    results = [await answer(calc, f"{i}/3") for i in range(1, 6)]
    assert not hostile.done()  # served by the other worker while the hostile call still runs
    assert [r["result"] for r in results] == ["1/3", "2/3", "1", "4/3", "5/3"]
    hostile.cancel()  # its worker is killed (see below); the deadline is tested above
    with pytest.raises(asyncio.CancelledError):
        await hostile


async def test_many_concurrent_evaluations(calc: Calculator) -> None:
    results = await asyncio.gather(*(answer(calc, f"{i}**2 + 1/2") for i in range(40)))
    assert [r["result"] for r in results] == [f"{2 * i * i + 1}/2" for i in range(40)]


async def test_cancelled_call_kills_its_worker(calc: Calculator) -> None:
    task = asyncio.create_task(calc.evaluate(HARD_INTEGRAL))
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    results = await asyncio.gather(*(answer(calc, "factor(x^2 - 1)") for _ in range(4)))
    assert all(r["result"] == "(x - 1)*(x + 1)" for r in results)


async def test_memory_limit_stops_a_runaway_allocation() -> None:
    # divisors(100!) passes every size check but tries to list ~4e24 divisors; the worker's
    # address-space limit turns that into a clean error (the long timeout rules out a
    # timeout here), and the worker goes on serving.
    async with Calculator(timeout=GENEROUS_TIMEOUT, max_workers=1, memory_mb=512) as calc:
        payload = await answer(calc, "divisors(factorial(100))")
        assert payload == {"error": "expression too large: the calculation ran out of memory"}
        assert (await answer(calc, "1 + 1"))["result"] == "2"


async def test_closed_calculator_answers_with_an_error() -> None:
    calc = Calculator(timeout=1.0, max_workers=1)
    await calc.start()
    await calc.close()
    assert "error" in await answer(calc, "1 + 1")
    with pytest.raises(RuntimeError):
        await calc.start()


async def test_a_recursion_error_while_vetting_is_still_a_json_answer(
    calc: Calculator, monkeypatch: pytest.MonkeyPatch
) -> None:
    def too_deep(*args: object) -> None:
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr("bot.tools.calculator.calculator.vet_with_notes", too_deep)
    assert await answer(calc, "1") == {"error": "expression too deeply nested"}
    assert json.loads(await calc.check("1 = 1")) == {"error": "expression too deeply nested"}

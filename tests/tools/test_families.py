"""The math students ask (issue #13), family by family: right answers, refusals, sizes.

Evaluated in process (the worker's code, without the worker) for speed; the worker pool's
part (time limits, recovery) is tested in test_calculator.py and the hostile rows below.
"""

from __future__ import annotations

import pytest

from bot.tools.calculator.evaluate import evaluate_source
from bot.tools.calculator.language import CalculatorError, Limits, vet_with_notes

LIMITS = Limits()


def run(expression: str) -> dict[str, str]:
    """What the calculator answers, notes from reading the text included."""
    try:
        source, notes = vet_with_notes(expression, LIMITS)
    except CalculatorError as exc:
        return {"error": exc.message}
    answer = evaluate_source(source, LIMITS)
    if notes and "error" not in answer:
        answer["note"] = "; ".join(notes) + (f"; {answer['note']}" if "note" in answer else "")
    return answer


def check(expression: str, result: str, note: str | None = None) -> None:
    answer = run(expression)
    assert answer.get("result") == result, answer
    if note is not None:
        assert note in answer.get("note", ""), answer


SILENTLY_WRONG_BEFORE = [
    ("2²²", "4194304"),
    ("x⁻¹", "1/x"),
    ("0.1+0.2-0.3", "0"),
    ("0.2", "1/5"),
    ("1.5e3", "1500"),
    ("2+3i", "2 + 3*I"),
    ("(1+2i)*(3-i)", "5 + 5*I"),
    ("e^(i*pi)", "-1"),
    ("(1+I)^10", "32*I"),
    ("(1+2I)*(3-I)", "5 + 5*I"),
    ("1/(1+i)", "1/2 - I/2"),
    ("2+3j", "2 + 3*I"),
    ("0xff", "255"),
    ("(x+1)^2 = x^2+2x+1", "True"),
]


@pytest.mark.parametrize(("expression", "result"), SILENTLY_WRONG_BEFORE)
def test_silently_wrong_answers_are_now_right(expression: str, result: str) -> None:
    check(expression, result)


def test_decimals_are_exact_and_say_so() -> None:
    answer = run("0.2")
    assert answer["decimal"] == "0.2"
    assert "exact fractions" in answer["note"]


def test_i_is_the_imaginary_unit_and_the_note_says_so() -> None:
    check("2+3i", "2 + 3*I", "i read as the imaginary unit I")


def test_i_stays_a_variable_where_it_is_an_index_or_an_unknown() -> None:
    check("summation(i^2, (i, 1, n))", "n**3/3 + n**2/2 + n/6")
    check("solve(2i - 4, i)", "[2]")
    assert "imaginary" not in run("summation(i, (i, 1, 4))").get("note", "")
    check("det(Matrix([[1, i], [-i, 1]]))", "0", "imaginary unit")


NOTATION = [
    ("√2", "sqrt(2)"),
    ("∛27", "3"),
    ("3²+4²", "25"),
    ("2⁴", "16"),
    ("6 × 7 ÷ 3 − 1", "13"),
    ("π", "pi"),
    ("∞", "oo"),
    ("|-5|", "5"),
    ("||x|-3|", "Abs(Abs(x) - 3)"),
    ("sin(30°)", "1/2"),
    ("cos(60 degrees)", "1/2"),
    ("sin 30°", "1/2"),
    ("tan(45 deg)", "1"),
    ("100%", "1"),
    ("15% of 80", "12"),
    ("20% * 50", "10"),
    ("7 % 3", "1"),
    ("100% - 20%", "4/5"),
    ("x % -3", "Mod(x, -3)"),
    ("α + β", "alpha + beta"),
    ("2τ", "2*tau"),
    ("2xy", "2*x*y"),
    ("pi x", "pi*x"),
    ("sin x", "sin(x)"),
    ("ln sin x", "log(sin(x))"),
    ("sin x cos x", "sin(x)*cos(x)"),
    ("sin^2(x) + cos^2(x)", "sin(x)**2 + cos(x)**2"),
    ("simplify(sin²(x) + cos²(x))", "1"),
    ("sin^-1(1)", "pi/2"),
    ("arcsin(1)", "pi/2"),
    ("arctan(1)", "pi/4"),
    ("log_2(8)", "3"),
    ("log_2 8", "3"),
    ("log2(8)", "3"),
    ("ln(e^2)", "2"),
    ("10 mod 3", "1"),
    ("mod(10, 3)", "1"),
    ("nCr(5,2)", "10"),
    ("nPr(5,2)", "20"),
    ("5!!", "15"),
    ("factorial(3!)", "720"),
    ("sech(0)", "1"),
    ("csch(1)", "csch(1)"),
    ("pow(38, -1, 97)", "23"),
    ("pow(2, 10)", "1024"),
    ("x₁ + x₂", "x_1 + x_2"),
    ("2πr", "2*pi*r"),
    ("3x(x + 2)", "3*x*(x + 2)"),
    ("a(b + c)", "a*(b + c)"),
]


@pytest.mark.parametrize(("expression", "result"), NOTATION)
def test_notation(expression: str, result: str) -> None:
    check(expression, result)


def test_a_factorial_of_a_factorial_is_computed_when_small() -> None:
    assert run("(5!)!")["result"].startswith("668950291344912705758811805409037258675")


METHODS = [
    ("Matrix([[1,2],[3,4]]).inv()", "Matrix([[-2, 1], [3/2, -1/2]])"),
    ("Matrix([[1,2],[3,4]]).det()", "-2"),
    ("Matrix([[1,2],[3,4]]).T", "Matrix([[1, 3], [2, 4]])"),
    ("(x^2+1).subs(x, 2)", "5"),
    ("(x^3).diff(x)", "3*x**2"),
    ("(x^2 - 1).factor()", "(x - 1)*(x + 1)"),
    ("subs(x^2 + y, [(x, 2), (y, 3)])", "7"),
]


@pytest.mark.parametrize(("expression", "result"), METHODS)
def test_method_calls_are_rewritten_to_functions(expression: str, result: str) -> None:
    check(expression, result)


INEQUALITIES = [
    ("solve(x^2 - 4 < 0, x)", "(-2, 2)"),
    ("-3 <= 2x + 1 < 7", "[-2, 3)"),
    ("|x-1| < 3", "(-2, 4)"),
    ("solve(abs(x-1) >= 2, x)", "(-oo, -1] U [3, oo)"),
    ("solve((x-1)/(x+2) > 0, x)", "(-oo, -2) U (1, oo)"),
    ("solve([x > 1, x < 3], x)", "(1, 3)"),
    ("x^2 ≥ 9", "(-oo, -3] U [3, oo)"),
    ("solveset(x^2 - 4, x, Integers)", "{-2, 2}"),
    ("solveset(x^2 < 4, x, Integers)", "{-1, 0, 1}"),
    ("solveset(x > 0, x, Integers)", "Range(1, oo, 1)"),
    ("solveset(sin(x) = 0, x, interval(0, 7))", "{0, pi, 2*pi}"),
]


@pytest.mark.parametrize(("expression", "result"), INEQUALITIES)
def test_inequalities_and_sets(expression: str, result: str) -> None:
    check(expression, result)


STATISTICS = [
    ("mean([1,2,3,4])", "5/2", None),
    ("median([3,1,2,4])", "5/2", None),
    ("mode([1,2,2,3])", "2", None),
    ("variance([2,4,4,4,5,5,7,9])", "32/7", "sample (divides by n - 1)"),
    ("pvariance([2,4,4,4,5,5,7,9])", "4", "population (divides by n)"),
    ("stdev([2,4,4,4,5,5,7,9])", "4*sqrt(14)/7", "sample"),
    ("pstdev([2,4,4,4,5,5,7,9])", "2", "population"),
    ("quantile([1,2,3,4,5], 0.25)", "2", "interpolation"),
    ("percentile([1,2,3,4,5], 90)", "23/5", None),
    ("correlation([1,2,3],[2,4,6])", "1", "Pearson"),
    ("linregress([1,2,3],[2,4,7])", "5*x/2 - 2/3", "least-squares"),
    ("binomial_pmf(3, 10, 0.5)", "15/128", None),
    ("binomcdf(10, 0.5, 3)", "11/64", "Binomial"),
    ("poisson_pmf(2, 3)", "9*exp(-3)/2", None),
    ("nCr(52, 5)", "2598960", None),
    ("uniform_cdf(3, 0, 10)", "3/10", None),
]


@pytest.mark.parametrize(("expression", "result", "note"), STATISTICS)
def test_statistics(expression: str, result: str, note: str | None) -> None:
    check(expression, result, note)


@pytest.mark.parametrize(
    ("expression", "decimal"),
    [
        ("normal_cdf(1.96)", "0.97500210485178"),
        ("1 - normal_cdf(110, 100, 15)", "0.252492537546923"),
        ("normalcdf(-1, 1)", "0.682689492137086"),
        ("invNorm(0.975)", "1.95996398454005"),
        ("normal_inv(0.5, 100, 15)", None),
    ],
)
def test_normal_distribution(expression: str, decimal: str | None) -> None:
    answer = run(expression)
    assert "error" not in answer, answer
    if decimal is not None:
        assert answer["decimal"] == decimal
    else:
        assert answer["result"] == "100"


ODES = [
    ("dsolve(f(x).diff(x) - f(x), f(x))", "Eq(f(x), C1*exp(x))"),
    ("dsolve(y'' + y = 0, y(x), ics={y(0): 1, y'(0): 0})", "Eq(y(x), cos(x))"),
    ("dsolve(y'' + y = 0, y(x), ics=[y(0) = 0, y'(0) = 1])", "Eq(y(x), sin(x))"),
    ("dy/dx = x*y", "Eq(y(x), C1*exp(x**2/2))"),
    ("Derivative(y(x), x) = 2*y(x)", "Eq(y(x), C1*exp(2*x))"),
    ("y' = 3y", "Eq(y(x), C1*exp(3*x))"),
    ("dsolve(diff(y(t), t) = -2y(t), y(t), ics=[y(0) = 5])", "Eq(y(t), 5*exp(-2*t))"),
    (
        "dsolve([diff(f(t), t) = g(t), diff(g(t), t) = -f(t)], [f(t), g(t)])",
        "[Eq(f(t), C1*sin(t) + C2*cos(t)), Eq(g(t), C1*cos(t) - C2*sin(t))]",
    ),
    ("d/dx (x^3)", "3*x**2"),
    ("dsolve(y'' + 2y' + y = 0)", "Eq(y(x), (C1 + C2*x)*exp(-x))"),
]


@pytest.mark.parametrize(("expression", "result"), ODES)
def test_differential_equations(expression: str, result: str) -> None:
    check(expression, result)


OTHER = [
    ("convert_to(5*mile, kilometer)", "25146*kilometer/3125"),
    ("60 mph in m/s", "16764*meter/(625*second)"),
    ("modinv(3, 11)", "4"),
    ("crt([3,5,7],[2,3,2])", "23"),
    ("base(255, 2)", "11111111"),
    ("base(255, 16)", "ff"),
    (
        "eigenvects(Matrix([[2,0],[0,3]]))",
        "[(2, 1, [Matrix([[1], [0]])]), (3, 1, [Matrix([[0], [1]])])]",
    ),
    ("nullspace(Matrix([[1,2],[2,4]]))", "[Matrix([[-2], [1]])]"),
    ("columnspace(Matrix([[1,2],[2,4]]))", "[Matrix([[1], [2]])]"),
    ("linsolve([x+y=3, x-y=1], [x,y])", "{(2, 1)}"),
    ("linsolve((Matrix([[1,1],[1,-1]]), Matrix([3,1])), [x, y])", "{(2, 1)}"),
    ("polar(1+I)", "(sqrt(2), pi/4)"),
    ("rect(2, pi/2)", "2*I"),
    ("dot([1,2,3],[4,5,6])", "32"),
    ("convert_to(3 * liter, milliliter)", "3000*milliliter"),
    ("8 oz in g", "45359237*gram/200000"),
]  # fmt: skip


@pytest.mark.parametrize(("expression", "result"), OTHER)
def test_units_number_theory_linear_algebra_polar(expression: str, result: str) -> None:
    check(expression, result)


REFUSALS = [
    ("convert_to(5*mile, second)", "incompatible units"),
    ("mean([])", "mean needs data"),
    ("variance([3])", "at least two values"),
    ("binomial_cdf(5000, 10000, 0.5)", "normal_cdf"),
    ("quantile([1,2,3], 2)", "0 <= q <= 1"),
    ("modinv(2, 4)", "no inverse"),
    ("crt([2, 4], [1, 2])", "no common solution"),
    ("x.real", "attribute access (.real)"),
    ("Matrix([[1]]).foo()", "one of the methods"),
    ("meen([1, 2])", "did you mean mean"),
    ("{1: 2}", "ics=[y(0) = 1]"),
    ("y(x + 1)", "unknown function of one variable"),
    ("dsolve(x^2)", "dsolve needs a differential equation"),
    ("|x", "never closed"),
    ("normal_cdf(1, 0, -1)", "sigma must be positive"),
    ("base(10, 99)", "2 <= b <= 36"),
    ("solve([x > 1, y < 2], x)", "one variable"),
    ("P(X > 3)", "1 - normal_cdf(a, mu, sigma)"),
    ("x(t) = 3t^2", "unknown function: x (write x*(...) to multiply)"),
    ("M" + ".T" * 41, "more than 40 method calls"),
    ("sin " * 9 + "x", "functions without brackets"),
]


@pytest.mark.parametrize(("expression", "message"), REFUSALS)
def test_refusals_name_the_accepted_form(expression: str, message: str) -> None:
    answer = run(expression)
    assert set(answer) == {"error"}, answer
    assert message in answer["error"]


HOSTILE = [
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
]


@pytest.mark.parametrize("expression", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_sizes_are_refused_in_process(expression: str) -> None:
    """Refused by the checks before any worker (their event-loop time is measured by
    `VETTING_BOMBS` in bench/bench_calculator.py)."""
    with pytest.raises(CalculatorError):
        vet_with_notes(expression, LIMITS)


def test_canonical_source_is_a_fixed_point() -> None:
    """The worker re-reads the canonical source: reading it again changes nothing."""
    for table in (SILENTLY_WRONG_BEFORE, NOTATION, METHODS, INEQUALITIES, ODES, OTHER):
        for expression, *_ in table:
            source, _ = vet_with_notes(expression, LIMITS)
            assert vet_with_notes(source, LIMITS)[0] == source, expression

"""Tests of the calculator's language, in process: rewrites, the AST whitelist, size estimates."""

from __future__ import annotations

import ast

import pytest

from bot.tools.calculator.language import (
    FUNCTIONS,
    CalculatorError,
    Limits,
    parse_expression,
    prepare_expression,
    vet_expression,
)


async def test_ten_thousand_nested_parentheses_are_refused_even_without_the_length_cap() -> None:
    """Refused by the nesting check, not by a RecursionError deep in a parser (the time it
    takes is in bench/bench_calculator.py's `VETTING_BOMBS`)."""
    limits = Limits(max_length=100_000)
    with pytest.raises(CalculatorError, match="too deeply nested"):
        vet_expression("(" * 10_000 + "1" + ")" * 10_000, limits)


@pytest.mark.parametrize(
    ("text", "source"),
    [
        ("x^2 = 4", "Eq ( x ** 2 , 4 )"),
        ("2x + 3(x+1)", "2 * x + 3 * ( x + 1 )"),
        ("(x+1)(x-1)", "( x + 1 ) * ( x - 1 )"),
        ("n! + (n+1)!", "factorial ( n ) + factorial ( ( n + 1 ) )"),
        ("sin(x)!", "factorial ( sin ( x ) )"),
        ("x != 2", "x != 2"),
        (
            "solve([x + y = 3, x - y = 1], [x, y])",
            "solve ( [ Eq ( x + y , 3 ) , Eq ( x - y , 1 ) ] , [ x , y ] )",
        ),
        ("limit(1/x, x, 0, dir='-')", "limit ( 1 / x , x , 0 , dir = '-' )"),
        ("N(pi, n=30)", "N ( pi , n = 30 )"),
        ("solve(n = 3, n)", "solve ( Eq ( n , 3 ) , n )"),
        ("2 × 3 − π", "2 * 3 - pi"),
        ("1.5e3x", "( 15 * 10 ** 2 ) * x"),
        # postfix operators bind to what stands just before them, chains from the inside out
        ("x!!!", "factorial ( factorial2 ( x ) )"),
        ("f(x)!^2", "factorial ( f ( x ) ) ** 2"),
        ("(n!)! + 3!!", "factorial ( ( factorial ( n ) ) ) + factorial2 ( 3 )"),
        ("[1, 2]!", "factorial ( [ 1 , 2 ] )"),
        ("30°!", "factorial ( ( ( 30 ) * pi / 180 ) )"),
        ("15% of 80!", "( ( 15 ) / 100 ) * factorial ( 80 )"),
        ("(1+2)%!", "factorial ( ( ( ( 1 + 2 ) ) / 100 ) )"),
    ],
)
async def test_prepare_rewrites(text: str, source: str) -> None:
    assert prepare_expression(text) == source
    assert prepare_expression(source) == source  # idempotent: the worker re-checks it


async def test_length_is_checked_after_the_shorthand_is_written_out() -> None:
    limits = Limits(max_length=500, max_source=600)
    text = "(x+1)!" * 40  # 240 characters, 40 factorials: within the raw caps
    with pytest.raises(CalculatorError, match=r"once its shorthand .* is written out"):
        prepare_expression(text, limits)
    assert prepare_expression("(x+1)*" * 39 + "(x+1)", limits)  # as long, nothing to expand


async def test_parse_returns_only_whitelisted_nodes() -> None:
    parsed = parse_expression("integrate(x^2 * sin(theta), (x, 0, pi)) + Matrix([[1, 2]])")
    allowed = (
        ast.Expression, ast.Constant, ast.Name, ast.BinOp, ast.UnaryOp, ast.Call,
        ast.Tuple, ast.List, ast.Compare, ast.Load, ast.operator, ast.unaryop,
        ast.cmpop, ast.keyword,
    )  # fmt: skip
    assert all(isinstance(node, allowed) for node in ast.walk(parsed.tree))


async def test_every_function_has_an_implementation() -> None:
    from bot.tools.calculator import evaluate

    assert set(FUNCTIONS) == set(evaluate.IMPLEMENTATIONS)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("gamma(2*10**6+1/2)", r"gamma\(2,000,000\.5\) of a non-integer"),
        ("gamma(10**6+0.5)", r"gamma\(1,000,000\.5\) of a non-integer"),
        ("gamma(-10**5-1/2)", r"gamma\(-100,000\.5\) of a non-integer"),
        ("factorial(10**6+1/2)", r"factorial\(1,000,000\.5\) of a non-integer"),
        ("(10**6+1/2)!", r"factorial\(1,000,000\.5\) of a non-integer"),
        ("binomial(10**6+1/2, 10**5)", r"binomial\(1,000,000\.5\) of a non-integer"),
        ("binomial(7/2, 20000)", r"binomial of a non-integer with an argument of 20,000"),
        ("binomial(10**6, 1/2)", r"binomial of a non-integer with an argument of 1,000,000"),
        ("perm(10**6+1/2, 10**5)", r"perm\(1,000,000\.5\) of a non-integer"),
        ("product(k, (k, 1, 10**6))", r"this product .* 1,000,000 terms"),
        ("summation(1/k, (k, 1, 10**6))", r"this sum .* 1,000,000 terms"),
        ("summation(sin(k), (k, -10**6, 10**6))", r"this sum .* 2,000,001 terms"),
    ],
)
async def test_work_sympy_would_do_term_by_term_is_refused_before_any_worker(
    expression: str, message: str
) -> None:
    with pytest.raises(CalculatorError, match="expression too large: " + message):
        vet_expression(expression)


@pytest.mark.parametrize(
    "expression",
    [
        "gamma(5/2)",
        "binomial(1/2, 5)",
        "product(k, (k, 1, 5000))",
        "summation(k^2 + 3k/2, (k, 1, 10**9))",  # a polynomial: summed in closed form
        "summation(1/k^2, (k, 1, oo))",
        "product(k, (k, 1, n))",
    ],
)
async def test_small_or_closed_form_work_is_not_refused(expression: str) -> None:
    assert vet_expression(expression)

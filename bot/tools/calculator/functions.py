"""The SymPy side of every function the calculator's language whitelists, with its size checks."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable
from fractions import Fraction
from typing import Any

import sympy
from sympy.matrices import MatrixBase

from .language import (
    TRIG_NAMES,
    CalculatorError,
    Limits,
    check_binomial,
    check_bits,
    check_factorial,
    check_int_cap,
    check_matrix_dims,
    check_non_integer,
    check_precision,
    check_terms,
    log2_size,
)

__all__ = ["IMPLEMENTATIONS", "arith", "check_divisor", "evalf", "rational_log2"]


def rational_log2(value: sympy.Rational) -> float:
    """log2 of the larger of a rational's numerator and denominator."""
    return log2_size(int(value.p), int(value.q))


def arith(value: Any) -> Any:
    """Refuse to do arithmetic on lists, tuples, strings and truth values."""
    if isinstance(value, list | tuple | dict):
        raise CalculatorError("cannot do arithmetic on a list; use Matrix([...]) for vectors")
    if isinstance(value, str | bool):
        raise CalculatorError("cannot do arithmetic on that")
    return value


def check_divisor(value: Any) -> None:
    """Refuse to divide by what is certainly zero."""
    if isinstance(value, sympy.Expr) and value.is_zero is True:
        raise CalculatorError("division by zero")


def _integer(value: Any, what: str) -> int:
    if isinstance(value, sympy.Integer):
        return int(value)
    if isinstance(value, sympy.Float) and value == int(value):
        return int(value)
    raise CalculatorError(f"{what} must be an integer")


def _matrix(value: Any, name: str) -> MatrixBase:
    if not isinstance(value, MatrixBase):
        raise CalculatorError(f"{name} needs a matrix, e.g. {name}(Matrix([[1, 2], [3, 4]]))")
    return value


def _square(value: Any, name: str) -> MatrixBase:
    matrix = _matrix(value, name)
    if not matrix.is_square:
        raise CalculatorError(f"{name} needs a square matrix, not {matrix.rows}x{matrix.cols}")
    return matrix


def _flatten_args(args: tuple[Any, ...]) -> list[Any]:
    if len(args) == 1 and isinstance(args[0], list | tuple):
        return list(args[0])
    return list(args)


def _unary(function: Callable[[Any], Any]) -> Callable[..., Any]:
    def call(limits: Limits, value: Any) -> Any:
        return function(arith(value))

    return call


def _fraction(value: Any) -> Fraction | None:
    """The value as a fraction when it is a rational number that is not an integer."""
    if isinstance(value, sympy.Rational) and not isinstance(value, sympy.Integer):
        return Fraction(int(value.p), int(value.q))
    return None


def _factorial(limits: Limits, n: Any) -> Any:
    if isinstance(n, sympy.Integer):
        if n < 0:
            raise CalculatorError("factorial of a negative integer is undefined")
        check_factorial(int(n), limits)
    elif (x := _fraction(n)) is not None:
        check_non_integer("factorial", x, limits)
    return sympy.factorial(arith(n))


def _gamma(limits: Limits, x: Any) -> Any:
    if isinstance(x, sympy.Integer) and x > 0:
        check_factorial(int(x) - 1, limits)
    elif (value := _fraction(x)) is not None:
        check_non_integer("gamma", value, limits)
    return sympy.gamma(arith(x))


def _binomial(limits: Limits, n: Any, k: Any) -> Any:
    if isinstance(n, sympy.Integer) and isinstance(k, sympy.Integer):
        check_binomial(int(n), int(k), limits)
    if _fraction(n) is not None or _fraction(k) is not None:
        for value in (n, k):
            if isinstance(value, sympy.Rational):
                check_non_integer("binomial", Fraction(int(value.p), int(value.q)), limits)
    return sympy.binomial(arith(n), arith(k))


def _fibonacci(limits: Limits, n: Any) -> Any:
    if isinstance(n, sympy.Integer):
        check_bits(0.6943 * int(n), limits, "the Fibonacci number")
    return sympy.fibonacci(arith(n))


def _gcd_lcm(
    integer_op: Callable[[int, int], int], poly_op: Callable[[Any, Any], Any]
) -> Callable[..., Any]:
    def call(limits: Limits, *args: Any) -> Any:
        values = [arith(v) for v in _flatten_args(args)]
        if not values:
            raise CalculatorError("gcd and lcm need at least one argument")
        if all(isinstance(v, sympy.Integer) for v in values):
            total = sum(rational_log2(v) for v in values)
            check_bits(total, limits)
            return sympy.Integer(functools.reduce(integer_op, (int(v) for v in values)))
        return functools.reduce(poly_op, values)

    return call


def _number_theory(function: Callable[[int], Any], name: str, cap: int = 0) -> Callable[..., Any]:
    def call(limits: Limits, n: Any) -> Any:
        value = _integer(n, f"the argument of {name}")
        if cap:
            check_int_cap(name, value, cap)
        return function(value)

    return call


def _prime(limits: Limits, n: Any) -> Any:
    value = _integer(n, "the argument of prime")
    if value < 1:
        raise CalculatorError("prime(n) needs n >= 1")
    check_int_cap("prime", value, limits.max_prime_index)
    return sympy.prime(value)


def _primepi(limits: Limits, n: Any) -> Any:
    if isinstance(n, sympy.Integer):
        check_int_cap("primepi", int(n), limits.max_primepi)
    return sympy.primepi(arith(n))


def _mod(limits: Limits, a: Any, b: Any) -> Any:
    check_divisor(arith(b))
    return sympy.Mod(arith(a), b)


def _max_min(function: Callable[..., Any]) -> Callable[..., Any]:
    def call(limits: Limits, *args: Any) -> Any:
        return function(*(arith(v) for v in _flatten_args(args)))

    return call


def _rational(limits: Limits, p: Any, q: Any = sympy.S.One) -> Any:
    check_divisor(arith(q))
    if not (isinstance(p, sympy.Number) and isinstance(q, sympy.Number)):
        return arith(p) / q
    return sympy.Rational(p, q)


def _round(limits: Limits, x: Any, digits: Any = sympy.S.Zero) -> Any:
    n = _integer(digits, "the number of digits of round")
    if n > limits.max_precision:
        check_precision(n, limits)
    value = arith(x)
    if not (isinstance(value, sympy.Expr) and value.is_number):
        raise CalculatorError("round needs a number")
    return value.round(n) if n else value.round()


def _log(limits: Limits, x: Any, base: Any = None) -> Any:
    if base is None:
        return sympy.log(arith(x))
    return sympy.log(arith(x), arith(base))


def _factor(limits: Limits, f: Any, *gens: Any, modulus: Any = None) -> Any:
    if modulus is not None:
        return sympy.factor(arith(f), *gens, modulus=_integer(modulus, "modulus"))
    return sympy.factor(arith(f), *gens)


def _solve(limits: Limits, *args: Any) -> Any:
    return sympy.solve(*args)


def _roots(limits: Limits, f: Any, *gens: Any) -> Any:
    if isinstance(f, sympy.Equality):
        f = f.lhs - f.rhs
    return sympy.roots(arith(f), *gens)


def _check_orders(args: Iterable[Any], limits: Limits, what: str) -> None:
    for arg in args:
        items = arg if isinstance(arg, tuple) else (arg,)
        for item in items:
            if isinstance(item, sympy.Integer) and abs(int(item)) > limits.max_derivative_order:
                raise CalculatorError(
                    f"{what} too high: {item} (limit {limits.max_derivative_order})"
                )


def _diff(limits: Limits, f: Any, *args: Any) -> Any:
    _check_orders(args, limits, "derivative order")
    return sympy.diff(arith(f), *args)


def _integrate(limits: Limits, f: Any, *args: Any) -> Any:
    return sympy.integrate(arith(f), *args)


def _limit(limits: Limits, f: Any, x: Any, x0: Any, direction: str = "+", **kw: Any) -> Any:
    direction = kw.get("dir", direction)
    return sympy.limit(arith(f), x, arith(x0), dir=direction)


def _series(limits: Limits, f: Any, *args: Any) -> Any:
    if len(args) >= 3:
        order = _integer(args[2], "the order of series")
        if order > limits.max_series_order:
            raise CalculatorError(
                f"series order too high: {order} (limit {limits.max_series_order})"
            )
    return sympy.series(arith(f), *args)


def _sum_or_product(
    evaluate: Callable[..., Any], combine: Callable[..., Any], what: str
) -> Callable[..., Any]:
    def call(limits: Limits, *args: Any) -> Any:
        if len(args) == 1 and isinstance(args[0], list | tuple):
            return combine(*(arith(v) for v in args[0]))
        if len(args) < 2:
            raise CalculatorError("give the range too, as in summation(f, (k, 1, n))")
        summand = arith(args[0])
        for bounds in args[1:]:
            _check_range(what, summand, bounds, limits)
        return evaluate(summand, *args[1:])

    return call


def _check_range(what: str, summand: Any, bounds: Any, limits: Limits) -> None:
    """Refuse a range of too many terms, unless it sums a polynomial (in closed form)."""
    if not isinstance(bounds, tuple | list) or len(bounds) != 3:
        return
    variable, low, high = bounds
    if not (isinstance(low, sympy.Integer) and isinstance(high, sympy.Integer)):
        return
    polynomial = isinstance(summand, sympy.Basic) and summand.is_polynomial(variable)
    if what == "sum" and isinstance(variable, sympy.Symbol) and polynomial:
        return
    check_terms(f"this {what}", int(high - low) + 1, limits)


def _to_matrix(limits: Limits, *args: Any) -> Any:
    if len(args) == 1:
        data = args[0]
        if isinstance(data, MatrixBase):
            return data
        if not isinstance(data, list | tuple):
            raise CalculatorError("Matrix needs a list of rows, e.g. Matrix([[1, 2], [3, 4]])")
        rows = len(data)
        if rows and isinstance(data[0], list | tuple):
            cols = max(len(row) if isinstance(row, list | tuple) else 1 for row in data)
        else:
            cols = 1
        check_matrix_dims(rows, cols, limits)
        return sympy.Matrix(data)
    if len(args) == 3:
        rows = _integer(args[0], "the number of rows")
        cols = _integer(args[1], "the number of columns")
        check_matrix_dims(rows, cols, limits)
        if not isinstance(args[2], list | tuple):
            raise CalculatorError("Matrix(rows, cols, [entries]) needs a list of entries")
        return sympy.Matrix(rows, cols, args[2])
    raise CalculatorError("Matrix takes a list of rows, or rows, cols and a list of entries")


def _matrix_maker(function: Callable[..., Any], name: str) -> Callable[..., Any]:
    def call(limits: Limits, rows: Any, cols: Any = None) -> Any:
        r = _integer(rows, f"the size of {name}")
        c = r if cols is None else _integer(cols, f"the size of {name}")
        check_matrix_dims(r, c, limits)
        return function(r, c)

    return call


def _matrix_op(function: Callable[[MatrixBase], Any], name: str, square: bool) -> Any:
    def call(limits: Limits, value: Any) -> Any:
        return function(_square(value, name) if square else _matrix(value, name))

    return call


def _numeric(limits: Limits, value: Any, digits: Any = None, **kw: Any) -> Any:
    digits = kw.get("n", digits)
    n = 15 if digits is None else _integer(digits, "the number of digits")
    check_precision(n, limits)
    return evalf(value, n)


def evalf(value: Any, n: int) -> Any:
    """`value` (or each item of it) as a decimal of `n` digits."""
    if isinstance(value, list):
        return [evalf(v, n) for v in value]
    if isinstance(value, tuple):
        return tuple(evalf(v, n) for v in value)
    if isinstance(value, dict):
        return {k: evalf(v, n) for k, v in value.items()}
    if isinstance(value, sympy.Basic | MatrixBase):
        return value.evalf(n)
    raise CalculatorError("N needs a number or an expression")


def _fraction_part(index: int) -> Callable[..., Any]:
    def call(limits: Limits, value: Any) -> Any:
        return sympy.fraction(sympy.together(arith(value)))[index]

    return call


_TRIG_FUNCTIONS = {name: _unary(getattr(sympy, name)) for name in TRIG_NAMES}


#: The implementation of every function in `bot.tools.calculator.language.FUNCTIONS`.
IMPLEMENTATIONS: dict[str, Callable[..., Any]] = {
    **_TRIG_FUNCTIONS,
    "atan2": lambda limits, y, x: sympy.atan2(arith(y), arith(x)),
    "sqrt": _unary(sympy.sqrt),
    "cbrt": _unary(sympy.cbrt),
    "root": lambda limits, x, n, k=0: sympy.root(arith(x), arith(n), k),
    "exp": _unary(sympy.exp),
    "log": _log,
    "ln": _log,
    "log10": lambda limits, x: sympy.log(arith(x), 10),
    "log2": lambda limits, x: sympy.log(arith(x), 2),
    "abs": _unary(sympy.Abs),
    "Abs": _unary(sympy.Abs),
    "sign": _unary(sympy.sign),
    "re": _unary(sympy.re),
    "im": _unary(sympy.im),
    "conjugate": _unary(sympy.conjugate),
    "arg": _unary(sympy.arg),
    "floor": _unary(sympy.floor),
    "ceiling": _unary(sympy.ceiling),
    "ceil": _unary(sympy.ceiling),
    "frac": _unary(sympy.frac),
    "round": _round,
    "factorial": _factorial,
    "binomial": _binomial,
    "gamma": _gamma,
    "fibonacci": _fibonacci,
    "gcd": _gcd_lcm(math.gcd, sympy.gcd),
    "lcm": _gcd_lcm(math.lcm, sympy.lcm),
    "isprime": _number_theory(sympy.isprime, "isprime"),
    "factorint": _number_theory(sympy.factorint, "factorint"),
    "primefactors": _number_theory(sympy.primefactors, "primefactors"),
    "divisors": _number_theory(sympy.divisors, "divisors"),
    "prime": _prime,
    "nextprime": _number_theory(sympy.nextprime, "nextprime"),
    "prevprime": _number_theory(sympy.prevprime, "prevprime"),
    "primepi": _primepi,
    "totient": _number_theory(sympy.totient, "totient"),
    "mod": _mod,
    "Mod": _mod,
    "Max": _max_min(sympy.Max),
    "Min": _max_min(sympy.Min),
    "max": _max_min(sympy.Max),
    "min": _max_min(sympy.Min),
    "Rational": _rational,
    "numer": _fraction_part(0),
    "denom": _fraction_part(1),
    "Eq": lambda limits, a, b: sympy.Eq(arith(a), arith(b)),
    "Ne": lambda limits, a, b: sympy.Ne(arith(a), arith(b)),
    "simplify": lambda limits, f: sympy.simplify(f),
    "expand": lambda limits, f: sympy.expand(f),
    "factor": _factor,
    "cancel": _unary(sympy.cancel),
    "together": _unary(sympy.together),
    "apart": lambda limits, f, *gens: sympy.apart(arith(f), *gens),
    "collect": lambda limits, f, x: sympy.collect(arith(f), x),
    "trigsimp": _unary(sympy.trigsimp),
    "expand_trig": _unary(sympy.expand_trig),
    "solve": _solve,
    "roots": _roots,
    "diff": _diff,
    "integrate": _integrate,
    "limit": _limit,
    "series": _series,
    "summation": _sum_or_product(sympy.summation, sympy.Add, "sum"),
    "sum": _sum_or_product(sympy.summation, sympy.Add, "sum"),
    "product": _sum_or_product(sympy.product, sympy.Mul, "product"),
    "Matrix": _to_matrix,
    "det": _matrix_op(lambda m: m.det(), "det", square=True),
    "inverse": _matrix_op(lambda m: m.inv(), "inverse", square=True),
    "inv": _matrix_op(lambda m: m.inv(), "inv", square=True),
    "transpose": _matrix_op(lambda m: m.T, "transpose", square=False),
    "rank": _matrix_op(lambda m: sympy.Integer(m.rank()), "rank", square=False),
    "trace": _matrix_op(lambda m: m.trace(), "trace", square=True),
    "eigenvals": _matrix_op(lambda m: m.eigenvals(), "eigenvals", square=True),
    "rref": _matrix_op(lambda m: m.rref(), "rref", square=False),
    "eye": _matrix_maker(sympy.eye, "eye"),
    "zeros": _matrix_maker(sympy.zeros, "zeros"),
    "ones": _matrix_maker(sympy.ones, "ones"),
    "N": _numeric,
    "evalf": _numeric,
}

"""The SymPy side of the calculator: builds a vetted AST into SymPy objects inside a worker."""

from __future__ import annotations

import ast
import functools
import logging
import math
from collections.abc import Callable, Iterable
from fractions import Fraction
from typing import Any

import sympy
from sympy.matrices import MatrixBase
from sympy.printing.str import StrPrinter

from .language import (
    TRIG_NAMES,
    CalculatorError,
    Limits,
    ParsedExpression,
    check_binomial,
    check_bits,
    check_factorial,
    check_int_cap,
    check_matrix_dims,
    check_power,
    check_precision,
    log2_size,
    parse_expression,
)

log = logging.getLogger(__name__)

__all__ = ["build_expression", "evaluate_source", "warm_up"]

_ERROR_CHARS = 300


def evaluate_source(source: str, limits: Limits) -> dict[str, str]:
    """Parse, vet, build and evaluate ``source``; return the answer or an error, never raise."""
    try:
        parsed = parse_expression(source, limits)
        value = build_expression(parsed, limits)
        value, note = _solve_bare_equations(value)
        answer = _format(value, limits)
        if note:
            answer["note"] = f"{note}; {answer['note']}" if "note" in answer else note
        return answer
    except CalculatorError as exc:
        return {"error": exc.message}
    except ZeroDivisionError:
        return {"error": "division by zero"}
    except MemoryError:
        return {"error": "expression too large: the calculation ran out of memory"}
    except RecursionError:
        return {"error": "expression too deeply nested"}
    except NotImplementedError as exc:
        detail = _first_line(exc)
        return {"error": f"SymPy cannot do this{': ' + detail if detail else ''}"}
    except Exception as exc:
        # SymPy reports bad input with many exception types (TypeError, ValueError,
        # PolynomialError, NonInvertibleMatrixError...); their text is mathematical.
        log.debug("evaluation of %r failed", source, exc_info=True)
        return {"error": f"could not evaluate: {_first_line(exc) or type(exc).__name__}"}


def build_expression(parsed: ParsedExpression, limits: Limits) -> Any:
    """Turn a parsed, vetted expression into SymPy objects, checking sizes before each step.

    Raises CalculatorError for a result that would be too large (and whatever SymPy raises
    for input it cannot handle).
    """
    return _Builder(parsed.source, limits).build(parsed.tree.body)


def _solve_bare_equations(value: Any) -> tuple[Any, str | None]:
    """Solve an equation (or a list of them) written on its own, as in ``x^2 = 4``."""
    equations = list(value) if isinstance(value, list | tuple) else [value]
    if not equations or not all(isinstance(eq, sympy.Equality) for eq in equations):
        return value, None
    symbols = sorted(set().union(*(eq.free_symbols for eq in equations)), key=str)
    if not symbols or len(symbols) > len(equations):
        return value, None
    solution = sympy.solve(equations if len(equations) > 1 else equations[0], symbols)
    names = ", ".join(str(s) for s in symbols)
    return solution, f"solved for {names}"


def warm_up() -> None:
    """Exercise parsing, building and printing once, so a worker's first answer is quick."""
    evaluate_source("N(sqrt(2)/3 + sin(x)**2, 20) + det(Matrix([[1, 2], [3, 4]]))", Limits())
    evaluate_source("solve(x^2 = 2, x)", Limits())


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    line = text[0] if text else ""
    return line if len(line) <= _ERROR_CHARS else line[:_ERROR_CHARS] + "…"


# --------------------------------------------------------------------------------------------
# Building
# --------------------------------------------------------------------------------------------

_CONSTANTS: dict[str, Any] = {
    "pi": sympy.pi,
    "E": sympy.E,
    "e": sympy.E,
    "I": sympy.I,
    "oo": sympy.oo,
    "inf": sympy.oo,
    "infinity": sympy.oo,
    "EulerGamma": sympy.EulerGamma,
    "GoldenRatio": sympy.GoldenRatio,
    "Catalan": sympy.Catalan,
}
_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Eq: sympy.Eq,
    ast.NotEq: sympy.Ne,
    ast.Lt: sympy.Lt,
    ast.LtE: sympy.Le,
    ast.Gt: sympy.Gt,
    ast.GtE: sympy.Ge,
}


def _is_rational(value: Any) -> bool:
    return isinstance(value, sympy.Rational)


def _rational_log2(value: sympy.Rational) -> float:
    return log2_size(int(value.p), int(value.q))


def _growth_log2(value: Any) -> float:
    """log2 of the numeric factor SymPy multiplies out when ``value`` is raised to a power."""
    if isinstance(value, sympy.Rational):
        return _rational_log2(value)
    if isinstance(value, sympy.Pow) and isinstance(value.exp, sympy.Rational):
        growth = _growth_log2(value.base)
        if growth == 0:
            return 0.0
        try:
            return growth * abs(float(value.exp))
        except OverflowError:
            return math.inf
    if isinstance(value, sympy.Mul):
        return sum(_growth_log2(arg) for arg in value.args)
    return 0.0


class _Builder:
    """Turns a vetted AST into SymPy objects, checking sizes before each costly step."""

    def __init__(self, source: str, limits: Limits) -> None:
        self._source = source
        self._limits = limits
        self._symbols: dict[str, sympy.Symbol] = {}

    def build(self, node: ast.AST) -> Any:
        value = self._build(node)
        if _is_rational(value):
            check_bits(_rational_log2(value), self._limits)
        return value

    def _build(self, node: ast.AST) -> Any:
        if isinstance(node, ast.Constant):
            return self._constant(node)
        if isinstance(node, ast.Name):
            return self._name(node.id)
        if isinstance(node, ast.BinOp):
            right = self.build(node.right)  # exponents first: towers go right to left
            left = self.build(node.left)
            return self._binop(node.op, left, right)
        if isinstance(node, ast.UnaryOp):
            operand = _arith(self.build(node.operand))
            return -operand if isinstance(node.op, ast.USub) else operand
        if isinstance(node, ast.Compare):
            return self._compare(node)
        if isinstance(node, ast.List):
            return [self.build(elt) for elt in node.elts]
        if isinstance(node, ast.Tuple):
            return tuple(self.build(elt) for elt in node.elts)
        if isinstance(node, ast.Call):
            return self._call(node)
        raise CalculatorError(f"not allowed: {type(node).__name__}")  # vetted already

    def _constant(self, node: ast.Constant) -> Any:
        value = node.value
        if isinstance(value, str):
            return value  # a limit direction, vetted
        if isinstance(value, int):
            return sympy.Integer(value)
        text = ast.get_source_segment(self._source, node) or repr(value)
        mantissa = text.lower().split("e")[0].replace(".", "").lstrip("0")
        return sympy.Float(text, max(15, len(mantissa)))

    def _name(self, name: str) -> Any:
        if name in _CONSTANTS:
            return _CONSTANTS[name]
        symbol = self._symbols.get(name)
        if symbol is None:
            symbol = self._symbols[name] = sympy.Symbol(name)
        return symbol

    def _binop(self, op: ast.operator, left: Any, right: Any) -> Any:
        left, right = _arith(left), _arith(right)
        if isinstance(op, ast.Add):
            return left + right
        if isinstance(op, ast.Sub):
            return left - right
        if isinstance(op, ast.Mult):
            if _is_rational(left) and _is_rational(right):
                check_bits(_rational_log2(left) + _rational_log2(right), self._limits)
            return left * right
        if isinstance(op, ast.Pow):
            return self._power(left, right)
        _check_divisor(right)
        if isinstance(op, ast.Div):
            return left / right
        if isinstance(op, ast.Mod):
            return sympy.Mod(left, right)
        return sympy.floor(left / right)  # //

    def _power(self, base: Any, exponent: Any) -> Any:
        limits = self._limits
        if isinstance(base, MatrixBase):
            if not isinstance(exponent, sympy.Integer):
                raise CalculatorError("a matrix power needs an integer exponent")
            n = abs(int(exponent))
            if n > limits.max_matrix_power:
                raise CalculatorError(
                    f"expression too large: matrix powers are limited to exponents up to "
                    f"{limits.max_matrix_power:,}"
                )
            entries = [_growth_log2(v) for v in base]
            growth = max(entries, default=0.0) + math.log2(max(base.rows, 2))
            if base.is_square and any(entries):
                check_power(growth, n, limits)
            return base**exponent
        if isinstance(exponent, sympy.Rational):
            if base == 0 and exponent < 0:
                raise CalculatorError("division by zero")
            check_power(_growth_log2(base), Fraction(int(exponent.p), int(exponent.q)), limits)
        return base**exponent

    def _compare(self, node: ast.Compare) -> Any:
        parts = [_arith(self.build(part)) for part in (node.left, *node.comparators)]
        relations = [
            _COMPARE[type(op)](a, b) for op, a, b in zip(node.ops, parts, parts[1:], strict=False)
        ]
        return relations[0] if len(relations) == 1 else sympy.And(*relations)

    def _call(self, node: ast.Call) -> Any:
        name = node.func.id  # type: ignore[attr-defined]  # vetted: a whitelisted Name
        args = [self.build(arg) for arg in node.args]
        kwargs = {kw.arg: self.build(kw.value) for kw in node.keywords if kw.arg}
        implementation = _FUNCTIONS[name]
        return _to_sympy(implementation(self._limits, *args, **kwargs))


def _to_sympy(value: Any) -> Any:
    """Python ints and bools from number-theory functions to SymPy, recursively."""
    if isinstance(value, bool):
        return sympy.true if value else sympy.false
    if isinstance(value, int):
        return sympy.Integer(value)
    if isinstance(value, list):
        return [_to_sympy(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_to_sympy(v) for v in value)
    if isinstance(value, dict):
        return {_to_sympy(k): _to_sympy(v) for k, v in value.items()}
    return value


def _arith(value: Any) -> Any:
    """Refuse to do arithmetic on lists, tuples, strings and truth values."""
    if isinstance(value, list | tuple | dict):
        raise CalculatorError("cannot do arithmetic on a list; use Matrix([...]) for vectors")
    if isinstance(value, str | bool):
        raise CalculatorError("cannot do arithmetic on that")
    return value


def _check_divisor(value: Any) -> None:
    if isinstance(value, sympy.Expr) and value.is_zero is True:
        raise CalculatorError("division by zero")


# --------------------------------------------------------------------------------------------
# Functions
# --------------------------------------------------------------------------------------------


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
        return function(_arith(value))

    return call


def _factorial(limits: Limits, n: Any) -> Any:
    if isinstance(n, sympy.Integer):
        if n < 0:
            raise CalculatorError("factorial of a negative integer is undefined")
        check_factorial(int(n), limits)
    return sympy.factorial(_arith(n))


def _gamma(limits: Limits, x: Any) -> Any:
    if isinstance(x, sympy.Integer) and x > 0:
        check_factorial(int(x) - 1, limits)
    return sympy.gamma(_arith(x))


def _binomial(limits: Limits, n: Any, k: Any) -> Any:
    if isinstance(n, sympy.Integer) and isinstance(k, sympy.Integer):
        check_binomial(int(n), int(k), limits)
    return sympy.binomial(_arith(n), _arith(k))


def _fibonacci(limits: Limits, n: Any) -> Any:
    if isinstance(n, sympy.Integer):
        check_bits(0.6943 * int(n), limits, "the Fibonacci number")
    return sympy.fibonacci(_arith(n))


def _gcd_lcm(
    integer_op: Callable[[int, int], int], poly_op: Callable[[Any, Any], Any]
) -> Callable[..., Any]:
    def call(limits: Limits, *args: Any) -> Any:
        values = [_arith(v) for v in _flatten_args(args)]
        if not values:
            raise CalculatorError("gcd and lcm need at least one argument")
        if all(isinstance(v, sympy.Integer) for v in values):
            total = sum(_rational_log2(v) for v in values)
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
    return sympy.primepi(_arith(n))


def _mod(limits: Limits, a: Any, b: Any) -> Any:
    _check_divisor(_arith(b))
    return sympy.Mod(_arith(a), b)


def _max_min(function: Callable[..., Any]) -> Callable[..., Any]:
    def call(limits: Limits, *args: Any) -> Any:
        return function(*(_arith(v) for v in _flatten_args(args)))

    return call


def _rational(limits: Limits, p: Any, q: Any = sympy.S.One) -> Any:
    _check_divisor(_arith(q))
    if not (isinstance(p, sympy.Number) and isinstance(q, sympy.Number)):
        return _arith(p) / q
    return sympy.Rational(p, q)


def _round(limits: Limits, x: Any, digits: Any = sympy.S.Zero) -> Any:
    n = _integer(digits, "the number of digits of round")
    if n > limits.max_precision:
        check_precision(n, limits)
    value = _arith(x)
    if not (isinstance(value, sympy.Expr) and value.is_number):
        raise CalculatorError("round needs a number")
    return value.round(n) if n else value.round()


def _log(limits: Limits, x: Any, base: Any = None) -> Any:
    if base is None:
        return sympy.log(_arith(x))
    return sympy.log(_arith(x), _arith(base))


def _factor(limits: Limits, f: Any, *gens: Any, modulus: Any = None) -> Any:
    if modulus is not None:
        return sympy.factor(_arith(f), *gens, modulus=_integer(modulus, "modulus"))
    return sympy.factor(_arith(f), *gens)


def _solve(limits: Limits, *args: Any) -> Any:
    return sympy.solve(*args)


def _roots(limits: Limits, f: Any, *gens: Any) -> Any:
    if isinstance(f, sympy.Equality):
        f = f.lhs - f.rhs
    return sympy.roots(_arith(f), *gens)


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
    return sympy.diff(_arith(f), *args)


def _integrate(limits: Limits, f: Any, *args: Any) -> Any:
    return sympy.integrate(_arith(f), *args)


def _limit(limits: Limits, f: Any, x: Any, x0: Any, direction: str = "+", **kw: Any) -> Any:
    direction = kw.get("dir", direction)
    return sympy.limit(_arith(f), x, _arith(x0), dir=direction)


def _series(limits: Limits, f: Any, *args: Any) -> Any:
    if len(args) >= 3:
        order = _integer(args[2], "the order of series")
        if order > limits.max_series_order:
            raise CalculatorError(
                f"series order too high: {order} (limit {limits.max_series_order})"
            )
    return sympy.series(_arith(f), *args)


def _sum_or_product(
    evaluate: Callable[..., Any], combine: Callable[..., Any]
) -> Callable[..., Any]:
    def call(limits: Limits, *args: Any) -> Any:
        if len(args) == 1 and isinstance(args[0], list | tuple):
            return combine(*(_arith(v) for v in args[0]))
        if len(args) < 2:
            raise CalculatorError("give the range too, as in summation(f, (k, 1, n))")
        return evaluate(_arith(args[0]), *args[1:])

    return call


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
    return _evalf(value, n)


def _evalf(value: Any, n: int) -> Any:
    if isinstance(value, list):
        return [_evalf(v, n) for v in value]
    if isinstance(value, tuple):
        return tuple(_evalf(v, n) for v in value)
    if isinstance(value, dict):
        return {k: _evalf(v, n) for k, v in value.items()}
    if isinstance(value, sympy.Basic | MatrixBase):
        return value.evalf(n)
    raise CalculatorError("N needs a number or an expression")


def _fraction_part(index: int) -> Callable[..., Any]:
    def call(limits: Limits, value: Any) -> Any:
        return sympy.fraction(sympy.together(_arith(value)))[index]

    return call


_TRIG_FUNCTIONS = {name: _unary(getattr(sympy, name)) for name in TRIG_NAMES}

#: The implementation of every function in ``bot.tools.calculator.language.FUNCTIONS``.
_FUNCTIONS: dict[str, Callable[..., Any]] = {
    **_TRIG_FUNCTIONS,
    "atan2": lambda limits, y, x: sympy.atan2(_arith(y), _arith(x)),
    "sqrt": _unary(sympy.sqrt),
    "cbrt": _unary(sympy.cbrt),
    "root": lambda limits, x, n, k=0: sympy.root(_arith(x), _arith(n), k),
    "exp": _unary(sympy.exp),
    "log": _log,
    "ln": _log,
    "log10": lambda limits, x: sympy.log(_arith(x), 10),
    "log2": lambda limits, x: sympy.log(_arith(x), 2),
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
    "Eq": lambda limits, a, b: sympy.Eq(_arith(a), _arith(b)),
    "Ne": lambda limits, a, b: sympy.Ne(_arith(a), _arith(b)),
    "simplify": lambda limits, f: sympy.simplify(f),
    "expand": lambda limits, f: sympy.expand(f),
    "factor": _factor,
    "cancel": _unary(sympy.cancel),
    "together": _unary(sympy.together),
    "apart": lambda limits, f, *gens: sympy.apart(_arith(f), *gens),
    "collect": lambda limits, f, x: sympy.collect(_arith(f), x),
    "trigsimp": _unary(sympy.trigsimp),
    "expand_trig": _unary(sympy.expand_trig),
    "solve": _solve,
    "roots": _roots,
    "diff": _diff,
    "integrate": _integrate,
    "limit": _limit,
    "series": _series,
    "summation": _sum_or_product(sympy.summation, sympy.Add),
    "sum": _sum_or_product(sympy.summation, sympy.Add),
    "product": _sum_or_product(sympy.product, sympy.Mul),
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


# --------------------------------------------------------------------------------------------
# Formatting
# --------------------------------------------------------------------------------------------


class _Printer(StrPrinter):
    """SymPy's plain-text printer, with matrices on one line."""

    def _print_MatrixBase(self, expr: MatrixBase) -> str:
        return f"Matrix({self._print(expr.tolist())})"


def _text(value: Any, **settings: Any) -> str:
    return _Printer(settings).doprint(value)


def _format(value: Any, limits: Limits) -> dict[str, str]:
    value = _normalise(value)
    if isinstance(value, sympy.Expr):
        if value.has(sympy.zoo):
            raise CalculatorError("division by zero (the result is complex infinity)")
        if value.has(sympy.nan):
            raise CalculatorError("the result is undefined (NaN)")
    text = _text(value)
    if isinstance(value, sympy.Integer) and len(text) > limits.max_output_chars:
        return _format_big_integer(value)
    answer: dict[str, str] = {}
    notes: list[str] = []
    if len(text) > limits.max_output_chars:
        notes.append(f"result truncated: {len(text):,} characters in full")
        text = text[: limits.max_output_chars] + "…"
    answer["result"] = text
    latex = sympy.latex(value)
    if len(latex) <= limits.max_latex_chars:
        answer["latex"] = latex
    else:
        notes.append("latex omitted: too long")
    decimal = _decimal(value)
    if decimal is not None and len(decimal) <= limits.max_output_chars:
        answer["decimal"] = decimal
    if notes:
        answer["note"] = "; ".join(notes)
    return answer


def _normalise(value: Any) -> Any:
    if isinstance(value, bool):
        return sympy.true if value else sympy.false
    if isinstance(value, str):
        raise CalculatorError("a direction string is only allowed in limit(...)")
    return value


def _format_big_integer(value: sympy.Integer) -> dict[str, str]:
    digits = str(abs(int(value.p)))
    sign = "-" if value < 0 else ""
    head, tail = digits[:40], digits[-40:]
    return {
        "result": f"{sign}{head}…{tail}",
        "latex": f"{sign}{head}\\ldots{tail}",
        "decimal": _text(sympy.Float(value, 15), full_prec=False),
        "note": f"result truncated: the integer has {len(digits):,} digits",
    }


def _decimal(value: Any) -> str | None:
    """An approximation, only where it says more than the exact result."""
    if not _wants_decimal(value):
        return None
    approx = _evalf(value, 15)
    text = _text(approx, full_prec=False)
    return text if text != _text(value) else None


def _wants_decimal(value: Any) -> bool:
    leaves = list(_leaves(value))
    if not leaves or any(leaf is None for leaf in leaves):
        return False
    return any(not isinstance(leaf, sympy.Integer | sympy.Float) for leaf in leaves)


_INFINITIES = (sympy.oo, sympy.S.NegativeInfinity, sympy.zoo)


def _leaves(value: Any) -> Iterable[Any]:
    """The numbers a result is made of; None for anything that is not a number."""
    if isinstance(value, list | tuple):
        for item in value:
            yield from _leaves(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _leaves(item)
    elif isinstance(value, MatrixBase):
        yield from _leaves(list(value))
    elif isinstance(value, sympy.Expr) and value.is_number and not value.has(*_INFINITIES):
        yield value
    else:
        yield None

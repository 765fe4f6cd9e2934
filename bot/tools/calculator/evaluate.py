"""The SymPy side of the calculator: builds a vetted AST into SymPy objects inside a worker."""

from __future__ import annotations

import ast
import logging
import math
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import sympy
from sympy.matrices import MatrixBase

from .families import FAMILIES, Noted, is_inequality, solve_inequalities, unit
from .formatting import format_answer
from .functions import IMPLEMENTATIONS as _BASIC
from .functions import arith, check_divisor, rational_log2
from .language import (
    CalculatorError,
    Limits,
    ParsedExpression,
    check_bits,
    check_power,
    is_unit_name,
    parse_expression,
)

#: Every function of the language: the basic ones and the students' families.
IMPLEMENTATIONS: dict[str, Callable[..., Any]] = {**_BASIC, **FAMILIES}

log = logging.getLogger(__name__)

__all__ = ["IMPLEMENTATIONS", "build_expression", "evaluate_source", "first_line", "warm_up"]

#: How much of an exception's text an error answer quotes.
_ERROR_CHARS = 300


def evaluate_source(source: str, limits: Limits) -> dict[str, str]:
    """Parse, vet, build and evaluate `source`; return the answer or an error, never raise."""
    try:
        parsed = parse_expression(source, limits)
        notes: list[str] = []
        value = build_expression(parsed, limits, notes)
        note = None
        if _is_bare_relation(parsed.tree.body):
            value, note = _solve_bare_equations(value)
        if note:
            notes.append(note)
        value = _expand_complex(value)
        answer = format_answer(value, limits)
        if "note" in answer:
            notes.append(answer["note"])
        if notes:
            answer["note"] = "; ".join(notes)
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
        detail = first_line(exc)
        return {"error": f"SymPy cannot do this{': ' + detail if detail else ''}"}
    except Exception as exc:
        # SymPy reports bad input with many exception types (TypeError, ValueError,
        # PolynomialError, NonInvertibleMatrixError...); their text is mathematical.
        log.debug("evaluation of %r failed", source, exc_info=True)
        return {"error": f"could not evaluate: {first_line(exc) or type(exc).__name__}"}


def build_expression(
    parsed: ParsedExpression, limits: Limits, notes: list[str] | None = None
) -> Any:
    """Turn a parsed, vetted expression into SymPy objects, checking sizes before each step.

    Remarks on the result (which variance, ...) are appended to `notes`. Raises
    CalculatorError for a result that would be too large (and whatever SymPy raises for
    input it cannot handle).
    """
    builder = _Builder(parsed.source, limits)
    value = builder.build(parsed.tree.body)
    if notes is not None:
        notes.extend(builder.notes)
    return value


#: Complex numbers are multiplied out up to this many terms (a power of (a + b*I)).
_MAX_COMPLEX_POWER = 1_000


def _expand_complex(value: Any) -> Any:
    """A number with I in it as a + b*I: (1 + I)^10 -> 32*I."""
    if isinstance(value, list | tuple):
        return type(value)(_expand_complex(v) for v in value)
    if not (isinstance(value, sympy.Expr) and value.is_number and value.has(sympy.I)):
        return value
    for power in value.atoms(sympy.Pow):
        if isinstance(power.exp, sympy.Integer) and abs(power.exp) > _MAX_COMPLEX_POWER:
            return value
    expanded = sympy.expand_complex(value) if value.has(sympy.exp) else sympy.expand(value)
    if expanded.has(sympy.I) and sympy.denom(sympy.together(expanded)).has(sympy.I):
        expanded = sympy.expand_complex(expanded)
    return expanded if sympy.count_ops(expanded) <= 4 * sympy.count_ops(value) + 20 else value


def _is_bare_relation(node: ast.AST) -> bool:
    """An equation or inequality written on its own (or a list of them), not a result."""
    if isinstance(node, ast.List | ast.Tuple):
        return bool(node.elts) and all(_is_bare_relation(e) for e in node.elts)
    if isinstance(node, ast.Call):
        return isinstance(node.func, ast.Name) and node.func.id == "Eq"
    return isinstance(node, ast.Compare)


def _solve_bare_equations(value: Any) -> tuple[Any, str | None]:
    """Solve an equation (or a list of them) written on its own, as in `x^2 = 4`; an
    inequality or a chain of them, as in `-3 <= 2x + 1 < 7`, over the reals; a
    differential equation, as in `y'' + y = 0`, with dsolve."""
    if is_inequality(value):
        relations = list(value) if isinstance(value, list | tuple) else [value]
        variables = set().union(*(r.free_symbols for r in relations))
        if len(variables) == 1:
            return solve_inequalities(value), f"solved for {next(iter(variables))} over the reals"
        return value, None
    equations = list(value) if isinstance(value, list | tuple) else [value]
    if not equations or not all(isinstance(eq, sympy.Equality) for eq in equations):
        return value, None
    if any(eq.atoms(sympy.Derivative) for eq in equations):
        target = equations if len(equations) > 1 else equations[0]
        return sympy.dsolve(target), "solved the differential equation with dsolve"
    symbols = sorted(set().union(*(eq.free_symbols for eq in equations)), key=str)
    if not symbols or len(symbols) > len(equations):
        return value, None
    if len(equations) == 1 and sympy.expand(equations[0].lhs - equations[0].rhs) == 0:
        return sympy.true, "an identity: true for every value of " + ", ".join(map(str, symbols))
    solution = sympy.solve(equations if len(equations) > 1 else equations[0], symbols)
    names = ", ".join(str(s) for s in symbols)
    return solution, f"solved for {names}"


def warm_up() -> None:
    """Exercise parsing, building and printing once, so a worker's first answer is quick."""
    evaluate_source("N(sqrt(2)/3 + sin(x)**2, 20) + det(Matrix([[1, 2], [3, 4]]))", Limits())
    evaluate_source("solve(x^2 = 2, x)", Limits())


def first_line(exc: BaseException) -> str:
    """The first line of an exception's text, cut to a length an error answer can quote."""
    text = str(exc).strip().splitlines()
    line = text[0] if text else ""
    return line if len(line) <= _ERROR_CHARS else line[:_ERROR_CHARS] + "…"


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
    "Reals": sympy.S.Reals,
    "Integers": sympy.S.Integers,
    "Complexes": sympy.S.Complexes,
    "Naturals": sympy.S.Naturals,
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


def _growth_log2(value: Any) -> float:
    """log2 of the numeric factor SymPy multiplies out when `value` is raised to a power."""
    if isinstance(value, sympy.Rational):
        return rational_log2(value)
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
        self.notes: list[str] = []

    def build(self, node: ast.AST) -> Any:
        value = self._build(node)
        if _is_rational(value):
            check_bits(rational_log2(value), self._limits)
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
            operand = arith(self.build(node.operand))
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
        return sympy.Rational(text)  # a decimal the person typed is that exact decimal

    def _name(self, name: str) -> Any:
        if name in _CONSTANTS:
            return _CONSTANTS[name]
        if is_unit_name(name):
            return unit(name.removeprefix("unit_"))
        symbol = self._symbols.get(name)
        if symbol is None:
            symbol = self._symbols[name] = sympy.Symbol(name)
        return symbol

    def _binop(self, op: ast.operator, left: Any, right: Any) -> Any:
        left, right = arith(left), arith(right)
        if isinstance(op, ast.Add):
            return left + right
        if isinstance(op, ast.Sub):
            return left - right
        if isinstance(op, ast.Mult):
            if _is_rational(left) and _is_rational(right):
                check_bits(rational_log2(left) + rational_log2(right), self._limits)
            return left * right
        if isinstance(op, ast.Pow):
            return self._power(left, right)
        check_divisor(right)
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
        parts = [arith(self.build(part)) for part in (node.left, *node.comparators)]
        relations = [
            _COMPARE[type(op)](a, b) for op, a, b in zip(node.ops, parts, parts[1:], strict=False)
        ]
        return relations[0] if len(relations) == 1 else sympy.And(*relations)

    def _call(self, node: ast.Call) -> Any:
        name = node.func.id  # type: ignore[attr-defined]  # vetted: a whitelisted Name
        args = [self.build(arg) for arg in node.args]
        kwargs = {kw.arg: self.build(kw.value) for kw in node.keywords if kw.arg}
        implementation = IMPLEMENTATIONS.get(name)
        if implementation is None:  # vetted: y(x), an unknown function of one variable
            return sympy.Function(name)(*args)
        value = implementation(self._limits, *args, **kwargs)
        if isinstance(value, Noted):
            self.notes.append(value.note)
            value = value.value
        return _to_sympy(value)


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

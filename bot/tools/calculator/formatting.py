"""A SymPy value as the calculator's answer: plain text, LaTeX, a decimal and notes."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sympy
from sympy.matrices import MatrixBase
from sympy.printing.str import StrPrinter

from .functions import evalf
from .language import CalculatorError, Limits

__all__ = ["format_answer"]


class _Printer(StrPrinter):
    """SymPy's plain-text printer, with matrices on one line."""

    def _print_MatrixBase(self, expr: MatrixBase) -> str:
        return f"Matrix({self._print(expr.tolist())})"

    def _print_Interval(self, expr: sympy.Interval) -> str:
        left = "(" if expr.left_open else "["
        right = ")" if expr.right_open else "]"
        return f"{left}{self._print(expr.start)}, {self._print(expr.end)}{right}"

    def _print_Range(self, expr: sympy.Range) -> str:
        if expr.is_finite_set and expr.size <= 50:
            return "{" + ", ".join(self._print(v) for v in expr) + "}"
        return self._print_Basic(expr)

    def _print_Union(self, expr: sympy.Union) -> str:
        return " U ".join(self._print(a) for a in expr.args)


def _text(value: Any, **settings: Any) -> str:
    return _Printer(settings).doprint(value)


def format_answer(value: Any, limits: Limits) -> dict[str, str]:
    """`value` as `{"result", "latex", "decimal", "note"}` (the last two only when they say
    something); raises CalculatorError for an infinite or undefined result."""
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
    approx = evalf(value, 15)
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

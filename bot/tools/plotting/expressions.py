"""A plot's expressions: built by the calculator's sandboxed builder, evaluated with NumPy."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import sympy

from ..calculator.evaluate import build_expression, first_line
from ..calculator.language import CalculatorError, parse_expression
from .request import PlotError, PlotLimits

log = logging.getLogger(__name__)

__all__ = ["Evaluator", "build", "number", "real_number", "real_odd_roots"]


def build(text: str, what: str, limits: PlotLimits) -> Any:
    try:
        parsed = parse_expression(text, limits.expression)
        return build_expression(parsed, limits.expression)
    except CalculatorError as exc:
        raise PlotError(f"{what}: {exc.message}") from None
    except ZeroDivisionError:
        raise PlotError(f"{what}: division by zero") from None
    except (MemoryError, RecursionError):
        raise
    except Exception as exc:
        log.debug("could not build %r", text, exc_info=True)
        raise PlotError(f"{what}: could not evaluate: {first_line(exc)}") from None


def real_number(value: Any, what: str) -> float:
    if not isinstance(value, sympy.Expr):
        raise PlotError(f"{what} must be one number")
    if value.free_symbols:
        names = ", ".join(sorted(str(s) for s in value.free_symbols))
        raise PlotError(f"{what} must be a number, but it contains {names}")
    try:
        number = complex(value.evalf(20))
    except (TypeError, ValueError, OverflowError):
        raise PlotError(f"{what} is not a number") from None
    if abs(number.imag) > 1e-12 * max(1.0, abs(number.real)):
        raise PlotError(f"{what} is not a real number")
    if not math.isfinite(number.real):
        raise PlotError(f"{what} must be finite")
    return number.real


def number(text: str, what: str, limits: PlotLimits) -> float:
    return real_number(build(text, what, limits), what)


def _is_odd_root(e: Any) -> bool:
    return (
        isinstance(e, sympy.Pow)
        and isinstance(e.exp, sympy.Rational)
        and not isinstance(e.exp, sympy.Integer)
        and e.exp.q % 2 == 1
        and e.base.is_positive is not True
    )


def real_odd_roots(expr: sympy.Expr) -> sympy.Expr:
    """`x^(p/q)` with odd q as the real root for negative x (cbrt(-8) = -2)."""
    return expr.replace(
        _is_odd_root, lambda e: sympy.sign(e.base) ** e.exp.p * sympy.Abs(e.base) ** e.exp
    )


def _real_scalar(value: Any) -> float:
    try:
        number = complex(value)
    except (TypeError, ValueError, OverflowError):
        return math.nan
    if abs(number.imag) > 1e-9 * max(1.0, abs(number.real)):
        return math.nan
    return number.real if math.isfinite(number.real) else math.nan


def _real(values: Any, shape: tuple[int, ...]) -> np.ndarray:
    """Values as a float array of `shape`: NaN where not a finite real number."""
    y = np.asarray(values)
    if y.dtype == object:
        flat = np.broadcast_to(y, shape).ravel()
        y = np.array([_real_scalar(v) for v in flat], dtype=float).reshape(shape)
    elif np.iscomplexobj(y):
        tolerance = 1e-9 * np.maximum(1.0, np.abs(y.real))
        y = np.where(np.abs(y.imag) <= tolerance, y.real, np.nan)
    y = np.array(np.broadcast_to(y, shape), dtype=float)
    y[~np.isfinite(y)] = np.nan
    return y


class Evaluator:
    """A SymPy expression as a vectorised function; point by point with mpmath if need be."""

    def __init__(self, expr: sympy.Expr, var: sympy.Symbol) -> None:
        self._expr = expr
        self._var = var
        self._scalar: Callable[[float], Any] | None = None
        self._vector: Callable[[np.ndarray], Any] | None
        try:
            self._vector = sympy.lambdify(var, expr, modules="numpy")
        except Exception:  # NumPy has no counterpart for a function in it (e.g. an Integral)
            log.debug("no NumPy form for %s", expr, exc_info=True)
            self._vector = None

    def __call__(self, xs: np.ndarray) -> np.ndarray:
        if self._vector is not None:
            try:
                return _real(self._vector(xs), xs.shape)
            except (MemoryError, RecursionError):
                raise
            except Exception:  # gamma, binomial...: NumPy cannot take them on arrays
                log.debug("falling back to mpmath for %s", self._expr, exc_info=True)
                self._vector = None
        return self._pointwise(xs)

    def _pointwise(self, xs: np.ndarray) -> np.ndarray:
        if self._scalar is None:
            self._scalar = sympy.lambdify(self._var, self._expr, modules="mpmath")
        out = np.full(xs.shape, np.nan)
        flat = out.reshape(-1)
        for i, x in enumerate(xs.reshape(-1)):
            try:
                flat[i] = _real_scalar(self._scalar(float(x)))
            except (MemoryError, RecursionError):
                raise
            except Exception:  # noqa: BLE001 (undefined at this point: left out)
                flat[i] = math.nan
        return out

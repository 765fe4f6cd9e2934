"""The drawing side of the plot tool: evaluates functions with NumPy and draws them with Agg."""

from __future__ import annotations

import io
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np
import sympy
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.layout_engine import ConstrainedLayoutEngine

from ..calculator.evaluate import build_expression  # the calculator's sandboxed builder
from ..calculator.language import CalculatorError, parse_expression
from .request import PlotError, PlotLimits, PlotRequest, function_source, split_point

log = logging.getLogger(__name__)

__all__ = ["PALETTE", "render_request", "warm_up"]

# The same card as bot.render.mathtext's formulas: dark ink on opaque white with a grey edge, so the
# image reads the same on Discord's dark and light themes.
_INK = "#1b1d21"
_CARD = "#ffffff"
_EDGE = "#c4c9d0"
_GRID = "#e4e7eb"
_AXIS = "#8d949e"
_SPINE = "#5d636c"
#: Line colours, in order: saturated enough for white, distinct for common colour blindness.
PALETTE = ("#1f63c6", "#d1321f", "#168a3e", "#8a3fc7", "#e07800", "#6b4a2e")

_BISECTIONS = 36  # halvings when locating a pole, jump, zero or edge of the domain
_GOLDEN = (math.sqrt(5) - 1) / 2
_ERROR_CHARS = 300
_FONT = {"title": 17.0, "label": 15.0, "tick": 13.0, "legend": 13.0, "note": 12.0}


def render_request(request: PlotRequest, limits: PlotLimits) -> dict[str, Any]:
    """Evaluate and draw `request`: `{"png", "summary", "plot_area"}` or `{"error"}`."""
    try:
        with np.errstate(all="ignore"):
            return _Plot(request, limits).run()
    except PlotError as exc:
        return {"error": exc.message}
    except MemoryError:
        return {"error": "the plot ran out of memory; use fewer samples or simpler functions"}
    except RecursionError:
        return {"error": "an expression is too deeply nested to plot"}
    except Exception as exc:
        log.debug("plot failed", exc_info=True)
        return {"error": f"could not draw the plot: {_first_line(exc) or type(exc).__name__}"}


def warm_up() -> None:
    """Draw one small plot, so that fonts and Agg are loaded before the first real request."""
    render_request(
        PlotRequest(functions=("sin(x)", "1/x"), x_min="-pi", x_max="pi", title="$x^2$"),
        PlotLimits(width_px=200, height_px=120),
    )


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    line = lines[0] if lines else ""
    return line if len(line) <= _ERROR_CHARS else line[:_ERROR_CHARS] + "…"


def _snap(value: float, scale: float, relative: float = 1e-9) -> float | int | None:
    """`value` rounded to a power of ten near `relative * scale`, then as `_num`.

    Removes the noise of bisection and floating point: 1.4999999993 becomes 1.5 and
    -2.8e-18 becomes 0 on a plot some units wide.
    """
    if math.isfinite(value) and scale > 0 and math.isfinite(scale):
        step = 10.0 ** math.floor(math.log10(scale * relative))
        value = round(value / step) * step
    return _num(value)


def _num(value: float) -> float | int | None:
    """A number rounded to 6 significant digits for the summary (None when not finite)."""
    value = float(value)
    if not math.isfinite(value):
        return None
    rounded = float(f"{value:.6g}")
    if rounded == 0:
        return 0
    if rounded.is_integer() and abs(rounded) < 1e15:
        return int(rounded)
    return rounded


# --------------------------------------------------------------------------------------------
# Expressions: built by the calculator's sandboxed builder, evaluated with NumPy.
# --------------------------------------------------------------------------------------------


def _build(text: str, what: str, limits: PlotLimits) -> Any:
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
        raise PlotError(f"{what}: could not evaluate: {_first_line(exc)}") from None


def _real_number(value: Any, what: str) -> float:
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


def _number(text: str, what: str, limits: PlotLimits) -> float:
    return _real_number(_build(text, what, limits), what)


def _is_odd_root(e: Any) -> bool:
    return (
        isinstance(e, sympy.Pow)
        and isinstance(e.exp, sympy.Rational)
        and not isinstance(e.exp, sympy.Integer)
        and e.exp.q % 2 == 1
        and e.base.is_positive is not True
    )


def _real_odd_roots(expr: sympy.Expr) -> sympy.Expr:
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


class _Evaluator:
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


# --------------------------------------------------------------------------------------------
# Sampling: poles, jumps, zeros and the edges of the domain, found by bisection.
# --------------------------------------------------------------------------------------------


@dataclass
class _Curve:
    text: str
    label: str
    color: str
    ev: _Evaluator
    x: np.ndarray = field(default_factory=lambda: np.empty(0))
    y: np.ndarray = field(default_factory=lambda: np.empty(0))
    extra_x: list[float] = field(default_factory=list)  # points added to the grid
    extra_y: list[float] = field(default_factory=list)
    poles: list[float] = field(default_factory=list)
    jumps: list[float] = field(default_factory=list)
    undefined: list[tuple[float, float]] = field(default_factory=list)
    zeros: list[float] = field(default_factory=list)
    bound: float = math.inf  # |y| beyond this is an outlier (near a pole)

    def add(self, xs: Any, ys: Any) -> None:
        self.extra_x.extend(np.atleast_1d(xs).tolist())
        self.extra_y.extend(np.atleast_1d(ys).tolist())

    def drawn(self) -> tuple[np.ndarray, np.ndarray]:
        """The points to draw: the grid, refined edges, and NaN breaks, in x order."""
        x = np.concatenate([self.x, np.asarray(self.extra_x, dtype=float)])
        y = np.concatenate([self.y, np.asarray(self.extra_y, dtype=float)])
        order = np.argsort(x, kind="stable")
        return x[order], y[order]

    @property
    def finite(self) -> np.ndarray:
        return self.y[np.isfinite(self.y)]


def _spread(values: np.ndarray) -> tuple[float, float, float]:
    """(5th percentile, 95th percentile, their distance or a stand-in when it is 0)."""
    q_lo, q_hi = (float(q) for q in np.percentile(values, [5, 95]))
    h = q_hi - q_lo
    if h <= 0:
        h = max(abs(q_lo), abs(q_hi), 1.0)
    return q_lo, q_hi, h


def _bisect_breaks(curve: _Curve, bound: float, h: float) -> set[int]:
    """Find where the curve jumps or has a pole between samples; mark those with NaN.

    A candidate is a step much larger than the typical one. Halving its interval again
    and again shrinks the step of a continuous function to nothing, while a jump keeps its
    size and a pole's values blow up. Returns the indices i of broken intervals (i, i+1).
    """
    x, y = curve.x, curve.y
    pairs = np.isfinite(y[:-1]) & np.isfinite(y[1:])
    if not pairs.any():
        return set()
    dy = np.abs(np.diff(y))
    typical = float(np.median(dy[pairs]))
    threshold = max(20.0 * typical, 0.02 * h)
    idx = np.flatnonzero(pairs & (dy > threshold))
    if idx.size == 0:
        return set()
    a, b, ya, yb = x[idx], x[idx + 1], y[idx], y[idx + 1]
    step0 = np.abs(yb - ya)
    size0 = np.maximum(np.abs(ya), np.abs(yb))
    hit = np.zeros(idx.size, dtype=bool)  # landed on an undefined point
    for _ in range(_BISECTIONS):
        m = (a + b) / 2
        ym = curve.ev(m)
        hit |= ~np.isfinite(ym)
        left = np.abs(ym - ya) >= np.abs(yb - ym)
        go_left, go_right = left & ~hit, ~left & ~hit
        b, yb = np.where(go_left, m, b), np.where(go_left, ym, yb)
        a, ya = np.where(go_right, m, a), np.where(go_right, ym, ya)
    size = np.maximum(np.abs(ya), np.abs(yb))
    broken = hit | (np.abs(yb - ya) > 0.25 * step0)
    pole = np.where(hit, size0 > bound, size > 10.0 * np.maximum(size0, bound))
    out: set[int] = set()
    for k in np.flatnonzero(broken):
        at = float((a[k] + b[k]) / 2)
        (curve.poles if pole[k] else curve.jumps).append(at)
        # Draw each side up to the break, with a gap (NaN) between them.
        curve.add([a[k], at, b[k]], [ya[k] if not hit[k] else np.nan, np.nan, yb[k]])
        out.add(int(idx[k]))
    return out


def _domain_edges(curve: _Curve, bound: float) -> None:
    """Locate where the curve stops being defined between samples; note the gaps."""
    x, y = curve.x, curve.y
    ok = np.isfinite(y)
    edges = np.flatnonzero(ok[:-1] != ok[1:])
    good = np.where(ok[edges], x[edges], x[edges + 1])
    bad = np.where(ok[edges], x[edges + 1], x[edges])
    y_good = np.where(ok[edges], y[edges], y[edges + 1])
    for _ in range(_BISECTIONS):
        m = (good + bad) / 2
        ym = curve.ev(m)
        fine = np.isfinite(ym)
        good, y_good = np.where(fine, m, good), np.where(fine, ym, y_good)
        bad = np.where(fine, bad, m)
    curve.add(good, y_good)
    edge_at = {int(i): (float(bad[k]), float(y_good[k])) for k, i in enumerate(edges)}
    # Runs of undefined samples, as x-intervals; a pole exactly on a sample is a tiny one.
    span = float(x[-1] - x[0])
    n = len(x)
    i = 0
    while i < n:
        if ok[i]:
            i += 1
            continue
        j = i
        while j + 1 < n and not ok[j + 1]:
            j += 1
        left, y_left = edge_at.get(i - 1, (float(x[i]), math.nan))
        right, y_right = edge_at.get(j, (float(x[j]), math.nan))
        tiny = i > 0 and j < n - 1 and right - left <= 1e-6 * span
        if tiny and min(abs(y_left), abs(y_right)) > 10.0 * bound:
            curve.poles.append((left + right) / 2)
        else:
            curve.undefined.append((left, right))
        i = j + 1


def _zeros(curve: _Curve, broken: set[int]) -> None:
    x, y = curve.x, curve.y
    finite = curve.finite
    tiny = 1e-12 * float(np.max(np.abs(finite))) if finite.size else 0.0
    s = np.where(np.abs(y) <= tiny, 0.0, np.sign(y))
    zero = s == 0
    # A sample on a zero counts, unless the function is zero on a whole stretch (floor(x)).
    lonely = zero & ~np.concatenate([[False], zero[:-1]]) & ~np.concatenate([zero[1:], [False]])
    exact = x[lonely].tolist()
    idx = np.flatnonzero(s[:-1] * s[1:] < 0)
    idx = np.array([i for i in idx if int(i) not in broken], dtype=int)
    found: list[float] = list(exact)
    if idx.size:
        a, b, ya = x[idx], x[idx + 1], y[idx]
        for _ in range(_BISECTIONS + 14):
            m = (a + b) / 2
            ym = curve.ev(m)
            same = np.sign(ym) == np.sign(ya)
            a, ya = np.where(same, m, a), np.where(same, ym, ya)
            b = np.where(same, b, m)
        found += ((a + b) / 2).tolist()
    curve.zeros = sorted(found)


def _golden(ev: _Evaluator, a: float, b: float, key: Callable[[float], float]) -> float:
    """Where `key(f(x))` is least on [a, b], by golden-section search (a or b if undefined)."""
    for _ in range(60):
        c, d = b - _GOLDEN * (b - a), a + _GOLDEN * (b - a)
        fc, fd = (key(float(v)) for v in ev(np.array([c, d])))
        if math.isnan(fc) or math.isnan(fd):
            return c if math.isnan(fc) else d
        if fc < fd:
            b = d
        else:
            a = c
    return (a + b) / 2


def _spikes(curve: _Curve, broken: set[int]) -> None:
    """Poles that do not change sign (1/x^2): a local peak of |y| that grows without bound."""
    x, y = curve.x, curve.y
    size = np.abs(y)
    ok = np.isfinite(y)
    inner = np.arange(1, len(y) - 1)
    peaks = inner[
        ok[inner - 1] & ok[inner] & ok[inner + 1]
        & (size[inner] >= size[inner - 1]) & (size[inner] >= size[inner + 1])
        & (size[inner] > curve.bound)
    ]  # fmt: skip
    span = float(x[-1] - x[0])
    for i in peaks[:50].tolist():
        if i - 1 in broken or i in broken:
            continue  # a pole found already
        at = _golden(curve.ev, float(x[i - 1]), float(x[i + 1]), lambda v: -abs(v))
        peak = abs(float(curve.ev(np.array([at]))[0]))
        unbounded = math.isnan(peak) or peak > 1e6 * curve.bound
        if unbounded and all(abs(at - p) > 1e-9 * span for p in curve.poles):
            curve.poles.append(at)
            curve.add([at], [np.nan])


def _extreme(curve: _Curve, sign: float) -> tuple[float, float] | None:
    """The lowest (sign 1) or highest (sign -1) drawn point, refined between samples."""
    x, y = curve.drawn()
    ok = np.isfinite(y) & (np.abs(y) <= curve.bound)
    if not ok.any():
        return None
    i = int(np.argmin(np.where(ok, sign * y, np.inf)))
    best_x, best_y = float(x[i]), float(y[i])
    if np.any(np.isfinite(y) & ~ok & (sign * y < sign * best_y)):
        return None  # unbounded that way (log(x) as x -> 0)
    if 0 < i < len(x) - 1 and ok[i - 1] and ok[i + 1]:
        at = _golden(curve.ev, float(x[i - 1]), float(x[i + 1]), lambda v: sign * v)
        y_at = float(curve.ev(np.array([at]))[0])
        if math.isfinite(y_at) and sign * y_at <= sign * best_y:
            best_x, best_y = at, y_at
    return best_x, best_y


# --------------------------------------------------------------------------------------------
# One plot
# --------------------------------------------------------------------------------------------


@dataclass
class _Mark:
    x: float
    y: float | None
    color: str
    on: str | None = None
    note: str | None = None


class _Plot:
    def __init__(self, request: PlotRequest, limits: PlotLimits) -> None:
        self.r = request
        self.limits = limits
        self.var = sympy.Symbol(request.variable)
        self.notes: list[str] = []
        self.curves: list[_Curve] = []
        self.marks: list[_Mark] = []
        n = len(request.data)
        self.data_y = np.asarray(request.data, dtype=float)
        if request.data_x:
            self.data_x = np.asarray(request.data_x, dtype=float)
        else:
            self.data_x = np.arange(1, n + 1, dtype=float)

    # ---- evaluation ------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        r = self.r
        exprs = [self._function(text) for text in r.functions]
        x0, x1 = self._x_range()
        if exprs:
            space = np.geomspace if r.log_x else np.linspace
            grid = space(x0, x1, r.samples)
            for i, (text, expr) in enumerate(zip(r.functions, exprs, strict=True)):
                label = r.labels[i] if i < len(r.labels) and r.labels[i].strip() else None
                curve = _Curve(
                    text=text,
                    label=label or function_source(text).replace("**", "^"),
                    color=PALETTE[i % len(PALETTE)],
                    ev=_Evaluator(expr, self.var),
                )
                curve.x, curve.y = grid, curve.ev(grid)
                self._analyse(curve)
                self.curves.append(curve)
            if not any(c.finite.size for c in self.curves):
                names = " or ".join(function_source(c.text) for c in self.curves)
                raise PlotError(
                    f"nothing to draw: {names} is not a real number anywhere on "
                    f"[{x0:g}, {x1:g}]; choose another range"
                )
        self._place_marks(x0, x1)
        return self._draw(x0, x1)

    def _function(self, text: str) -> sympy.Expr:
        what = f"function {text!r}"
        value = _build(function_source(text), what, self.limits)
        var = self.r.variable
        if isinstance(value, sympy.Equality):
            raise PlotError(
                f"{what} is an equation; plot each side as its own function, or their difference"
            )
        if not isinstance(value, sympy.Expr):
            raise PlotError(f"{what} is not a function of {var} (it is not a single expression)")
        others = sorted(str(s) for s in value.free_symbols if s != self.var)
        if others:
            raise PlotError(
                f"{what} has variables other than {var}: {', '.join(others)}; "
                "give them numeric values (or set `variable`)"
            )
        real = _real_odd_roots(value)
        if real != value and "odd roots" not in " ".join(self.notes):
            self.notes.append("odd roots of negative numbers are drawn as real roots")
        return real

    def _x_range(self) -> tuple[float, float]:
        r = self.r
        given_lo = _number(r.x_min, "x_min", self.limits) if r.x_min.strip() else None
        given_hi = _number(r.x_max, "x_max", self.limits) if r.x_max.strip() else None
        if r.data and r.data_kind in ("line", "scatter"):
            lo, hi = float(self.data_x.min()), float(self.data_x.max())
            if lo == hi:
                lo, hi = lo - 1.0, hi + 1.0
        elif r.log_x:
            lo, hi = 0.01, 100.0
        else:
            lo, hi = -10.0, 10.0
        if given_lo is not None and given_hi is None and given_lo >= hi:
            hi = given_lo + (hi - lo)
        if given_hi is not None and given_lo is None and given_hi <= lo:
            lo = given_hi - (hi - lo)
        lo = lo if given_lo is None else given_lo
        hi = hi if given_hi is None else given_hi
        if lo == hi:
            raise PlotError(f"empty range: x_min and x_max are both {lo:g}")
        if lo > hi:
            raise PlotError(f"x_min ({lo:g}) must be less than x_max ({hi:g})")
        if hi - lo <= 1e-9 * max(abs(lo), abs(hi)):
            raise PlotError(f"the range [{lo:.15g}, {hi:.15g}] is too narrow to plot")
        if max(abs(lo), abs(hi)) > 1e100:
            raise PlotError("the x-range is too large (limit ±1e100)")
        if r.log_x and lo <= 0:
            raise PlotError(f"log_x needs x_min > 0, not {lo:g}")
        return lo, hi

    def _analyse(self, curve: _Curve) -> None:
        finite = curve.finite
        if finite.size == 0:
            curve.undefined.append((float(curve.x[0]), float(curve.x[-1])))
            return
        q_lo, q_hi, h = _spread(finite)
        curve.bound = bound = max(abs(q_lo), abs(q_hi)) + 2.0 * h
        broken = _bisect_breaks(curve, bound, h)
        _spikes(curve, broken)
        _domain_edges(curve, bound)
        _zeros(curve, broken)

    # ---- marked points ---------------------------------------------------------------------

    def _place_marks(self, x0: float, x1: float) -> None:
        limit = self.limits.max_marks
        for text in self.r.mark_points:
            x_text, y_text = split_point(text)
            what = f"mark_points {text!r}"
            if y_text is not None:
                x = _number(x_text, what, self.limits)
                y = _number(y_text, what, self.limits)
                self.marks.append(_Mark(x, y, _INK))
                continue
            value = _build(x_text, what, self.limits)
            values = list(value) if isinstance(value, list | tuple) else [value]
            for item in values:
                try:
                    x = _real_number(item, what)
                except PlotError:
                    if len(values) == 1:
                        raise
                    continue  # a complex root among real ones
                self._mark_on_curves(x)
        if len(self.marks) > limit:
            self.notes.append(f"only the first {limit} of {len(self.marks)} marks are shown")
            del self.marks[limit:]
        for mark in self.marks:
            if not x0 <= mark.x <= x1 and self.curves:
                mark.note = "outside the x-range: not drawn"

    def _mark_on_curves(self, x: float) -> None:
        placed: list[float] = []
        for curve in self.curves:
            y = float(curve.ev(np.array([x]))[0])
            if not math.isfinite(y):
                continue
            scale = float(np.max(np.abs(curve.finite))) if curve.finite.size else 1.0
            if abs(y) < 1e-10 * max(1.0, scale):
                y = 0.0
            if any(abs(y - p) <= 1e-9 * max(1.0, abs(y)) for p in placed):
                continue  # an intersection: one mark is enough
            placed.append(y)
            self.marks.append(_Mark(x, y, curve.color, on=curve.label))
        if not placed:
            note = "no function is defined here: drawn as a vertical line" if self.curves else None
            self.marks.append(_Mark(x, None, _INK, note=note))

    # ---- drawing ---------------------------------------------------------------------------

    def _y_range(self) -> tuple[float, float, bool] | None:
        """The y-range to show, and whether values beyond it are cut off; None: automatic."""
        r = self.r
        parts = [c.finite for c in self.curves]
        if r.data and r.data_kind in ("line", "scatter"):
            parts.append(self.data_y)
        parts.append(np.array([m.y for m in self.marks if m.y is not None and m.note is None]))
        values = np.concatenate(parts) if parts else np.empty(0)
        if r.log_y:
            values = np.log10(values[values > 0])
        values = values[np.isfinite(values)]
        if values.size == 0 or not self.curves:
            return None
        lo, hi = float(values.min()), float(values.max())
        q_lo, q_hi, h = _spread(values)
        poles = any(c.poles for c in self.curves)
        clipped = False
        if lo < q_lo - 2 * h and (poles or lo < q_lo - 10 * h):
            lo, clipped = q_lo - 0.5 * h, True
        if hi > q_hi + 2 * h and (poles or hi > q_hi + 10 * h):
            hi, clipped = q_hi + 0.5 * h, True
        for mark in self.marks:  # marked points stay in view
            if mark.y is not None and mark.note is None:
                v = math.log10(mark.y) if r.log_y and mark.y > 0 else mark.y
                if not r.log_y or mark.y > 0:
                    lo, hi = min(lo, v), max(hi, v)
        if hi - lo <= 1e-12 * max(1.0, abs(hi)):
            pad = max(1.0, abs(hi)) * 0.5 if not r.log_y else 0.5
            lo, hi = lo - pad, hi + pad
        else:
            pad = 0.06 * (hi - lo)
            lo, hi = lo - pad, hi + pad
        if r.log_y:
            lo, hi = 10.0**lo, 10.0**hi
        return lo, hi, clipped

    def _draw(self, x0: float, x1: float) -> dict[str, Any]:
        r, limits = self.r, self.limits
        dpi = limits.dpi
        fig = Figure(
            figsize=(limits.width_px / dpi, limits.height_px / dpi),
            dpi=dpi,
            facecolor=_CARD,
            edgecolor=_EDGE,
            linewidth=2.0,
            layout="constrained",
        )
        FigureCanvasAgg(fig)
        engine = fig.get_layout_engine()
        if isinstance(engine, ConstrainedLayoutEngine):  # it is: layout="constrained"
            engine.set(w_pad=0.12, h_pad=0.1)
        ax = fig.add_subplot()
        self._style(ax)
        auto = self._y_range()
        user_lo = _number(r.y_min, "y_min", limits) if r.y_min.strip() else None
        user_hi = _number(r.y_max, "y_max", limits) if r.y_max.strip() else None
        if r.log_y:
            ax.set_yscale("log")
            if (user_lo is not None and user_lo <= 0) or (user_hi is not None and user_hi <= 0):
                raise PlotError("log_y needs a positive y_min and y_max")
        if r.log_x:
            ax.set_xscale("log")
        y_lo, y_hi, clipped = auto if auto is not None else (None, None, False)
        y_lo = user_lo if user_lo is not None else y_lo
        y_hi = user_hi if user_hi is not None else y_hi
        if y_lo is not None and y_hi is not None and y_lo >= y_hi:
            raise PlotError(f"y_min ({y_lo:g}) must be less than y_max ({y_hi:g})")
        left_out = False
        for curve in self.curves:
            xs, ys = curve.drawn()
            if r.log_y:
                left_out |= bool(np.any(ys[np.isfinite(ys)] <= 0))
                ys = np.where(ys > 0, ys, np.nan)
            if y_lo is not None and y_hi is not None:  # keep Agg's coordinates sane
                far = 10.0 * (y_hi - y_lo)
                ys = np.clip(ys, y_lo - far, y_hi + far) if not r.log_y else ys
            ax.plot(xs, ys, color=curve.color, linewidth=2.6, label=curve.label, zorder=3)
        data_summary = self._draw_data(ax) if r.data else None
        if self.curves:
            ax.set_xlim(x0, x1)
        else:
            if r.x_min.strip():
                ax.set_xlim(left=x0)
            if r.x_max.strip():
                ax.set_xlim(right=x1)
        if y_lo is not None or y_hi is not None:
            ax.set_ylim(bottom=y_lo, top=y_hi)
        self._draw_marks(ax)
        self._axes_lines(ax)
        if self.curves and not r.log_x:
            self._pi_ticks(ax, x0, x1)
        self._texts(ax)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=dpi, facecolor=_CARD, edgecolor=_EDGE,
                    metadata={"Software": None})  # fmt: skip
        box = ax.get_window_extent()
        height = limits.height_px
        area = (round(box.x0), round(height - box.y1), round(box.x1), round(height - box.y0))
        shown = ax.get_ylim()
        summary = self._summary(x0, x1, shown, clipped and user_lo is None and user_hi is None)
        if left_out:
            self.notes.append("values <= 0 are left out on the log scale")
        if data_summary is not None:
            summary["data"] = data_summary
        if self.notes:
            summary["notes"] = self.notes
        return {"png": buffer.getvalue(), "summary": summary, "plot_area": area}

    @staticmethod
    def _style(ax: Any) -> None:
        ax.set_facecolor(_CARD)
        ax.grid(True, color=_GRID, linewidth=1.0, zorder=0)
        ax.set_axisbelow(True)
        for spine in ax.spines.values():
            spine.set_color(_SPINE)
            spine.set_linewidth(1.2)
        ax.tick_params(colors=_INK, labelsize=_FONT["tick"], width=1.2, length=5)

    def _axes_lines(self, ax: Any) -> None:
        """The lines x = 0 and y = 0, where they are in view."""
        (x_lo, x_hi), (y_lo, y_hi) = ax.get_xlim(), ax.get_ylim()
        if not self.r.log_y and y_lo < 0 < y_hi:
            ax.axhline(0.0, color=_AXIS, linewidth=1.4, zorder=1)
        bars = self.r.data and self.r.data_kind in ("bar", "histogram")
        if not self.r.log_x and not bars and x_lo < 0 < x_hi:
            ax.axvline(0.0, color=_AXIS, linewidth=1.4, zorder=1)

    def _pi_ticks(self, ax: Any, x0: float, x1: float) -> None:
        """Ticks at multiples of π when the range was given in terms of pi."""
        given = f"{self.r.x_min} {self.r.x_max}".lower()
        if "pi" not in given and "π" not in given:
            return
        turns = (x1 - x0) / math.pi
        for step in (Fraction(1, 4), Fraction(1, 2), Fraction(1), Fraction(2), Fraction(4)):
            if turns / step <= 12:
                break
        else:
            return
        first = math.ceil(x0 / math.pi / step - 1e-9)
        last = math.floor(x1 / math.pi / step + 1e-9)
        if last - first < 2:
            return
        ticks = [k * step for k in range(first, last + 1)]
        ax.set_xticks([float(t) * math.pi for t in ticks], [_pi_label(t) for t in ticks])

    def _texts(self, ax: Any) -> None:
        r = self.r
        if r.title.strip():
            ax.set_title(r.title.strip(), fontsize=_FONT["title"], color=_INK, pad=10,
                         parse_math=_mathtext_ok(r.title))  # fmt: skip
        if r.x_label.strip():
            ax.set_xlabel(r.x_label.strip(), fontsize=_FONT["label"], color=_INK,
                          parse_math=_mathtext_ok(r.x_label))  # fmt: skip
        if r.y_label.strip():
            ax.set_ylabel(r.y_label.strip(), fontsize=_FONT["label"], color=_INK,
                          parse_math=_mathtext_ok(r.y_label))  # fmt: skip
        handles, _ = ax.get_legend_handles_labels()
        if self.curves and (len(handles) > 1 or r.labels or not r.title.strip()):
            legend = ax.legend(fontsize=_FONT["legend"], framealpha=0.92, edgecolor=_EDGE,
                               labelcolor=_INK, loc="best")  # fmt: skip
            for text in legend.get_texts():
                text.set_parse_math(False)

    def _draw_marks(self, ax: Any) -> None:
        x_lo, x_hi = ax.get_xlim()
        for mark in self.marks:
            if mark.note == "outside the x-range: not drawn":
                continue
            if mark.y is None:
                if x_lo <= mark.x <= x_hi:
                    ax.axvline(mark.x, color=_INK, linewidth=1.4, linestyle="--", zorder=2)
                continue
            ax.scatter([mark.x], [mark.y], s=70, color=mark.color, edgecolors=_INK,
                       linewidths=1.5, zorder=5)  # fmt: skip
            ax.annotate(
                f"({_short(mark.x)}, {_short(mark.y)})",
                (mark.x, mark.y),
                xytext=(7, 7),
                textcoords="offset points",
                fontsize=_FONT["note"],
                color=_INK,
                zorder=6,
                bbox={"boxstyle": "round,pad=0.2", "fc": _CARD, "ec": "none", "alpha": 0.8},
                parse_math=False,
            )

    def _draw_data(self, ax: Any) -> dict[str, Any]:
        r = self.r
        y = self.data_y
        color = PALETTE[len(self.curves) % len(PALETTE)]
        n = len(y)
        summary: dict[str, Any] = {"kind": r.data_kind, "n": n}
        summary.update(_stats(y))
        if r.data_kind in ("histogram", "bar"):
            ax.xaxis.grid(False)
        if r.data_kind == "histogram":
            edges = _bins(y, r.bins, self.limits.max_bins)
            counts, edges, _ = ax.hist(y, bins=edges, color=color, edgecolor=_CARD,
                                       linewidth=0.8, zorder=3)  # fmt: skip
            k = int(np.argmax(counts))
            summary["bins"] = len(edges) - 1
            summary["bin_width"] = _num(edges[1] - edges[0])
            summary["tallest_bin"] = [_num(edges[k]), _num(edges[k + 1]), int(counts[k])]
            if not r.y_label.strip():
                ax.set_ylabel("count", fontsize=_FONT["label"], color=_INK)
        elif r.data_kind == "bar":
            names = [
                r.labels[i] if i < len(r.labels) and r.labels[i].strip() else str(i + 1)
                for i in range(n)
            ]
            positions = np.arange(n)
            ax.bar(positions, y, color=color, edgecolor=_CARD, linewidth=0.8, zorder=3)
            if n <= 40:
                rotate = n > 8 and max(len(s) for s in names) > 3
                ax.set_xticks(positions, names, rotation=45 if rotate else 0,
                              ha="right" if rotate else "center")  # fmt: skip
                for text in ax.get_xticklabels():
                    text.set_parse_math(False)
            big, small = int(np.argmax(y)), int(np.argmin(y))
            summary["largest"] = [names[big], _num(y[big])]
            summary["smallest"] = [names[small], _num(y[small])]
        else:
            x = self.data_x
            label = "data" if self.curves else None
            if r.data_kind == "scatter":
                ax.scatter(x, y, s=30 if n <= 200 else 12, color=color, alpha=0.85,
                           zorder=4, label=label)  # fmt: skip
            else:
                order = np.argsort(x, kind="stable")
                ax.plot(x[order], y[order], color=color, linewidth=2.2, zorder=4, label=label,
                        marker="o" if n <= 60 else None, markersize=5)  # fmt: skip
            low, high = int(np.argmin(y)), int(np.argmax(y))
            summary["x_range"] = [_num(x.min()), _num(x.max())]
            summary["lowest"] = [_num(x[low]), _num(y[low])]
            summary["highest"] = [_num(x[high]), _num(y[high])]
        if r.log_y and np.any(y <= 0):
            self.notes.append("data values <= 0 are left out on the log scale")
        return summary

    # ---- the summary for the model ---------------------------------------------------------

    def _summary(
        self, x0: float, x1: float, shown: tuple[float, float], clipped: bool
    ) -> dict[str, Any]:
        r = self.r
        cap = self.limits.max_reported
        summary: dict[str, Any] = {}
        if self.curves:
            if r.variable != "x":
                summary["variable"] = r.variable
            summary["x_range"] = [_num(x0), _num(x1)]
        summary["y_range"] = [_num(shown[0]), _num(shown[1])]
        if r.log_x or r.log_y:
            summary["log"] = [axis for axis, on in (("x", r.log_x), ("y", r.log_y)) if on]
        if clipped:
            summary["clipped"] = "values beyond y_range are cut off (near poles)"
        functions = []
        span = x1 - x0
        height = abs(shown[1] - shown[0]) if not r.log_y else 0.0
        for curve in self.curves:
            entry: dict[str, Any] = {"f": function_source(curve.text)}
            if curve.label != function_source(curve.text).replace("**", "^"):
                entry["label"] = curve.label
            if curve.finite.size == 0:
                entry["note"] = "not a real number anywhere on the range: nothing drawn"
                functions.append(entry)
                continue
            if not curve.poles:
                for key, sign in (("lowest", 1.0), ("highest", -1.0)):
                    point = _extreme(curve, sign)
                    if point is not None:
                        entry[key] = [_snap(point[0], span, 1e-7), _snap(point[1], height)]
            for key, values in (("zeros", curve.zeros), ("poles", sorted(curve.poles)),
                                ("jumps", sorted(curve.jumps))):  # fmt: skip
                if values:
                    entry[key] = [_snap(v, span) for v in values[:cap]]
                    if len(values) > cap:
                        entry[f"{key}_total"] = len(values)
            if curve.undefined:
                entry["undefined"] = [
                    [_snap(a, span), _snap(b, span)] for a, b in curve.undefined[:cap]
                ]
            functions.append(entry)
        if functions:
            summary["functions"] = functions
        marks = []
        for mark in self.marks:
            item: dict[str, Any] = {
                "x": _num(mark.x),
                "y": None if mark.y is None else _num(mark.y),
            }
            if mark.on is not None and len(self.curves) > 1:
                item["on"] = mark.on
            if mark.note:
                item["note"] = mark.note
            marks.append(item)
        if marks:
            summary["marked"] = marks
        return summary


def _short(value: float) -> str:
    text = f"{value:.4g}"
    return "0" if text in ("-0", "0") else text.replace("-", "−")


def _pi_label(multiple: Fraction) -> str:
    if multiple == 0:
        return "0"
    sign = "−" if multiple < 0 else ""
    p, q = abs(multiple.numerator), multiple.denominator
    head = "π" if p == 1 else f"{p}π"
    return f"{sign}{head}" if q == 1 else f"{sign}{head}/{q}"


def _mathtext_ok(text: str) -> bool:
    """Whether `text` has $...$ math that matplotlib can typeset (else: shown literally)."""
    if text.count("$") < 2:
        return False
    from matplotlib.font_manager import FontProperties
    from matplotlib.mathtext import MathTextParser

    try:
        MathTextParser("path").parse(text, dpi=72, prop=FontProperties())
    except ValueError:
        return False
    return True


def _bins(values: np.ndarray, bins: int, cap: int) -> np.ndarray:
    if bins > 0:
        return np.histogram_bin_edges(values, bins=bins)
    low, high = float(values.min()), float(values.max())
    if np.all(values == np.round(values)) and high - low < cap:
        return np.arange(low - 0.5, high + 1.0)  # whole numbers: one bar per value
    edges = np.histogram_bin_edges(values, bins="auto")
    if len(edges) - 1 > cap:
        edges = np.histogram_bin_edges(values, bins=cap)
    return edges


def _stats(values: np.ndarray) -> dict[str, Any]:
    return {
        "min": _num(values.min()),
        "max": _num(values.max()),
        "mean": _num(values.mean()),
        "median": _num(np.median(values)),
        "std": _num(values.std(ddof=1)) if len(values) > 1 else 0,
    }

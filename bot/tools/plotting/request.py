"""What a plot may ask for (`PlotRequest`, `PlotLimits`), and the checks that need no worker."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Literal, get_args

from ..base import ToolError
from ..calculator.language import CalculatorError, Limits, is_symbol_name, vet_expression

__all__ = [
    "DATA_KINDS",
    "DataKind",
    "PlotError",
    "PlotLimits",
    "PlotRequest",
    "check_request",
    "function_source",
    "split_point",
]

#: The ways a list of numbers can be drawn.
DataKind = Literal["line", "scatter", "bar", "histogram"]
DATA_KINDS: tuple[DataKind, ...] = get_args(DataKind)


class PlotError(ToolError):
    """A problem with a plot request, worded so that the model can act on it."""


@dataclass(frozen=True, slots=True)
class PlotLimits:
    """Bounds on what one plot may ask for; every check uses these."""

    max_functions: int = 6
    default_samples: int = 1_000
    max_samples: int = 2_000  # per function
    max_data_points: int = 1_000
    max_marks: int = 20
    #: Characters of all the expressions of one plot together (functions, ends, marks).
    max_expression_chars: int = 2_000
    max_bins: int = 100
    max_title_chars: int = 120  # title and axis labels
    max_label_chars: int = 60  # legend entries and bar names
    max_reported: int = 10  # poles, jumps, zeros... listed per function in the summary
    width_px: int = 1_000
    height_px: int = 600
    dpi: int = 100
    expression: Limits = field(default_factory=Limits)


@dataclass(frozen=True, slots=True)
class PlotRequest:
    """One plot: functions of one variable over a range, and/or a short list of numbers.

    Ranges, y-limits and marked points are expressions in the calculator's language
    ("2*pi", "-sqrt(2)"); an empty range end means "automatic".
    """

    functions: tuple[str, ...] = ()
    x_min: str = ""
    x_max: str = ""
    y_min: str = ""
    y_max: str = ""
    variable: str = "x"
    samples: int = 1_000
    title: str = ""
    x_label: str = ""
    y_label: str = ""
    labels: tuple[str, ...] = ()
    mark_points: tuple[str, ...] = ()
    log_x: bool = False
    log_y: bool = False
    data: tuple[float, ...] = ()
    data_x: tuple[float, ...] = ()
    data_kind: str = "line"
    bins: int = 0


# "y = ...", "f(x) = ..." and "g(t) = ..." are names for the function, not part of it.
_LHS_RE = re.compile(r"^\s*(?:y|[A-Za-z](?:_?\d)?\s*\(\s*[A-Za-z]\w{0,7}\s*\))\s*=(?!=)")


def function_source(text: str) -> str:
    """The expression of a function as written, without a leading `y =` or `f(x) =`."""
    return _LHS_RE.sub("", text, count=1).strip()


def split_point(text: str) -> tuple[str, str | None]:
    """Split a point to mark into its x and optional y: "2", "2, 0", "(2, 0)" or "[2, 0]"."""
    body = text.strip()
    if len(body) >= 2 and body[0] + body[-1] in ("()", "[]"):
        inner = body[1:-1]
        depth = 0
        for ch in inner:  # only strip brackets that enclose the whole text
            depth += (ch in "([") - (ch in ")]")
            if depth < 0:
                break
        else:
            body = inner
    depth = 0
    for i, ch in enumerate(body):
        depth += (ch in "([") - (ch in ")]")
        if ch == "," and depth == 0:
            x, y = body[:i].strip(), body[i + 1 :].strip()
            if not x or not y or "," in _top_level(y):
                raise PlotError(f"mark_points: {text!r} should be an x value or 'x, y'")
            return x, y
    return body, None


def _top_level(text: str) -> str:
    """`text` with everything inside brackets removed."""
    out: list[str] = []
    depth = 0
    for ch in text:
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif depth == 0:
            out.append(ch)
    return "".join(out)


def _vet(text: str, what: str, limits: PlotLimits) -> None:
    try:
        vet_expression(text, limits.expression)
    except CalculatorError as exc:
        raise PlotError(f"{what}: {exc.message}") from None


def _plain_number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _check_range(low: str, high: str, axis: str, limits: PlotLimits) -> None:
    for name, text in ((f"{axis}_min", low), (f"{axis}_max", high)):
        if text.strip():
            _vet(text, name, limits)
    if low.strip() and high.strip():
        a, b = _plain_number(low), _plain_number(high)
        if low.strip() == high.strip() or (a is not None and a == b):
            raise PlotError(f"empty range: {axis}_min and {axis}_max are both {low.strip()}")
        if a is not None and b is not None and a > b:
            raise PlotError(f"{axis}_min ({a:g}) must be less than {axis}_max ({b:g})")


def _check_text(text: str, what: str, cap: int) -> None:
    if len(text) > cap:
        raise PlotError(f"{what} too long: {len(text)} characters (limit {cap})")


def check_request(request: PlotRequest, limits: PlotLimits | None = None) -> None:
    """Run every check that needs no worker; raise PlotError saying what to fix."""
    limits = limits or PlotLimits()
    functions, data = request.functions, request.data
    if not functions and not data:
        raise PlotError('nothing to plot: give functions (e.g. ["sin(x)"]) or data')
    if len(functions) > limits.max_functions:
        raise PlotError(
            f"too many functions: {len(functions)} (limit {limits.max_functions} per plot; "
            "make several plots)"
        )
    if len(request.mark_points) > limits.max_marks:
        raise PlotError(
            f"too many mark_points: {len(request.mark_points)} (limit {limits.max_marks})"
        )
    expressions = (*functions, request.x_min, request.x_max, request.y_min, request.y_max,
                   *request.mark_points)  # fmt: skip
    total = sum(len(text) for text in expressions)
    if total > limits.max_expression_chars:
        raise PlotError(
            f"expressions too long: {total:,} characters in all (limit "
            f"{limits.max_expression_chars:,} per plot); simplify them or make several plots"
        )
    if not limits.max_samples >= request.samples >= 2:
        raise PlotError(
            f"samples must be between 2 and {limits.max_samples:,}, not {request.samples:,}"
        )
    if not is_symbol_name(request.variable):
        raise PlotError(
            f"variable must be a single letter such as x or t, not {request.variable!r}"
        )
    for i, text in enumerate(functions, 1):
        source = function_source(text)
        if not source:
            raise PlotError(f"function {i} is empty")
        _vet(source, f"function {text!r}", limits)
    _check_range(request.x_min, request.x_max, "x", limits)
    _check_range(request.y_min, request.y_max, "y", limits)
    _check_data(request, limits)
    for text in request.mark_points:
        for part in split_point(text):
            if part is not None:
                _vet(part, f"mark_points {text!r}", limits)
    for text, what in ((request.title, "title"), (request.x_label, "x_label"),
                       (request.y_label, "y_label")):  # fmt: skip
        _check_text(text, what, limits.max_title_chars)
    series = len(data) if request.data_kind == "bar" else max(len(functions), 1)
    if len(request.labels) > series:
        raise PlotError(
            f"too many labels: {len(request.labels)} for {series} "
            f"{'bars' if request.data_kind == 'bar' else 'functions'}"
        )
    for text in request.labels:
        _check_text(text, "a label", limits.max_label_chars)


def _check_data(request: PlotRequest, limits: PlotLimits) -> None:
    data, kind = request.data, request.data_kind
    if kind not in DATA_KINDS:
        raise PlotError(f"data_kind must be one of {', '.join(DATA_KINDS)}, not {kind!r}")
    if len(data) > limits.max_data_points:
        raise PlotError(
            f"too many data points: {len(data):,} (limit {limits.max_data_points:,}); "
            "summarise or sample the data first"
        )
    if not all(math.isfinite(v) for v in (*data, *request.data_x)):
        raise PlotError("data and data_x must be finite numbers")
    if request.data_x:
        if kind in ("bar", "histogram"):
            raise PlotError("data_x is only for line and scatter data (bars take labels)")
        if len(request.data_x) != len(data):
            raise PlotError(
                f"data_x has {len(request.data_x)} values but data has {len(data)}; "
                "give one x per data value"
            )
    if not 0 <= request.bins <= limits.max_bins:
        raise PlotError(f"bins must be between 0 (automatic) and {limits.max_bins}")
    if data and kind in ("bar", "histogram"):
        if request.functions:
            raise PlotError(
                f"functions cannot be drawn over a {kind}; make two plots "
                "(functions go with line or scatter data)"
            )
        if request.log_x:
            raise PlotError(f"log_x is not available for a {kind}")

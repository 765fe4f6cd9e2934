"""The agent's plot tool: functions and data drawn as PNGs in killable worker processes."""

from __future__ import annotations

import functools
import json
import logging
import math
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BeforeValidator

from ..calculator.language import CalculatorError, Limits, is_symbol_name, vet_expression
from ..workers import (
    PoolClosed,
    PoolStopping,
    PoolUnavailable,
    WorkerBusy,
    WorkerCrashed,
    WorkerError,
    WorkerFailed,
    WorkerPool,
    WorkerTimeout,
)

if TYPE_CHECKING:
    import pebble
    from agents import FunctionTool

logger = logging.getLogger(__name__)

__all__ = [
    "DATA_KINDS",
    "PlotError",
    "PlotLimits",
    "PlotRequest",
    "PlotResult",
    "Plotter",
    "check_request",
    "function_source",
    "plot_tool",
    "split_point",
]

#: The ways a list of numbers can be drawn.
DATA_KINDS = ("line", "scatter", "bar", "histogram")
DataKind = Literal["line", "scatter", "bar", "histogram"]


def _lenient_text(value: Any) -> Any:
    """A number where text is expected (``"x_min": 0``) is its text; null is empty."""
    if value is None:
        return ""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


def _lenient_list(value: Any) -> Any:
    """One item where a list is expected (``"functions": "sin(x)"``) is a list of one."""
    if value is None:
        return []
    if isinstance(value, str | int | float):
        return [value]
    return value


def _null_is(default: Any) -> BeforeValidator:
    return BeforeValidator(lambda value: default if value is None else value)


# The tool's parameter types: the JSON schema says string / array / ..., and what models
# commonly send instead (a number for a string, one item for a list, null) is accepted too.
_Text = Annotated[str, BeforeValidator(_lenient_text)]
_Texts = Annotated[tuple[_Text, ...], BeforeValidator(_lenient_list)]
_Numbers = Annotated[tuple[float, ...], BeforeValidator(_lenient_list)]
_Flag = Annotated[bool, _null_is(False)]
_Count = Annotated[int, _null_is(0)]
_Kind = Annotated[DataKind, _null_is("line")]


class PlotError(Exception):
    """A problem with a plot request, worded so that the model can act on it."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True, slots=True)
class PlotLimits:
    """Bounds on what one plot may ask for; every check uses these."""

    max_functions: int = 6
    default_samples: int = 1_000
    max_samples: int = 2_000  # per function
    max_data_points: int = 1_000
    max_marks: int = 20
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


@dataclass(frozen=True, slots=True)
class PlotResult:
    """A drawn plot (``png``, with ``summary`` for the model) or an ``error``.

    ``plot_area`` is the drawing area's (left, top, right, bottom) in image pixels.
    """

    png: bytes | None
    summary: dict[str, Any]
    error: str | None = None
    plot_area: tuple[int, int, int, int] | None = None

    @staticmethod
    def failed(message: str) -> PlotResult:
        return PlotResult(None, {"error": message}, message)


# --------------------------------------------------------------------------------------------
# Cheap checks, in this process, before any worker is involved.
# --------------------------------------------------------------------------------------------

# "y = ...", "f(x) = ..." and "g(t) = ..." are names for the function, not part of it.
_LHS_RE = re.compile(r"^\s*(?:y|[A-Za-z](?:_?\d)?\s*\(\s*[A-Za-z]\w{0,7}\s*\))\s*=(?!=)")


def function_source(text: str) -> str:
    """The expression of a function as written, without a leading ``y =`` or ``f(x) =``."""
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
    """``text`` with everything inside brackets removed."""
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
    if len(request.mark_points) > limits.max_marks:
        raise PlotError(
            f"too many mark_points: {len(request.mark_points)} (limit {limits.max_marks})"
        )
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


# --------------------------------------------------------------------------------------------
# The worker side of the pool (runs in the worker processes).
# --------------------------------------------------------------------------------------------


def _warm_up_worker() -> None:
    """Load matplotlib in a fresh worker and draw once, so that its first plot is quick."""
    from . import draw as plotting_worker

    plotting_worker.warm_up()


def _run_in_worker(request: PlotRequest, limits: PlotLimits) -> dict[str, Any]:
    """Evaluate and draw one request; runs in a worker process."""
    from . import draw as plotting_worker

    return plotting_worker.render_request(request, limits)


# --------------------------------------------------------------------------------------------
# The plotter: bounds each call with a worker pool, always answers.
# --------------------------------------------------------------------------------------------


def _to_json(payload: dict[str, Any]) -> str:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


#: The failure for a call the worker pool brought no answer back for, by the reason.
_POOL_ERRORS: dict[type[WorkerError], str] = {
    PoolClosed: "the plotter is closed",
    WorkerBusy: "the plotter is busy; try again in a moment",
    PoolUnavailable: "the plotter is unavailable; try again later",
    WorkerCrashed: "the plot crashed its worker (probably out of memory)",
    PoolStopping: "the plotter is shutting down",
    WorkerFailed: "the plotter failed unexpectedly on this request",
}


class Plotter:
    """Draws plots in a pool of worker processes that are killed when they overrun.

    Each call takes at most ``timeout`` seconds in total (waiting for a free worker
    included); a worker that overruns is killed and replaced, as in ``Calculator``.
    """

    def __init__(
        self,
        timeout: float = 5.0,
        max_workers: int = 1,
        memory_mb: int = 768,
        *,
        limits: PlotLimits | None = None,
        max_tasks_per_worker: int = 500,
    ) -> None:
        self._limits = limits or PlotLimits()
        probe = PlotRequest(functions=("x",), samples=2)
        self._workers = WorkerPool(
            "plot",
            timeout,
            max_workers,
            memory_mb,
            max_tasks_per_worker=max_tasks_per_worker,
            max_str_digits=max(4_300, self._limits.expression.max_digits * 4),
            warm_up=_warm_up_worker,
            probe=functools.partial(_run_in_worker, probe, self._limits),
        )

    @property
    def timeout(self) -> float:
        """The hard wall-clock limit of one plot, in seconds."""
        return self._workers.timeout

    @property
    def limits(self) -> PlotLimits:
        return self._limits

    @property
    def _pool(self) -> pebble.ProcessPool | None:
        """The running process pool, if any (tests check that refusals never start it)."""
        return self._workers.process_pool

    async def __aenter__(self) -> Plotter:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Start the worker pool and wait until a worker has drawn a plot (idempotent)."""
        try:
            await self._workers.start()
        except PoolClosed:
            raise RuntimeError("the plotter is closed") from None

    async def close(self) -> None:
        """Stop the workers (a plot being drawn is abandoned)."""
        await self._workers.close()

    async def render(self, request: PlotRequest) -> PlotResult:
        """Check, evaluate and draw one request; never raises for bad input."""
        try:
            check_request(request, self._limits)
        except PlotError as exc:
            logger.debug("plot refused: %s", exc.message)
            return PlotResult.failed(exc.message)
        if not self._workers.running and not self._workers.closed:
            try:
                await self.start()  # normally done once, up front
            except RuntimeError as exc:
                return PlotResult.failed(str(exc))
        # The rest of the call, waiting for a worker included, ends by the timeout.
        try:
            answer = await self._workers.run(_run_in_worker, request, self._limits)
        except WorkerTimeout as exc:
            logger.info("plot %s", exc)
            return PlotResult.failed(f"timed out after {self.timeout:g} s; simplify the functions")
        except WorkerError as exc:
            logger.log(exc.log_level, "plot %s", exc, exc_info=isinstance(exc, WorkerFailed))
            return PlotResult.failed(_POOL_ERRORS[type(exc)])
        if "error" in answer:
            return PlotResult.failed(answer["error"])
        return PlotResult(answer["png"], answer["summary"], None, answer.get("plot_area"))


# --------------------------------------------------------------------------------------------
# The agent tool.
# --------------------------------------------------------------------------------------------


def plot_tool(plotter: Plotter) -> FunctionTool:
    """Build the ``plot`` function tool around a plotter (nothing is built at import)."""
    from agents import RunContextWrapper, function_tool

    from ..turn_context import TurnContext

    async def plot(
        ctx: RunContextWrapper[TurnContext],
        functions: _Texts = (),
        x_min: _Text = "",
        x_max: _Text = "",
        title: _Text = "",
        x_label: _Text = "",
        y_label: _Text = "",
        labels: _Texts = (),
        mark_points: _Texts = (),
        log_x: _Flag = False,
        log_y: _Flag = False,
        y_min: _Text = "",
        y_max: _Text = "",
        variable: _Text = "x",
        samples: _Count = 1_000,
        data: _Numbers = (),
        data_x: _Numbers = (),
        data_kind: _Kind = "line",
        bins: _Count = 0,
    ) -> str:
        """Draw a graph as a PNG attached to your reply; returns a JSON summary of what was drawn.

        Use it whenever the user asks to plot, graph, draw or sketch functions or data.
        Functions are expressions in one variable (x unless `variable` says otherwise),
        written as for `calculate`: ^ or ** for powers, 2x, pi, e, sqrt, exp, log (natural),
        sin, tan, abs, floor... ("y =" in front is fine). Poles and jumps are not joined
        and undefined parts (log or sqrt of negatives) are left out; odd roots such as
        cbrt(x) or x^(1/3) are real for negative x. Numbers: give a list in `data` and
        choose `data_kind`.
        The answer is JSON: "image" (the attached file), "x_range", "y_range" (what is
        shown), per function its "lowest"/"highest" drawn points, where it crosses y = 0
        ("zeros", approximate), "poles", "jumps", "undefined" x-intervals; "marked" points
        with computed coordinates; data statistics. Or {"error": message}: fix and retry.
        The image is already attached: do not describe how to plot; mention the graph.

        Args:
            functions: Up to 6 functions, e.g. ["sin(x)", "cos(x)"] or ["x^2 - 3x + 2"].
                Leave empty to draw only `data`.
            x_min: Left end of the x-range, a number or expression ("0", "-2*pi"); empty:
                -10, or the data's extent.
            x_max: Right end of the x-range ("2*pi"); empty: 10, or the data's extent.
            title: Optional title. $...$ math (matplotlib mathtext) is allowed.
            x_label: Optional x-axis label.
            y_label: Optional y-axis label.
            labels: Optional legend names, one per function (default: the expression);
                for a bar chart, the names of the bars.
            mark_points: Points to mark and label: an x value on the curves ("1",
                "pi/2", or "solve(x^2 - 3x + 2, x)" for several), or "x, y" for an
                explicit point. Use it for roots, extrema and intersections.
            log_x: Logarithmic x-axis (needs x_min > 0).
            log_y: Logarithmic y-axis (values <= 0 are left out).
            y_min: Optional bottom of the y-range; empty: automatic (poles are cut off).
            y_max: Optional top of the y-range; empty: automatic.
            variable: The functions' variable, a single letter such as x or t.
            samples: Points per function, 2 to 2000 (0: the default, 1000).
            data: Up to 1000 numbers to draw.
            data_x: Optional x values for line/scatter data, one per number in `data`.
            data_kind: How to draw `data`: "line", "scatter", "bar" or "histogram".
            bins: Histogram bins, 0 for automatic (at most 100).
        """
        request = PlotRequest(
            functions=tuple(functions),
            x_min=x_min,
            x_max=x_max,
            y_min=y_min,
            y_max=y_max,
            variable=variable or "x",
            samples=samples or plotter.limits.default_samples,
            title=title,
            x_label=x_label,
            y_label=y_label,
            labels=tuple(labels),
            mark_points=tuple(mark_points),
            log_x=log_x,
            log_y=log_y,
            data=tuple(data),
            data_x=tuple(data_x),
            data_kind=data_kind,
            bins=bins,
        )
        try:
            result = await plotter.render(request)
        except Exception:
            logger.exception("plot tool failed")
            return _to_json({"error": "the plotter failed unexpectedly"})
        if result.png is None:
            return _to_json({"error": result.error or "nothing was drawn"})
        name = ctx.context.add_image("plot", result.png)
        summary: dict[str, Any] = {"image": name, **result.summary}
        if name is None:
            summary["note"] = "not attached: this reply already has the most images allowed"
        return _to_json(summary)

    # get_type_hints() resolves annotations in this module's namespace, where the SDK's
    # types are not imported (importing the SDK is left to the process that builds tools).
    plot.__annotations__["ctx"] = RunContextWrapper[TurnContext]
    return function_tool(plot, name_override="plot", timeout=plotter.timeout + 10.0)
